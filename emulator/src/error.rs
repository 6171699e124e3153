//! The emulator's own errors (starting, TLS, building clients), as opposed to the API errors
//! it serves to clients (those are `status::ApiError`).

/// Why the emulator could not start or could not build a client for itself.
#[derive(thiserror::Error, Debug)]
pub enum EmulatorError {
    /// Binding the listening socket on 127.0.0.1 failed.
    #[error(
        "cannot listen on 127.0.0.1 for the API emulator: {0}; check that loopback networking works"
    )]
    Bind(#[source] std::io::Error),
    /// Generating the CA or serving certificate failed.
    #[error("cannot generate the emulator's TLS certificates: {0}")]
    Tls(String),
    /// The generated kubeconfig could not be parsed back by kube-rs.
    #[error("the emulator's generated kubeconfig is not accepted by kube-rs: {0}")]
    Kubeconfig(String),
    /// kube-rs refused to build a client from the generated kubeconfig.
    #[error("cannot build a kube client for the emulator at {url}: {source}")]
    Client {
        /// The emulator URL.
        url: String,
        /// The kube-rs error.
        #[source]
        source: kube::Error,
    },
}
