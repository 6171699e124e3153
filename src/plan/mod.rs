//! Pure: which writes a node needs, as a value. The one place that decides "tainted: the
//! addresses, then the initialisation; initialised by a cloud controller: a refresh;
//! otherwise leave it to its kubelet". The controller executes a [`Plan`] and `explain`
//! prints it, so the two cannot drift apart. The patches come from `patch`.

use serde::Serialize;
use serde_json::Value;

use crate::node_view::NodeView;
use crate::patch::{
    init_patch, is_refreshable, labels_patch, refresh_patch, status_addresses_patch,
};
use crate::resolve::{Resolution, ResolveError};

/// The writes one node needs, in the order they are sent (`status` first).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "plan", rename_all = "camelCase")]
pub enum Plan {
    /// Neither tainted nor initialised by a cloud controller (no providerID): its kubelet
    /// owns its addresses, so nothing is written and nothing is warned about.
    Untouched,
    /// The resolution has errors: nothing is written; a tainted node keeps its taint.
    Blocked {
        /// Whether the node waits for initialisation (else it is a failed refresh).
        tainted: bool,
        /// The resolver's errors, each written as its actionable sentence.
        errors: Vec<ResolveError>,
    },
    /// Everything is as resolved already.
    Unchanged,
    /// An initialised node: its addresses (merge patch to `nodes/status`) when they differ,
    /// then the labels it lacks (JSON patch to `nodes`); at least one is set.
    Refresh {
        /// The `nodes/status` merge patch.
        status: Option<Value>,
        /// The `nodes` JSON patch that adds missing labels.
        labels: Option<Value>,
    },
    /// A tainted node: its addresses when they differ, then the JSON patch that removes the
    /// taint and sets providerID and labels.
    Initialize {
        /// The `nodes/status` merge patch.
        status: Option<Value>,
        /// The `nodes` JSON patch.
        node: Value,
    },
}

/// The plan for `view` resolved as `res`.
pub fn plan(view: &NodeView, res: &Resolution) -> Plan {
    if !res.tainted && !is_refreshable(view) {
        return Plan::Untouched;
    }
    if !res.errors.is_empty() {
        return Plan::Blocked {
            tainted: res.tainted,
            errors: res.errors.clone(),
        };
    }
    if res.tainted {
        return match init_patch(view, res) {
            Some(node) => Plan::Initialize {
                status: status_addresses_patch(view, res),
                node,
            },
            None => Plan::Unchanged,
        };
    }
    match (refresh_patch(view, res), labels_patch(view, res)) {
        (None, None) => Plan::Unchanged,
        (status, labels) => Plan::Refresh { status, labels },
    }
}

impl Plan {
    /// The `nodes/status` merge patch, if the plan writes one.
    pub fn status(&self) -> Option<&Value> {
        match self {
            Plan::Refresh { status, .. } | Plan::Initialize { status, .. } => status.as_ref(),
            _ => None,
        }
    }

    /// The `nodes` JSON patch, if the plan writes one (sent after the status write).
    pub fn node(&self) -> Option<&Value> {
        match self {
            Plan::Refresh { labels, .. } => labels.as_ref(),
            Plan::Initialize { node, .. } => Some(node),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
