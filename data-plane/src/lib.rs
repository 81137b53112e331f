//! The data plane: the TLS gateway that speaks Kinesis, and the storage engine under it
//! (group commit of chunks sealed under per-stream data keys into the object store,
//! the chunk index in the catalog, shard reads and shard iterators).
//!
//! `Server::start` binds and prepares everything; `Server::run` serves until the
//! shutdown future completes, then drains: in-flight requests finish (up to a grace
//! period), the writer flushes what it was given, and the catalog closes.

pub mod admin;
pub mod auth;
pub mod authz;
pub mod bearer;
pub mod budget;
pub mod cedarterms;
pub mod connections;
pub mod datadir;
pub mod gateway;
pub mod iampolicy;
pub mod idempotency;
pub mod intake;
pub mod keyperms;
pub mod metrics;
pub mod state;
pub mod tls;
pub mod trail;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use catalog::rootkey::RootKey;
use catalog::{Catalog, CatalogError, identity};

use protocol::clock::{SharedClock, SystemClock};

use crate::auth::Authenticator;

use kinesis::iterator::IteratorKey;
use kinesis::throttle::Throttle;

use crate::state::AppState;
use crate::tls::{TlsError, TlsSource};
use storage::commit::Committer;
use storage::keyring::Keyring;
use storage::objects::{ObjectStore, ObjectStoreConfig, S3Store};
use storage::segment::SegmentStore;

pub use storage::SecretText;

/// What one process serves and which periodic passes it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `sluice serve`: everything in one process.
    All,
    /// `sluice control-plane`: the admin API (`/admin/v1`), `/health` and `/metrics`;
    /// bootstraps the administering tenant; runs the KMS key sweep, the stream state
    /// sweep and the retention janitor. Kinesis and KMS requests are refused: they go
    /// to a data plane.
    ControlPlane,
    /// `sluice data-plane`: the Kinesis and KMS APIs, `/health` and `/metrics`; keeps
    /// nothing of its own (catalog and object store are shared), so any number serve
    /// any stream. Runs the stream state sweep only.
    DataPlane,
}

impl Role {
    /// Serves `POST /` (Kinesis and KMS).
    pub fn serves_data_api(self) -> bool {
        matches!(self, Role::All | Role::DataPlane)
    }

    /// Serves `/admin/v1`.
    pub fn serves_admin_api(self) -> bool {
        matches!(self, Role::All | Role::ControlPlane)
    }

    /// Bootstraps the administering tenant and runs the passes that need to run in one
    /// place only in the normal course (the key sweep, the janitor). They are safe in
    /// several (the catalog's UPDATEs and DELETEs decide), but each data plane running
    /// them would only multiply the work: a janitor pass lists the whole bucket.
    pub fn runs_control_passes(self) -> bool {
        matches!(self, Role::All | Role::ControlPlane)
    }
}

