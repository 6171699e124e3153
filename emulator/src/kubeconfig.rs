//! Kubeconfig files for the emulator, written the way `kubectl config view --raw` shows a
//! real cluster's: server URL, embedded CA data, bearer token. Clients (kube-rs, kubectl)
//! load them through their ordinary kubeconfig path.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The kubeconfig YAML for `server` with the CA (if any) and `token`.
pub fn render(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let ca_line = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            STANDARD.encode(pem.as_bytes())
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: emulator\n\
         \x20 cluster:\n\
         \x20   server: {server}\n\
         {ca_line}\
         users:\n\
         - name: emulator-user\n\
         \x20 user:\n\
         \x20   token: {token}\n\
         contexts:\n\
         - name: emulator\n\
         \x20 context:\n\
         \x20   cluster: emulator\n\
         \x20   user: emulator-user\n\
         current-context: emulator\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_with_kube_rs_and_keeps_server_token_and_ca() {
        let yaml = render("https://127.0.0.1:1234", Some("PEM"), "tok");
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("valid kubeconfig");
        let cluster = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("PEM").as_str())
        );
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert!(user.token.is_some());
        assert_eq!(kc.current_context.as_deref(), Some("emulator"));
    }
}
