//! The secure port's TLS: the certificate of `--tls-cert-file`/`--tls-private-key-file`,
//! or else one generated in memory at start, as upstream's
//! `SecureServingOptions.MaybeDefaultWithSelfSignedCerts` does for every component (a
//! fresh CA and a serving certificate it signs, for `localhost`, 127.0.0.1 and the bind
//! address, valid a year); and the accept loop serving a router over it. Files are read
//! once, at start.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The certificate chain and key to serve.
pub struct ServingCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServingCert {
    /// The files' certificate and key, or a self-signed pair when neither file is given.
    pub fn load_or_generate(
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
        bind: IpAddr,
    ) -> anyhow::Result<ServingCert> {
        match (cert_file, key_file) {
            (Some(cert), Some(key)) => ServingCert::load(cert, key),
            (None, None) => ServingCert::self_signed(bind),
            _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file go together"),
        }
    }

    /// Reads a PEM chain (serving certificate first) and its PEM key (PKCS#8, PKCS#1 or
    /// SEC1).
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<ServingCert> {
        let chain = CertificateDer::pem_file_iter(cert_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("--tls-cert-file {}", cert_file.display()))?;
        if chain.is_empty() {
            anyhow::bail!(
                "--tls-cert-file {}: no PEM certificate in it",
                cert_file.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(key_file)
            .with_context(|| format!("--tls-private-key-file {}", key_file.display()))?;
        Ok(ServingCert { chain, key })
    }

    /// A CA and a serving certificate it signs, both generated now, as upstream's
    /// `GenerateSelfSignedCertKeyWithFixtures("localhost", [127.0.0.1], ...)`: names
    /// `localhost` and 127.0.0.1, plus the bind address unless it is unspecified; common
    /// names `localhost-ca@<unix time>` and `localhost@<unix time>`; valid from a day
    /// before today (clock skew) for a year. The chain served is the certificate, then
    /// the CA.
    pub fn self_signed(bind: IpAddr) -> anyhow::Result<ServingCert> {
        let err =
            |e: rcgen::Error| anyhow::anyhow!("cannot generate a self-signed certificate: {e}");
        let now = jiff::Timestamp::now();
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let from = today.yesterday().unwrap_or(today);
        let until = today
            .checked_add(jiff::Span::new().years(1))
            .unwrap_or(today);
        let date = |d: jiff::civil::Date| {
            rcgen::date_time_ymd(
                i32::from(d.year()),
                u8::try_from(d.month()).unwrap_or(1),
                u8::try_from(d.day()).unwrap_or(1),
            )
        };
        let stamp = now.as_second();

        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::CommonName, format!("localhost-ca@{stamp}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = date(from);
        ca.not_after = date(until);
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !bind.is_unspecified() && !bind.is_loopback() {
            names.push(bind.to_string());
        }
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(names).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("localhost@{stamp}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = date(from);
        params.not_after = date(until);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(ServingCert {
            chain: vec![cert.der().clone(), ca_cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// The rustls configuration: TLS 1.2 and 1.3, ALPN h2 and http/1.1, no client
    /// certificates (clients authenticate with bearer tokens).
    pub fn server_config(self) -> anyhow::Result<Arc<ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS configuration")?
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)
            .context("the TLS certificate and key do not form a usable pair")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `router` over TLS on `listener` until `shutdown`; each connection has its own
/// task, so a slow handshake delays no one else.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "secure port: cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (acceptor, router, shutdown) = (acceptor.clone(), router.clone(), shutdown.clone());
        connections.spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
            tokio::select! {
                _ = connection => {}
                _ = shutdown.cancelled() => {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_certificate_names_localhost_and_a_specific_bind_address() {
        let cert = ServingCert::self_signed("10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(cert.chain.len(), 2, "certificate, then CA");
        let der = cert.chain[0].as_ref();
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"localhost"));
        assert!(contains(&[127, 0, 0, 1]));
        assert!(contains(&[10, 0, 0, 7]));
        assert!(cert.server_config().is_ok());
    }

    #[test]
    fn certificate_files_are_read_and_a_lone_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let bind: IpAddr = "0.0.0.0".parse().unwrap();
        let loaded =
            ServingCert::load_or_generate(Some(&cert_file), Some(&key_file), bind).unwrap();
        assert_eq!(loaded.chain, vec![cert.der().clone()]);
        assert!(loaded.server_config().is_ok());

        let lone = ServingCert::load_or_generate(Some(&cert_file), None, bind);
        assert!(lone.is_err());
        let missing = ServingCert::load(&dir.path().join("nope.crt"), &key_file)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(missing.contains("--tls-cert-file"), "{missing}");
        std::fs::write(&cert_file, "not a certificate").unwrap();
        assert!(ServingCert::load(&cert_file, &key_file).is_err());
    }
}