/// What a server needs to know; validated by the CLI before it gets here.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    /// Segment files under `DATA_DIR/objects`, or an S3-compatible bucket.
    pub object_store: ObjectStoreConfig,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `None`: SQLite at `DATA_DIR/catalog.db`.
    pub database_url: Option<String>,
    /// `None`: a CA and certificate made under `DATA_DIR/tls`.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub region: String,
    pub account_id: String,
    pub iterator_ttl_ms: u64,
    /// The least DataFreshnessInSeconds a Kinesis channel may ask for.
    pub channel_freshness_min_s: i64,
    pub account_shards_max: i64,
    /// On-demand streams an account may have (AWS: 50).
    pub account_on_demand_streams_max: i64,
    pub shutdown_grace: Duration,
    /// `None`: `DATA_DIR/root.key`, made on first start.
    pub root_key_file: Option<PathBuf>,
    /// An AWS shared-credentials file whose `[default]` key the bootstrap admin gets
    /// when it has none (instead of a random key written to `DATA_DIR/credentials`).
    pub bootstrap_credentials_file: Option<PathBuf>,
    /// The root key itself, 64 hex characters (from `SLUICE_ROOT_KEY`); when set, no
    /// file is read or made.
    pub root_key_hex: Option<SecretText>,
    /// How long a stream stays CREATING or DELETING; 0 makes both immediate.
    pub stream_transition_ms: u64,
    /// Per-shard throughput limits (Kinesis's by default).
    pub shard_limits: kinesis::throttle::ShardLimits,
    /// How ON_DEMAND streams split and merge by themselves.
    pub on_demand: kinesis::OnDemandScaling,
    /// Whether writes also draw on per-shard budgets shared through the catalog, so
    /// that the limits hold across processes; `None`: when the catalog is Postgres.
    pub shared_throughput_limits: Option<bool>,
    /// What usage reports charge.
    pub prices: catalog::billing::PriceList,
    /// How far a request's signing time may be from the server's clock (at most 15 min).
    pub clock_skew: Duration,
    /// Compaction rewrites a chunk once its newest record is this old.
    pub compaction_settle: Duration,
    /// Connection caps and timeouts.
    pub connections: connections::ConnectionLimits,
    /// Audit rows older than this are removed (whole batches); `None` keeps them all.
    pub audit_retention: Option<Duration>,
    /// How long an idempotency key of a put holds its answer.
    pub idempotency_window: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another sluice is serving from {dir} (it holds {dir}/sluice.lock): stop it, or give this one another --data-dir"
    )]
    DataDirInUse { dir: PathBuf },
    #[error("the data directory {path} must be private (0700) and this user cannot make it so")]
    DataDirMode {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the catalog")]
    Catalog(#[from] CatalogError),
    #[error("setting up TLS")]
    Tls(#[from] TlsError),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving")]
    Serve(#[source] std::io::Error),
    #[error("loading the authorization policies")]
    Authz(#[from] crate::authz::AuthzError),
    #[error("loading the root key")]
    RootKey(#[from] catalog::rootkey::RootKeyError),
    #[error("opening the object store ({what})")]
    ObjectStore {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading or writing the bootstrap credentials file {path}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Server {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    tls_source: TlsSource,
    ca_path: Option<PathBuf>,
    state: Arc<AppState>,
    credentials_path: PathBuf,
    writer: tokio::task::JoinHandle<()>,
    /// Appends authorization decisions to the audit trail until the router is gone.
    auditor: tokio::task::JoinHandle<()>,
    catalog: Catalog,
    grace: Duration,
    /// Held while the process serves: a second `sluice serve` on the same data
    /// directory refuses to start.
    _data_dir_lock: Option<std::fs::File>,
}

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the TLS certificate files are read again for a change.
const TLS_RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The name of the shard-iterator MAC key among the server secrets.
const ITERATOR_SECRET: &str = "shard-iterator-hmac-sha256";
/// The name of the audit chain's MAC key among the server secrets.
const AUDIT_CHAIN_SECRET: &str = "audit-chain-hmac-sha256";
/// Shards a Firehose DirectPut buffer stream has: writes spread over them, so one
/// delivery stream is not limited to one shard's chunk per flush.
const FIREHOSE_BUFFER_SHARDS: u32 = 4;

impl Server {
    /// Binds and prepares a server on the machine's clock.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        Self::start_with_clock(config, SystemClock::shared()).await
    }

    /// Binds and prepares a server whose every time decision asks `clock`.
    pub async fn start_with_clock(
        config: Config,
        clock: SharedClock,
    ) -> Result<Server, StartError> {
        let dir = &config.data_dir;
        let data_dir_lock = datadir::prepare(dir, config.role == Role::All)?;
        let tls_source = match &config.tls_files {
            Some((cert, key)) => TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            None => TlsSource::SelfSigned {
                dir: dir.join("tls"),
            },
        };
        let (tls, ca_path) = tls::server_config(&tls_source, clock.now_ms())?;
        let url = match &config.database_url {
            Some(url) => url.clone(),
            None => {
                let path = dir.join("catalog.db");
                datadir::private_sqlite(&path)?;
                format!("sqlite://{}", path.display())
            }
        };
        let catalog = Catalog::open(&url).await?;
        let root_key_path = config
            .root_key_file
            .clone()
            .unwrap_or_else(|| dir.join("root.key"));
        let root = Arc::new(match &config.root_key_hex {
            Some(hex) => RootKey::from_hex(&hex.0)?,
            None => RootKey::load_or_create(&root_key_path)?,
        });
        let secret = catalog
            .server_secret(&root, ITERATOR_SECRET, || {
                let mut key = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut key).expect("system randomness");
                key
            })
            .await?;
        let credentials_path = dir.join("credentials");
        let now_ms = clock.now_ms();
        let given = match &config.bootstrap_credentials_file {
            Some(path) if config.role.runs_control_passes() => {
                Some(identity::read_credentials_file(path).map_err(|source| {
                    StartError::Credentials {
                        path: path.clone(),
                        source,
                    }
                })?)
            }
            _ => None,
        };
        if config.role.runs_control_passes()
            && let Some(key) = catalog
                .bootstrap_with(&root, &config.account_id, given.as_ref(), now_ms)
                .await?
        {
            identity::write_credentials_file(&credentials_path, &key).map_err(|source| {
                StartError::Credentials {
                    path: credentials_path.clone(),
                    source,
                }
            })?;
            tracing::info!(path = %credentials_path.display(), access_key_id = %key.access_key_id, "bootstrap admin credentials written");
        }
        let authenticator = Arc::new(Authenticator::new(
            catalog.clone(),
            root.clone(),
            config.region.clone(),
            config.clock_skew,
            clock.clone(),
        ));
        let store = Arc::new(match &config.object_store {
            ObjectStoreConfig::Local => ObjectStore::Local(
                SegmentStore::open(&dir.join("objects"), clock.clone()).map_err(|source| {
                    StartError::DataDir {
                        path: dir.join("objects"),
                        source,
                    }
                })?,
            ),
            ObjectStoreConfig::S3(s3) => {
                let what = format!("S3 bucket {:?}", s3.bucket);
                let store =
                    S3Store::open(s3, clock.clone()).map_err(|source| StartError::ObjectStore {
                        what: what.clone(),
                        source,
                    })?;
                // Fail at start, not on the first write, when the bucket is unreachable.
                store
                    .check()
                    .await
                    .map_err(|source| StartError::ObjectStore { what, source })?;
                ObjectStore::S3(store)
            }
        });
        let keyring = Arc::new(Keyring::new(
            catalog.clone(),
            root.clone(),
            envelope::RotationPolicy::default(),
            clock.clone(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keyring.clone(),
            clock.clone(),
        );
        // The metrics recorder, before anything records.
        crate::metrics::handle();
        let (audit_queue, audit_entries) = tokio::sync::mpsc::channel(authz::AUDIT_QUEUE_MAX);
        let audit_failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trail = Arc::new(trail::Limiter::default());
        let audit_chain_key = Arc::new(
            catalog
                .server_secret(&root, AUDIT_CHAIN_SECRET, || {
                    let mut key = vec![0u8; 32];
                    aws_lc_rs::rand::fill(&mut key).expect("system randomness");
                    key
                })
                .await?,
        );
        let auditor = tokio::spawn(authz::audit_writer(
            catalog.clone(),
            audit_entries,
            audit_failing.clone(),
            trail.clone(),
            audit_chain_key.clone(),
            clock.clone(),
        ));
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let authz = Arc::new(authz::Authz::new(
            catalog.clone(),
            config.account_id.clone(),
            config.region.clone(),
            audit_queue,
            audit_failing,
            trail,
            clock.clone(),
        )?);
        let kms = Arc::new(kms::KmsService {
            catalog: catalog.clone(),
            root_key: root.clone(),
            authz: authz.clone(),
            region: config.region.clone(),
            clock: clock.clone(),
        });
        let groups = Arc::new(groups::GroupsService {
            catalog: catalog.clone(),
            authz: authz.clone(),
            region: config.region.clone(),
            clock: clock.clone(),
        });
        let firehose = Arc::new(firehose::FirehoseService {
            catalog: catalog.clone(),
            authz: authz.clone(),
            keys: Arc::new(state::FirehoseKeys(kms.clone())),
            region: config.region.clone(),
            clock: clock.clone(),
            committer: committer.clone(),
            store: store.clone(),
            keyring: keyring.clone(),
            root_key: root.clone(),
            buffer_shards: FIREHOSE_BUFFER_SHARDS,
            channel_freshness_min_s: config.channel_freshness_min_s,
        });
        let sqs = Arc::new(sqs::SqsService {
            catalog: catalog.clone(),
            authz: authz.clone(),
            region: config.region.clone(),
            clock: clock.clone(),
            root_key: root.clone(),
            keys: Arc::new(state::QueueKeys(kms.clone())),
            held_keys: Default::default(),
            queues: Default::default(),
            waiters: Default::default(),
        });
        let sns = Arc::new(sns::SnsService {
            catalog: catalog.clone(),
            authz: authz.clone(),
            region: config.region.clone(),
            clock: clock.clone(),
            queues: Arc::new(state::SnsQueues(sqs.clone())),
            root_key: root.clone(),
            signing: Default::default(),
        });
        let kinesis = Arc::new(kinesis::Kinesis {
            config: kinesis::KinesisConfig {
                region: config.region.clone(),
                account_shards_max: config.account_shards_max,
                account_on_demand_streams_max: config.account_on_demand_streams_max,
                stream_transition_ms: config.stream_transition_ms,
                shard_limits: config.shard_limits,
                on_demand: config.on_demand,
            },
            catalog: catalog.clone(),
            store: store.clone(),
            keyring: keyring.clone(),
            committer,
            iterators: IteratorKey::new(&secret, config.iterator_ttl_ms),
            authz: authz.clone(),
            keys: Arc::new(state::KinesisKeys(kms.clone())),
            streams: kinesis::StreamCache::default(),
            throttle: if config
                .shared_throughput_limits
                .unwrap_or(catalog.backend() == catalog::Backend::Postgres)
            {
                Throttle::shared(config.shard_limits, catalog.clone(), clock.clone())
            } else {
                Throttle::new(config.shard_limits, clock.clone())
            },
            subscriptions: Default::default(),
            clock: clock.clone(),
        });
        let state = Arc::new(AppState {
            authenticator,
            tokens: bearer::TokenService::new(catalog.clone(), root.clone(), clock.clone()),
            authz,
            root_key: root,
            catalog: catalog.clone(),
            store,
            keyring,
            grace: config.shutdown_grace,
            bodies: Default::default(),
            clock,
            kinesis,
            kms,
            groups,
            firehose,
            sqs,
            sns,
            config,
            audit_chain_key,
        });
        Ok(Server {
            listener,
            local_addr,
            tls,
            tls_source,
            ca_path,
            grace: state.grace,
            state,
            credentials_path,
            writer,
            auditor,
            catalog,
            _data_dir_lock: data_dir_lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The CA certificate clients should trust, when the server made its own.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// The AWS shared-credentials file with the bootstrap admin's key (written on
    /// first start only).
    pub fn credentials_path(&self) -> &Path {
        &self.credentials_path
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let handle = axum_server::Handle::new();
        let grace = self.grace;
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing in-flight requests");
            stopper.graceful_shutdown(Some(grace));
        });
        // Background passes, each holding what it works on until it is stopped below.
        let state = &self.state;
        let passes = control_plane::Passes::start(
            Arc::new(control_plane::PassContext {
                catalog: state.catalog.clone(),
                store: state.store.clone(),
                keyring: state.keyring.clone(),
                kinesis: state.kinesis.clone(),
                kms: state.kms.clone(),
                clock: state.clock.clone(),
                compaction_settle: state.config.compaction_settle,
                audit_retention: state.config.audit_retention,
                audit_chain_key: state.audit_chain_key.clone(),
            }),
            state.config.role.runs_control_passes(),
        );
        // Firehose delivery runs where the control passes run.
        let deliverers = state
            .config
            .role
            .runs_control_passes()
            .then(|| firehose::deliver::Deliverers::start(state.firehose.clone()));
        let limits = state.config.connections;
        let live = axum_server::tls_rustls::RustlsConfig::from_config(self.tls);
        let reloader = tokio::spawn(tls::reload_loop(
            self.tls_source,
            live.clone(),
            state.clock.clone(),
            TLS_RELOAD_EVERY,
        ));
        let router = gateway::router(self.state);
        // A connection is admitted under the caps and must open with a TLS handshake
        // (`connections`), then has `limits.handshake` for it (rustls), then
        // HEADER_READ_TIMEOUT for its first request's headers; bodies have `intake`'s
        // deadline; an idle connection is closed after `limits.idle`.
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(live)
            .handshake_timeout(limits.handshake)
            .acceptor(connections::Admission::new(limits));
        let mut server = axum_server::from_tcp(self.listener)
            .map_err(StartError::Serve)?
            .acceptor(tls::VersionedAcceptor(acceptor))
            .first_request_timeout(HEADER_READ_TIMEOUT)
            .handle(handle);
        server
            .http_builder()
            .http1()
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let served = server
            .serve(router.into_make_service_with_connect_info::<SocketAddr>())
            .await;
        // The passes hold the Kinesis state (and with it a Committer): stop them before
        // the writer drains. A pass cut short commits nothing it had not finished.
        passes.stop().await;
        if let Some(deliverers) = deliverers {
            deliverers.stop().await;
        }
        reloader.abort();
        // The router (and with it the last Committer) is gone: the writer drains its
        // queue and stops.
        if tokio::time::timeout(grace + Duration::from_secs(5), self.writer)
            .await
            .is_err()
        {
            tracing::error!(
                "the writer did not finish in time; unacknowledged writes were abandoned"
            );
        }
        // The same for the audit trail: every decision queued is written before the
        // catalog closes.
        if tokio::time::timeout(Duration::from_secs(10), self.auditor)
            .await
            .is_err()
        {
            tracing::error!("the audit writer did not finish in time");
        }
        self.catalog.close().await;
        served.map_err(StartError::Serve)
    }
}
