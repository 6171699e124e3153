//! The changes other actors make to Nodes while a cloud-controller-manager works: taints,
//! labels and annotations, written the way `kubectl taint`, `kubectl label` and
//! `kubectl annotate` write them, through the fleet's client.

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::KubeletError;
use super::controllers::remove_taint_key;
use super::fleet::Fleet;

impl Fleet {
    /// Adds a taint (or overwrites the value of the taint with the same key and effect),
    /// keeping every other taint, like `kubectl taint nodes N key=value:effect --overwrite`.
    pub async fn add_taint(
        &self,
        node: &str,
        key: &str,
        value: &str,
        effect: &str,
    ) -> Result<(), KubeletError> {
        let wanted = if value.is_empty() {
            json!({"key": key, "effect": effect})
        } else {
            json!({"key": key, "value": value, "effect": effect})
        };
        self.inner
            .edit_taints("taint addition", node, None, |taints| {
                let same = |t: &Value| t["key"] == key && t["effect"] == effect;
                match taints.iter_mut().find(|t| same(t)) {
                    Some(existing) if *existing == wanted => false,
                    Some(existing) => {
                        *existing = wanted.clone();
                        true
                    }
                    None => {
                        taints.push(wanted.clone());
                        true
                    }
                }
            })
            .await
    }

    /// Removes every taint with `key` (any effect), keeping the others, like
    /// `kubectl taint nodes N key-`. Removing an absent taint changes nothing.
    pub async fn remove_taint(&self, node: &str, key: &str) -> Result<(), KubeletError> {
        self.inner
            .edit_taints("taint removal", node, None, |taints| {
                remove_taint_key(taints, key)
            })
            .await
    }

    /// Sets (Some) or removes (None) one metadata map entry with a JSON merge patch that
    /// names only that key, so concurrent changes to other keys are kept.
    async fn set_metadata_entry(
        &self,
        action: &'static str,
        field: &str,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        let patch = json!({"metadata": {field: {key: value}}});
        self.inner
            .retry(action, node, || async {
                self.inner
                    .nodes
                    .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop)
            })
            .await
    }

    /// Sets or (with None) removes a label, like `kubectl label nodes N key=value` / `key-`.
    pub async fn set_label(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        self.set_metadata_entry("label change", "labels", node, key, value)
            .await
    }

    /// Sets or (with None) removes an annotation, like `kubectl annotate nodes N key=value`.
    pub async fn set_annotation(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), KubeletError> {
        self.set_metadata_entry("annotation change", "annotations", node, key, value)
            .await
    }
}
