//! A kubelet that is not in external cloud-provider mode owns its node's addresses: it
//! writes its own `[InternalIP, Hostname]` back on every status sync (kubernetes
//! `pkg/kubelet/nodestatus/setters.go`, `NodeAddress`: only an external-mode kubelet
//! leaves non-empty addresses alone). A node migrated from k3s's embedded CCM without
//! `--kubelet-arg=cloud-provider=external` keeps its `k3s://` providerID, so bare-ccm
//! refreshes its addresses, and the two would overwrite each other forever, a write each
//! per status sync.
//!
//! This module tells that fight from an ordinary change: after bare-ccm replaced the
//! kubelet's list with its own, the node shows the kubelet's list again. After
//! [`MAX_REVERTS`] reverts bare-ccm stops writing that node's addresses (until the node
//! shows a list that is neither, e.g. because the kubelet now runs in external mode),
//! and the controller says why in a Warning. Pure state; no I/O.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::NodeAddress;

/// Reverts of bare-ccm's address write after which the kubelet is taken to own the
/// addresses: one could be a coincidence (an operator restoring a list), two in a row of
/// the same list is the status loop. The node gets at most this many refresh writes.
pub const MAX_REVERTS: u32 = 2;

/// What to do about a refresh write the controller is about to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Write,
    /// Do not: the kubelet reverted bare-ccm's list `reverts` times.
    KubeletOwnsAddresses { reverts: u32 },
}

#[derive(Debug)]
struct Record {
    /// The list bare-ccm replaced (the kubelet's).
    kubelets: Vec<NodeAddress>,
    /// The list bare-ccm wrote.
    ours: Vec<NodeAddress>,
    reverts: u32,
    /// This revert was counted already (a periodic re-check sees the same one again).
    counted: bool,
}

/// The refresh writes of every node and what became of them.
#[derive(Debug, Default)]
pub struct RevertWatch {
    nodes: Mutex<HashMap<String, Record>>,
}

impl RevertWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        match self.nodes.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Called before a refresh write of `node`, whose addresses are `current` now.
    pub fn before_write(&self, node: &str, current: &[NodeAddress]) -> Verdict {
        let mut nodes = self.lock();
        let Some(record) = nodes.get_mut(node) else {
            return Verdict::Write;
        };
        if current == record.kubelets.as_slice() {
            if !record.counted {
                record.reverts += 1;
                record.counted = true;
            }
            return if record.reverts >= MAX_REVERTS {
                Verdict::KubeletOwnsAddresses {
                    reverts: record.reverts,
                }
            } else {
                Verdict::Write
            };
        }
        if current != record.ours.as_slice() {
            // Neither list: something else changed the addresses; start afresh.
            nodes.remove(node);
        }
        Verdict::Write
    }

    /// Called after bare-ccm replaced `before` with `after` on `node`.
    pub fn wrote(&self, node: &str, before: Vec<NodeAddress>, after: Vec<NodeAddress>) {
        let mut nodes = self.lock();
        let reverts = nodes
            .get(node)
            .filter(|r| r.kubelets == before)
            .map_or(0, |r| r.reverts);
        nodes.insert(
            node.to_string(),
            Record {
                kubelets: before,
                ours: after,
                reverts,
                counted: false,
            },
        );
    }

    /// Forgets a deleted node.
    pub fn forget(&self, node: &str) {
        self.lock().remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(addresses: &[(&str, &str)]) -> Vec<NodeAddress> {
        addresses
            .iter()
            .map(|(t, a)| NodeAddress {
                type_: t.to_string(),
                address: a.to_string(),
            })
            .collect()
    }

    /// A fresh watch, a kubelet that reports only its hostname, and our list, which adds
    /// an InternalIP.
    fn hostname_only_kubelet() -> (RevertWatch, Vec<NodeAddress>, Vec<NodeAddress>) {
        (
            RevertWatch::default(),
            list(&[("Hostname", "n1")]),
            list(&[("InternalIP", "10.0.0.5"), ("Hostname", "n1")]),
        )
    }

    #[test]
    fn a_kubelet_that_reverts_twice_owns_the_addresses_and_a_re_check_counts_nothing() {
        let watch = RevertWatch::default();
        let kubelet = list(&[("InternalIP", "10.0.0.5"), ("Hostname", "n1")]);
        let ours = list(&[
            ("InternalIP", "10.0.0.5"),
            ("ExternalIP", "203.0.113.5"),
            ("Hostname", "n1"),
        ]);
        assert_eq!(watch.before_write("n1", &kubelet), Verdict::Write);
        watch.wrote("n1", kubelet.clone(), ours.clone());
        // The kubelet's status sync writes its list back: the first revert.
        assert_eq!(watch.before_write("n1", &kubelet), Verdict::Write);
        watch.wrote("n1", kubelet.clone(), ours.clone());
        // And again: the kubelet owns the addresses.
        let owned = Verdict::KubeletOwnsAddresses { reverts: 2 };
        assert_eq!(watch.before_write("n1", &kubelet), owned);
        // A periodic re-check of the same state counts no new revert and still stops.
        assert_eq!(watch.before_write("n1", &kubelet), owned);
    }

    #[test]
    fn our_own_list_echoed_back_is_no_revert() {
        let (watch, kubelet, ours) = hostname_only_kubelet();
        watch.wrote("n1", kubelet.clone(), ours.clone());
        assert_eq!(watch.before_write("n1", &ours), Verdict::Write);
        assert_eq!(watch.before_write("n1", &kubelet), Verdict::Write);
        watch.wrote("n1", kubelet.clone(), ours);
        assert_eq!(
            watch.before_write("n1", &kubelet),
            Verdict::KubeletOwnsAddresses { reverts: 2 }
        );
    }

    #[test]
    fn a_third_list_starts_afresh() {
        let (watch, kubelet, ours) = hostname_only_kubelet();
        watch.wrote("n1", kubelet.clone(), ours.clone());
        assert_eq!(watch.before_write("n1", &kubelet), Verdict::Write);
        watch.wrote("n1", kubelet.clone(), ours.clone());
        // The kubelet now runs in external mode and reports something else: no fight.
        let other = list(&[("InternalIP", "10.0.0.9"), ("Hostname", "n1")]);
        assert_eq!(watch.before_write("n1", &other), Verdict::Write);
        watch.wrote("n1", other.clone(), ours);
        assert_eq!(watch.before_write("n1", &other), Verdict::Write);
    }

    #[test]
    fn forgetting_a_node_clears_its_history() {
        let watch = RevertWatch::default();
        let kubelet = list(&[("Hostname", "n1")]);
        watch.wrote("n1", kubelet.clone(), list(&[("InternalIP", "10.0.0.5")]));
        watch.forget("n1");
        assert_eq!(watch.before_write("n1", &kubelet), Verdict::Write);
    }
}
