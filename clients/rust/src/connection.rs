//! The one HTTPS connection code of the client and the `sluice` CLI: TLS that trusts
//! the given CA (rustls on aws-lc-rs) and an HTTP/1.1 connection over it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Error;

/// A TLS connector that trusts only the certificates in `ca` (PEM).
pub fn tls_connector(ca: &Path) -> Result<TlsConnector, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| Error::Config(format!("reading {}: {e}", ca.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Error::Config(format!("reading {}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| Error::Config(format!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Connects to `addr`, checks its certificate names `server_name`, and returns an
/// HTTP/1.1 sender (its connection driven by a task of its own).
pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    server_name: &str,
) -> Result<SendRequest<Full<Bytes>>, Error> {
    let transport =
        |what: &str, e: &dyn std::fmt::Display| Error::Transport(format!("{what} {addr}: {e}"));
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| transport("connecting to", &e))?;
    tcp.set_nodelay(true)
        .map_err(|e| transport("connecting to", &e))?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| Error::Config(format!("{server_name} is not a server name")))?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| transport("TLS handshake with", &e))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| transport("HTTP handshake with", &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
