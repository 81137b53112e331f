//! TLS for the one listener: a certificate the operator gives, or a CA and server
//! certificate made on first start and kept under `DATA_DIR/tls`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
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
    /// PEM files given by the operator (`--tls-cert`, `--tls-key`), read again when
    /// they change (cert-manager renews them in place).
    Files { cert: PathBuf, key: PathBuf },
    /// Made on first start under this directory, reused afterwards, the server
    /// certificate renewed from the CA before it expires.
    SelfSigned { dir: PathBuf },
}

/// The names the made server certificate covers.
const SELF_SIGNED_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// How long the made CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long a made server certificate is valid.
const SERVER_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// A made server certificate is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// How far back a made certificate's validity starts (clocks of clients differ).
const BACKDATE: Duration = Duration::from_secs(3_600);

/// The certificate and key files of a source, made (or renewed) first when the server
/// makes its own; and the CA certificate's path for a made one.
struct Paths {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
}

impl TlsSource {
    fn paths(&self, now_ms: i64) -> Result<Paths, TlsError> {
        match self {
            TlsSource::Files { cert, key } => Ok(Paths {
                cert: cert.clone(),
                key: key.clone(),
                ca: None,
            }),
            TlsSource::SelfSigned { dir } => ensure_self_signed(dir, now_ms),
        }
    }
}

