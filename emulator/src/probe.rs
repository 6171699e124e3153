//! Probing a controller process from outside, as `bare-ccm sim` and the e2e tests both do:
//! a free local port to give it, and a plain HTTP GET of its endpoints (`/readyz`,
//! `/metrics`). Nothing here talks to the emulator itself.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it; the listener
/// is closed again).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// One plain HTTP/1.1 GET of `path` on 127.0.0.1:`port`: the status code and the body,
/// or None when the port does not answer HTTP.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}
