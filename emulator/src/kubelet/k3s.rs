//! The writes k3s makes to a new Node, each its own actor after a delay of
//! [`Registration`](super::Registration):
//! - **the k3s agent** (specs with `node_args`): `configureNode` (k3s `pkg/agent/run.go`)
//!   takes the Node as it sees it and sends an `Update` of the whole object, with its
//!   resourceVersion, adding `k3s.io/node-args`, `k3s.io/node-env` and
//!   `k3s.io/node-config-hash` (`pkg/nodeconfig/nodeconfig.go`,
//!   `SetNodeConfigAnnotations`); a conflict is retried from a fresh read;
//! - **the k3s server** (specs with `server_labels`): `setNodeLabelsAndAnnotations` (k3s
//!   `pkg/server/server.go`) does a Get and an Update adding
//!   `node-role.kubernetes.io/control-plane=true` and `node-role.kubernetes.io/master=true`.

use std::collections::BTreeMap;

use kube::api::PostParams;
use serde_json::{Value, json};

use super::fleet::Inner;
use super::{KubeletError, NODES_PATH};

/// Conflicts of a k3s write retried at once from a fresh read, before the backoff.
const K3S_CONFLICT_RETRIES: u32 = 5;

impl Inner {
    /// What k3s does to add metadata: read the whole Node, set the entries of `field`
    /// (`labels` or `annotations`), and `Update` it with the read resourceVersion,
    /// starting again from a fresh read after a 409. k3s `configureNode` retries on the
    /// watch event of the write it lost to, that is at once; so are the first
    /// [`K3S_CONFLICT_RETRIES`] here, then with the fleet's backoff.
    pub(super) async fn update_metadata(
        &self,
        action: &'static str,
        node: &str,
        field: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), KubeletError> {
        self.retry(action, node, || async {
            let mut conflicts = 0;
            loop {
                match self.update_metadata_once(node, field, entries).await {
                    Err(kube::Error::Api(s))
                        if s.code == 409 && conflicts < K3S_CONFLICT_RETRIES =>
                    {
                        conflicts += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    /// One read and `Update` of [`Inner::update_metadata`].
    async fn update_metadata_once(
        &self,
        node: &str,
        field: &str,
        entries: &BTreeMap<String, String>,
    ) -> Result<(), kube::Error> {
        let request = kube::core::Request::new(NODES_PATH)
            .get(node, &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        let mut object: Value = serde_json::from_str(&self.client.request_text(request).await?)
            .map_err(kube::Error::SerdeError)?;
        let metadata = &mut object["metadata"];
        if !metadata[field].is_object() {
            metadata[field] = json!({});
        }
        let mut changed = false;
        for (key, value) in entries {
            if metadata[field][key] != json!(value) {
                metadata[field][key] = json!(value);
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        let body = serde_json::to_vec(&object).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(NODES_PATH)
            .replace(node, &PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await.map(drop)
    }
}
