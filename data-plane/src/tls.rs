//! TLS for the one listener: a certificate the operator gives, or a CA and server
//! certificate made on first start and kept under `DATA_DIR/tls`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("generating a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration")]
    Config(#[from] rustls::Error),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files given by the operator (`--tls-cert`, `--tls-key`).
    Files { cert: PathBuf, key: PathBuf },
    /// Made on first start under this directory, reused afterwards.
    SelfSigned { dir: PathBuf },
}

/// The names the made server certificate covers.
const SELF_SIGNED_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Loads or makes the certificate and returns the rustls configuration and, for a made
/// one, the CA certificate's path.
pub fn server_config(source: &TlsSource) -> Result<(Arc<ServerConfig>, Option<PathBuf>), TlsError> {
    let (cert_path, key_path, ca_path) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsSource::SelfSigned { dir } => {
            let paths = ensure_self_signed(dir)?;
            (paths.0, paths.1, Some(paths.2))
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|_| TlsError::Pem {
            path: cert_path.clone(),
            what: "certificate",
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem {
            path: cert_path.clone(),
            what: "certificate",
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path,
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| TlsError::Pem {
        path: key_path.clone(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca_path))
}

/// Makes `ca.pem`, `server.pem` and `server-key.pem` under `dir` unless they exist.
/// The CA's private key is not kept: nothing else is ever signed with it.
fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), TlsError> {
    let ca_path = dir.join("ca.pem");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server-key.pem");
    if ca_path.exists() && cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path, ca_path));
    }
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Sluice local CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let mut server_params = CertificateParams::new(names)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = server_params.signed_by(&server_key, &ca)?;

    // The key first and the CA last: a CA on disk means the set is complete.
    write_file(&key_path, server_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, server_cert.pem().as_bytes(), 0o644)?;
    write_file(&ca_path, ca.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path, ca_path))
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let source = TlsSource::SelfSigned {
            dir: dir.path().to_path_buf(),
        };
        let (_, ca) = server_config(&source).unwrap();
        let ca = ca.unwrap();
        let first = fs::read(&ca).unwrap();
        server_config(&source).unwrap();
        assert_eq!(fs::read(&ca).unwrap(), first);
        let mode = fs::metadata(dir.path().join("server-key.pem"))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
}

/// The TLS version a connection negotiated, in every request's extensions, so that
/// authorization can see it (`context.tlsVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersion(pub &'static str);

impl TlsVersion {
    fn of(connection: &rustls::ServerConnection) -> TlsVersion {
        TlsVersion(match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        })
    }
}

/// The rustls acceptor, plus the negotiated TLS version handed to every request of the
/// connection.
#[derive(Clone)]
pub struct VersionedAcceptor<A>(pub A);

type AcceptFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<T>> + Send>>;

impl<A, I, S, IO> axum_server::accept::Accept<I, S> for VersionedAcceptor<A>
where
    A: axum_server::accept::Accept<I, S, Stream = tokio_rustls::server::TlsStream<IO>>,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
    IO: Send + 'static,
{
    type Stream = tokio_rustls::server::TlsStream<IO>;
    type Service = WithTlsVersion<A::Service>;
    type Future = AcceptFuture<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, inner) = accepted.await?;
            let version = TlsVersion::of(stream.get_ref().1);
            Ok((stream, WithTlsVersion { inner, version }))
        })
    }
}

/// A connection's service that puts its `TlsVersion` into each request.
#[derive(Clone)]
pub struct WithTlsVersion<S> {
    inner: S,
    version: TlsVersion,
}

impl<S, B> tower_service::Service<http::Request<B>> for WithTlsVersion<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.version);
        self.inner.call(request)
    }
}
