//! How every subcommand reaches the cluster: `--kubeconfig`, else `KUBECONFIG`, else the
//! in-cluster service account (kube-rs `Config::infer` order). Defined once so `run`,
//! `explain` and `doctor` agree on it.

use std::path::Path;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Builds the client configuration from an explicit kubeconfig file or the environment.
pub async fn client_config(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {} is not usable", path.display()))
        }
        None => kube::Config::infer().await.context(
            "no cluster configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod",
        ),
    }
}

/// Reads a ConfigMap, `None` when it does not exist: `explain --node NAME` reads the
/// controller's config with it.
pub async fn get_config_map(
    kubeconfig: Option<&Path>,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<ConfigMap>> {
    let client = kube::Client::try_from(client_config(kubeconfig).await?)?;
    kube::Api::<ConfigMap>::namespaced(client, namespace)
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read ConfigMap {namespace}/{name} from the cluster"))
}

/// Reads one Node by name, for `explain --node NAME`.
pub async fn get_node(kubeconfig: Option<&Path>, name: &str) -> anyhow::Result<Node> {
    let client = kube::Client::try_from(client_config(kubeconfig).await?)?;
    kube::Api::<Node>::all(client)
        .get(name)
        .await
        .with_context(|| format!("cannot read node {name} from the cluster"))
}