/// Loads or makes the certificate and returns the rustls configuration and, for a made
/// one, the CA certificate's path.
pub fn server_config(
    source: &TlsSource,
    now_ms: i64,
) -> Result<(Arc<ServerConfig>, Option<PathBuf>), TlsError> {
    let paths = source.paths(now_ms)?;
    let cert = read(&paths.cert)?;
    let key = read(&paths.key)?;
    Ok((config_of(&paths.cert, &cert, &paths.key, &key)?, paths.ca))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn config_of(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let not_a_certificate = || TlsError::Pem {
        path: cert_path.to_path_buf(),
        what: "certificate",
    };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| not_a_certificate())?;
    if chain.is_empty() {
        return Err(not_a_certificate());
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| TlsError::Pem {
        path: key_path.to_path_buf(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the newest certificate: every `every`, reads the files again (renewing a
/// made certificate first when it is due) and, when they changed and make a valid
/// configuration, hands it to new handshakes. Open connections keep theirs. A pair
/// caught half-written fails to load and is tried again on the next tick.
pub async fn reload_loop(
    source: TlsSource,
    live: axum_server::tls_rustls::RustlsConfig,
    clock: protocol::clock::SharedClock,
    every: Duration,
) {
    let mut seen: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let attempt = (|| {
            let paths = source.paths(clock.now_ms())?;
            let files = (read(&paths.cert)?, read(&paths.key)?);
            if seen.as_ref() == Some(&files) {
                return Ok(None);
            }
            let config = config_of(&paths.cert, &files.0, &paths.key, &files.1)?;
            Ok::<_, TlsError>(Some((files, config)))
        })();
        match attempt {
            Ok(None) => {}
            Ok(Some((files, config))) => {
                if seen.is_some() {
                    tracing::info!("TLS certificate reloaded");
                }
                seen = Some(files);
                live.reload_from_config(config);
            }
            Err(error) => {
                tracing::warn!(error = %error, "TLS certificate not reloaded; keeping the one in use")
            }
        }
    }
}

fn at(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The made CA's parameters; the same every time, so that a server certificate renewed
/// later names the same issuer.
fn ca_params(now_ms: i64) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "Sluice local CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = at(now_ms - BACKDATE.as_millis() as i64);
    params.not_after = at(now_ms + CA_LIFETIME.as_millis() as i64);
    Ok(params)
}

/// Makes `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem` under `dir` unless
/// they exist, and a new server certificate from the CA when the one there expires
/// within `RENEW_BEFORE` (`server.expires` holds its end, in Unix seconds). A directory
/// made before the CA key was kept (no `ca-key.pem`) keeps its certificates.
fn ensure_self_signed(dir: &Path, now_ms: i64) -> Result<Paths, TlsError> {
    let paths = Paths {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let expires_path = dir.join("server.expires");
    if ca_path.exists() && paths.cert.exists() && paths.key.exists() {
        let expires_s: Option<i64> = fs::read_to_string(&expires_path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let due = expires_s
            .is_some_and(|end| end.saturating_mul(1000) < now_ms + RENEW_BEFORE.as_millis() as i64);
        if !due || !ca_key_path.exists() {
            return Ok(paths);
        }
        let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(&read(&ca_key_path)?))?;
        let issuer = rcgen::Issuer::new(ca_params(now_ms)?, ca_key);
        write_server_certificate(dir, &issuer, now_ms)?;
        tracing::info!(dir = %dir.display(), "server certificate renewed from the local CA");
        return Ok(paths);
    }
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_key = KeyPair::generate()?;
    let ca = CertifiedIssuer::self_signed(ca_params(now_ms)?, ca_key)?;
    write_file(&ca_key_path, ca.key().serialize_pem().as_bytes(), 0o600)?;
    write_server_certificate(dir, &*ca, now_ms)?;
    // The CA last: a CA on disk means the set is complete.
    write_file(&ca_path, ca.pem().as_bytes(), 0o644)?;
    Ok(paths)
}

/// A server certificate for `SELF_SIGNED_NAMES`, for server authentication only,
/// signed by the local CA, with its key and its end.
fn write_server_certificate<S: rcgen::SigningKey>(
    dir: &Path,
    issuer: &rcgen::Issuer<'_, S>,
    now_ms: i64,
) -> Result<(), TlsError> {
    let server_key = KeyPair::generate()?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let end_ms = now_ms + SERVER_LIFETIME.as_millis() as i64;
    params.not_before = at(now_ms - BACKDATE.as_millis() as i64);
    params.not_after = at(end_ms);
    let cert = params.signed_by(&server_key, issuer)?;
    // The key before the certificate: a reader that sees the new certificate finds its
    // key (the reload loop retries a pair that does not match).
    write_file(
        &dir.join("server-key.pem"),
        server_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&dir.join("server.pem"), cert.pem().as_bytes(), 0o644)?;
    write_file(
        &dir.join("server.expires"),
        (end_ms / 1000).to_string().as_bytes(),
        0o644,
    )?;
    Ok(())
}
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
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
        let now = 1_800_000_000_000;
        let (_, ca) = server_config(&source, now).unwrap();
        let ca = ca.unwrap();
        let first = fs::read(&ca).unwrap();
        server_config(&source, now).unwrap();
        assert_eq!(fs::read(&ca).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        for private in ["server-key.pem", "ca-key.pem"] {
            let mode = fs::metadata(dir.path().join(private))
                .unwrap()
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600, "{private}");
        }
    }

    #[test]
    fn the_server_certificate_is_renewed_from_the_same_ca_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let source = TlsSource::SelfSigned {
            dir: dir.path().to_path_buf(),
        };
        let day = 86_400_000;
        let start = 1_800_000_000_000;
        server_config(&source, start).unwrap();
        let ca = fs::read(dir.path().join("ca.pem")).unwrap();
        let cert = fs::read(dir.path().join("server.pem")).unwrap();
        let expires = fs::read_to_string(dir.path().join("server.expires")).unwrap();
        assert_eq!(expires, ((start + 365 * day) / 1000).to_string());
        // 300 days on: not due yet.
        server_config(&source, start + 300 * day).unwrap();
        assert_eq!(fs::read(dir.path().join("server.pem")).unwrap(), cert);
        // 340 days on: less than 30 days left.
        server_config(&source, start + 340 * day).unwrap();
        assert_ne!(fs::read(dir.path().join("server.pem")).unwrap(), cert);
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        let expires = fs::read_to_string(dir.path().join("server.expires")).unwrap();
        assert_eq!(expires, ((start + 705 * day) / 1000).to_string());
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
