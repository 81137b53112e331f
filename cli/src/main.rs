//! The `sluice` binary: `serve` runs the embedded default (control and data plane in
//! one process); `migrate`, `control-plane` and `data-plane` are the split deployment
//! (Postgres and an S3-compatible object store shared by every process); `bench`
//! drives a running server and reports what it measured.

mod admin;
mod bench;
mod connection;
mod consume;
mod records;
mod table;

// The HTTPS connection and SigV4 signing are the client library's.
use sluice_client::{connection as client, sigv4};

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A Kinesis-compatible streaming service, TLS only"
)]
struct Cli {
    /// How log lines are written to stderr: `text` for people, `json` (one object per
    /// line, with the request's id in every line of a request) for collectors.
    #[arg(long, global = true, env = "SLUICE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr at `SLUICE_LOG`'s filter (default `info`); colours only on a terminal.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // The current span and its parents in every line: a request's id and target.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run Sluice on its embedded default: SQLite and a local object store under --data-dir.
    Serve(ServeArgs),
    /// Apply the catalog's migrations to SLUICE_DATABASE_URL and exit.
    Migrate(MigrateArgs),
    /// The split deployment's control plane: the admin API, bootstrap and the periodic
    /// passes (key sweep, stream states, retention janitor). No Kinesis or KMS API.
    ControlPlane(SplitArgs),
    /// The split deployment's data plane: the Kinesis and KMS APIs, stateless (Postgres
    /// catalog and S3 object store shared with every other process).
    DataPlane(SplitArgs),
    /// Drive a running server over TLS and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Manage tenants (accounts) through a running server's admin API.
    Tenant {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::TenantCommand,
    },
    /// Manage a tenant's users and roles.
    Principal {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::PrincipalCommand,
    },
    /// Manage a principal's access keys.
    Key {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::KeyCommand,
    },
    /// Author a tenant's Cedar policies: validate, test, simulate, apply, diff, history,
    /// rollback.
    Policy {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::PolicyCommand,
    },
    /// A tenant's metered usage and its cost (shard-hours, PUT payload units, ...).
    Usage {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::UsageCommand,
    },
    /// Register where a tenant's Firehose destinations are (an S3-compatible store) and
    /// how to sign in to them; a destination's RoleARN names the connection.
    Connection {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: connection::ConnectionCommand,
    },
    /// Describe the tables Firehose's record format conversion writes (columns in
    /// Hive's types); a delivery stream's SchemaConfiguration names one.
    Table {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: table::TableCommand,
    },
    /// Read a tenant's audit trail of authorization decisions.
    Audit {
        #[command(flatten)]
        connect: admin::ConnectArgs,
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Put records (each argument, or each line of stdin) to a stream; with --encrypt
    /// KEY, each is sealed on this machine under a data key from that KMS key.
    Put(records::PutArgs),
    /// Print a stream's records (every shard, oldest first) as JSON lines; with
    /// --decrypt, open what `put --encrypt` sealed.
    Get(records::GetArgs),
    /// Read a stream as a member of a consumer group: each record as one JSON line on
    /// stdout, checkpointed after each batch is written; SIGTERM or Ctrl-C leaves the
    /// group cleanly.
    Consume(consume::ConsumeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where the catalog, objects and TLS material live.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    data_dir: PathBuf,
    /// Address to listen on (TLS only). Port 0 picks a free port.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:4567")]
    listen: SocketAddr,
    /// Catalog database (sqlite://PATH or postgres://...). Default: SQLite in --data-dir.
    /// Taken from the environment only, since a URL may carry a password.
    #[arg(
        long = "database-url",
        env = "SLUICE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// PEM certificate chain to serve instead of the self-made one.
    #[arg(long, env = "SLUICE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The region in ARNs and the one clients sign for.
    #[arg(long, env = "SLUICE_REGION", default_value = "us-east-1")]
    region: String,
    /// The account (tenant) that owns the streams, 12 digits.
    #[arg(long, env = "SLUICE_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// How long a shard iterator stays valid.
    #[arg(long, env = "SLUICE_ITERATOR_TTL_SECONDS", default_value_t = 300)]
    iterator_ttl_seconds: u64,
    /// The least DataFreshnessInSeconds a Kinesis channel may ask for (AWS's: 300).
    #[arg(
        long,
        env = "SLUICE_CHANNEL_MIN_FRESHNESS_SECONDS",
        default_value_t = 300
    )]
    channel_min_freshness_seconds: i64,
    /// Open shards an account may have.
    #[arg(long, env = "SLUICE_ACCOUNT_SHARD_LIMIT", default_value_t = protocol::limits::ACCOUNT_SHARDS_MAX_DEFAULT)]
    account_shard_limit: i64,
    /// On-demand streams an account may have (AWS's default quota: 50).
    #[arg(long, env = "SLUICE_ACCOUNT_ON_DEMAND_STREAM_LIMIT", default_value_t = protocol::limits::ACCOUNT_ON_DEMAND_STREAMS_MAX_DEFAULT)]
    account_on_demand_stream_limit: i64,
    /// The file holding the root key that seals every stored secret; made on first
    /// start when absent. Default: DATA_DIR/root.key. (Or set SLUICE_ROOT_KEY to the
    /// key itself, 64 hex characters, in the environment.)
    #[arg(long, env = "SLUICE_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// An AWS shared-credentials file whose [default] key the bootstrap admin gets when
    /// it has none, instead of a random one written to DATA_DIR/credentials.
    #[arg(long, env = "SLUICE_BOOTSTRAP_CREDENTIALS_FILE")]
    bootstrap_credentials_file: Option<PathBuf>,
    /// How far a request's signing time may be from the server's clock (1..=900).
    #[arg(long, env = "SLUICE_CLOCK_SKEW_SECONDS", default_value_t = 900)]
    clock_skew_seconds: u64,
    /// Compaction rewrites a chunk into a per-shard object once its newest record is
    /// this many seconds old.
    #[arg(long, env = "SLUICE_COMPACTION_SETTLE_SECONDS", default_value_t = storage::compact::SETTLE_DEFAULT.as_secs())]
    compaction_settle_seconds: u64,
    /// How long a new stream stays CREATING and a deleted one DELETING, in ms (at most
    /// 60,000); 0 makes both immediate.
    #[arg(long, env = "SLUICE_STREAM_TRANSITION_MS", default_value_t = 500)]
    stream_transition_ms: u64,
    /// Bytes a shard accepts per second (Kinesis: 1 MiB); 0 turns the limit off.
    #[arg(long, env = "SLUICE_SHARD_WRITE_BYTES_PER_SECOND", default_value_t = 1024 * 1024)]
    shard_write_bytes_per_second: u64,
    /// Records a shard accepts per second (Kinesis: 1,000); 0 turns the limit off.
    #[arg(
        long,
        env = "SLUICE_SHARD_WRITE_RECORDS_PER_SECOND",
        default_value_t = 1_000
    )]
    shard_write_records_per_second: u64,
    /// Bytes GetRecords returns from a shard per second (Kinesis: 2 MiB); 0: off.
    #[arg(long, env = "SLUICE_SHARD_READ_BYTES_PER_SECOND", default_value_t = 2 * 1024 * 1024)]
    shard_read_bytes_per_second: u64,
    /// GetRecords calls a shard serves per second (Kinesis: 5); 0 turns the limit off.
    #[arg(long, env = "SLUICE_SHARD_READ_CALLS_PER_SECOND", default_value_t = 5)]
    shard_read_calls_per_second: u64,
    /// Open shards an ON_DEMAND stream keeps at least while it scales by itself.
    #[arg(long, env = "SLUICE_ON_DEMAND_SHARDS_MIN", default_value_t = protocol::limits::ON_DEMAND_INITIAL_SHARDS as u32)]
    on_demand_shards_min: u32,
    /// Open shards an ON_DEMAND stream grows to at most.
    #[arg(long, env = "SLUICE_ON_DEMAND_SHARDS_MAX", default_value_t = 200)]
    on_demand_shards_max: u32,
    /// The window, in seconds, over which an ON_DEMAND stream's write rates decide
    /// its splits and merges (1..=3600).
    #[arg(long, env = "SLUICE_ON_DEMAND_WINDOW_SECONDS", default_value_t = 60)]
    on_demand_window_seconds: u64,
    /// Whether PutRecord(s) also draw on per-shard budgets kept in the catalog, so that
    /// the write limits hold across every process sharing it (true or false). Default:
    /// true with a Postgres catalog, false with SQLite (one process: in-memory limits).
    #[arg(long, env = "SLUICE_SHARED_THROUGHPUT_LIMITS")]
    shared_throughput_limits: Option<bool>,
    /// A JSON price list for usage reports ({"version", "currency", "shard_hour",
    /// "extended_retention_shard_hour", "put_payload_unit", "kms_request", ...}, prices
    /// as decimal strings or numbers). Default: AWS's published us-east-1 prices.
    #[arg(long, env = "SLUICE_PRICE_LIST")]
    price_list: Option<PathBuf>,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// Connections the process holds open at most; more are closed on arrival.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", default_value_t = 4_096)]
    max_connections: usize,
    /// Connections one client address holds open at most.
    #[arg(
        long,
        env = "SLUICE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1_024
    )]
    max_connections_per_address: usize,
    /// A connection on which nothing is read or written for this many seconds is
    /// closed (at least 21: longer than SQS's longest wait).
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT_SECONDS", default_value_t = 60)]
    idle_timeout_seconds: u64,
    /// Seconds a PutRecord(s) idempotency key (X-Sluice-Idempotency-Key) holds its
    /// answer: a retry within it writes nothing and gets the same answer (1..=86400).
    #[arg(long, env = "SLUICE_IDEMPOTENCY_WINDOW_SECONDS", default_value_t = 300)]
    idempotency_window_seconds: u64,
    /// Days the audit trail keeps a row (whole batches go at once); 0 keeps them all.
    #[arg(long, env = "SLUICE_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    audit_retention_days: u64,
    /// Seconds a new connection has to complete its TLS handshake (1..=60).
    #[arg(long, env = "SLUICE_HANDSHAKE_TIMEOUT_SECONDS", default_value_t = 10)]
    handshake_timeout_seconds: u64,
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The catalog database (postgres://... or sqlite://PATH); or SLUICE_DATABASE_URL_FILE
    /// naming a file that holds it.
    #[arg(
        long = "database-url",
        env = "SLUICE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

/// A setting given directly or, for a secret mounted as a file (as Kubernetes mounts
/// Secrets), by the variable `file_var` (`SLUICE_..._FILE`) naming the file: its
/// content without the final newline.
fn or_from_file(value: Option<String>, file_var: &str) -> anyhow::Result<Option<String>> {
    if value.as_deref().is_some_and(|v| !v.is_empty()) {
        return Ok(value);
    }
    match std::env::var_os(file_var) {
        None => Ok(value),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.trim_end_matches(['\n', '\r']).to_string())),
            // A Secret without that key (an S3 endpoint left to the default, say): the
            // setting is absent, and a required one is refused where it is checked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(value),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "reading {file_var} ({})",
                    std::path::Path::new(&path).display()
                )
            }),
        },
    }
}

/// Where the split deployment's objects live. The credentials come from the
/// environment only (SLUICE_S3_ACCESS_KEY_ID, SLUICE_S3_SECRET_ACCESS_KEY); without
/// them nothing signs the requests.
#[derive(clap::Args)]
struct S3Args {
    /// The S3-compatible endpoint: https://..., or http://127.0.0.1:PORT for a server on
    /// this machine. Default: AWS's endpoint for --s3-region.
    #[arg(long = "s3-endpoint", env = "SLUICE_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The bucket (it must exist).
    #[arg(long = "s3-bucket", env = "SLUICE_S3_BUCKET")]
    s3_bucket: Option<String>,
    /// The bucket's region (default us-east-1).
    #[arg(long = "s3-region", env = "SLUICE_S3_REGION")]
    s3_region: Option<String>,
    /// Path-style addressing (https://host/bucket/key) instead of virtual-hosted.
    #[arg(
        long = "s3-path-style",
        env = "SLUICE_S3_PATH_STYLE",
        default_value = "false",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    s3_path_style: bool,
}

#[derive(clap::Args)]
struct SplitArgs {
    #[command(flatten)]
    server: ServeArgs,
    #[command(flatten)]
    s3: S3Args,
}

impl SplitArgs {
    fn into_config(self, role: data_plane::Role) -> anyhow::Result<data_plane::Config> {
        let s3 = self.s3;
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        // Each also from SLUICE_S3_..._FILE (a Secret mounted as files).
        let env = |var: &str, file_var: &str| or_from_file(std::env::var(var).ok(), file_var);
        let s3 = storage::objects::S3Config {
            endpoint: nonempty(or_from_file(s3.s3_endpoint, "SLUICE_S3_ENDPOINT_FILE")?),
            bucket: or_from_file(s3.s3_bucket, "SLUICE_S3_BUCKET_FILE")?.unwrap_or_default(),
            region: nonempty(or_from_file(s3.s3_region, "SLUICE_S3_REGION_FILE")?)
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: nonempty(env(
                "SLUICE_S3_ACCESS_KEY_ID",
                "SLUICE_S3_ACCESS_KEY_ID_FILE",
            )?),
            secret_access_key: nonempty(env(
                "SLUICE_S3_SECRET_ACCESS_KEY",
                "SLUICE_S3_SECRET_ACCESS_KEY_FILE",
            )?)
            .map(|v| data_plane::SecretText(zeroize::Zeroizing::new(v))),
            path_style: s3.s3_path_style,
        };
        if s3.bucket.is_empty() {
            anyhow::bail!("--s3-bucket / SLUICE_S3_BUCKET must name a bucket");
        }
        s3.allows_http().map_err(anyhow::Error::msg)?;
        let mut config = self.server.into_config()?;
        // Every process must share the catalog and the root key: a database or key of
        // its own would make it a separate service.
        if !config
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres:") || u.starts_with("postgresql:"))
        {
            anyhow::bail!(
                "SLUICE_DATABASE_URL must be a postgres:// URL shared by every control and data plane"
            );
        }
        if config.root_key_hex.is_none() && config.root_key_file.is_none() {
            anyhow::bail!(
                "set SLUICE_ROOT_KEY (or --root-key-file / SLUICE_ROOT_KEY_FILE): every plane \
                 must seal and open under the same root key"
            );
        }
        config.role = role;
        config.object_store = storage::objects::ObjectStoreConfig::S3(s3);
        Ok(config)
    }
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<data_plane::Config> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!(
                "--account-id / SLUICE_ACCOUNT_ID must be 12 digits, got {:?}",
                self.account_id
            );
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            anyhow::bail!(
                "--region / SLUICE_REGION must look like us-east-1, got {:?}",
                self.region
            );
        }
        if self.iterator_ttl_seconds == 0 || self.iterator_ttl_seconds > 3_600 {
            anyhow::bail!(
                "--iterator-ttl-seconds / SLUICE_ITERATOR_TTL_SECONDS must be 1..=3600, got {}",
                self.iterator_ttl_seconds
            );
        }
        if !(1..=300).contains(&self.channel_min_freshness_seconds) {
            anyhow::bail!(
                "--channel-min-freshness-seconds / SLUICE_CHANNEL_MIN_FRESHNESS_SECONDS must be 1..=300, got {}",
                self.channel_min_freshness_seconds
            );
        }
        if self.account_shard_limit < 1 {
            anyhow::bail!(
                "--account-shard-limit / SLUICE_ACCOUNT_SHARD_LIMIT must be at least 1, got {}",
                self.account_shard_limit
            );
        }
        if self.account_on_demand_stream_limit < 1 {
            anyhow::bail!(
                "--account-on-demand-stream-limit / SLUICE_ACCOUNT_ON_DEMAND_STREAM_LIMIT must be at least 1, got {}",
                self.account_on_demand_stream_limit
            );
        }
        if self.clock_skew_seconds == 0 || self.clock_skew_seconds > 900 {
            anyhow::bail!(
                "--clock-skew-seconds / SLUICE_CLOCK_SKEW_SECONDS must be 1..=900, got {}",
                self.clock_skew_seconds
            );
        }
        // The root key as a value comes from the environment only (a Kubernetes Secret
        // as an environment variable), never from argv, where any user could read it.
        let root_key_hex = std::env::var("SLUICE_ROOT_KEY")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| data_plane::SecretText(zeroize::Zeroizing::new(v)));
        if root_key_hex.is_some() && self.root_key_file.is_some() {
            anyhow::bail!(
                "set SLUICE_ROOT_KEY or --root-key-file / SLUICE_ROOT_KEY_FILE, not both"
            );
        }
        let prices = match &self.price_list {
            None => catalog::billing::PriceList::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the price list {}", path.display()))?;
                let prices: catalog::billing::PriceList = serde_json::from_str(&text)
                    .with_context(|| format!("the price list {} is not valid", path.display()))?;
                prices.check().map_err(anyhow::Error::msg)?;
                prices
            }
        };
        if self.stream_transition_ms > 60_000 {
            anyhow::bail!(
                "--stream-transition-ms / SLUICE_STREAM_TRANSITION_MS must be 0..=60000, got {}",
                self.stream_transition_ms
            );
        }
        if !(1..=3600).contains(&self.on_demand_window_seconds) {
            anyhow::bail!(
                "--on-demand-window-seconds / SLUICE_ON_DEMAND_WINDOW_SECONDS must be 1..=3600, got {}",
                self.on_demand_window_seconds
            );
        }
        if self.on_demand_shards_min == 0
            || self.on_demand_shards_min > self.on_demand_shards_max
            || i64::from(self.on_demand_shards_max) > protocol::limits::STREAM_SHARDS_MAX
        {
            anyhow::bail!(
                "the on-demand shard bounds must satisfy 1 <= min <= max <= {}; got min {} and max {}",
                protocol::limits::STREAM_SHARDS_MAX,
                self.on_demand_shards_min,
                self.on_demand_shards_max
            );
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            anyhow::bail!("--max-connections and --max-connections-per-address must be at least 1");
        }
        if !(1..=60).contains(&self.handshake_timeout_seconds) {
            anyhow::bail!("--handshake-timeout-seconds must be 1..=60");
        }
        if !(1..=86_400).contains(&self.idle_timeout_seconds) {
            anyhow::bail!("--idle-timeout-seconds must be 1..=86400");
        }
        if !(1..=86_400).contains(&self.idempotency_window_seconds) {
            anyhow::bail!("--idempotency-window-seconds must be 1..=86400");
        }
        if self.audit_retention_days > 36_500 {
            anyhow::bail!("--audit-retention-days must be 0..=36500");
        }
        Ok(data_plane::Config {
            idempotency_window: Duration::from_secs(self.idempotency_window_seconds),
            audit_retention: (self.audit_retention_days > 0)
                .then(|| Duration::from_secs(self.audit_retention_days * 86_400)),
            connections: data_plane::connections::ConnectionLimits {
                max: self.max_connections,
                per_address: self.max_connections_per_address,
                idle: Duration::from_secs(self.idle_timeout_seconds),
                handshake: Duration::from_secs(self.handshake_timeout_seconds),
            },
            on_demand: kinesis::OnDemandScaling {
                shards_min: self.on_demand_shards_min,
                shards_max: self.on_demand_shards_max,
                window: Duration::from_secs(self.on_demand_window_seconds),
            },
            role: data_plane::Role::All,
            object_store: storage::objects::ObjectStoreConfig::Local,
            stream_transition_ms: self.stream_transition_ms,
            shard_limits: kinesis::throttle::ShardLimits {
                write_bytes: self.shard_write_bytes_per_second,
                write_records: self.shard_write_records_per_second,
                read_bytes: self.shard_read_bytes_per_second,
                read_calls: self.shard_read_calls_per_second,
            },
            shared_throughput_limits: self.shared_throughput_limits,
            prices,
            root_key_hex,
            data_dir: self.data_dir,
            listen: self.listen,
            database_url: or_from_file(self.database_url, "SLUICE_DATABASE_URL_FILE")?,
            tls_files: self.tls_cert.zip(self.tls_key),
            region: self.region,
            account_id: self.account_id,
            iterator_ttl_ms: self.iterator_ttl_seconds * 1000,
            channel_freshness_min_s: self.channel_min_freshness_seconds,
            account_shards_max: self.account_shard_limit,
            account_on_demand_streams_max: self.account_on_demand_stream_limit,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            root_key_file: self.root_key_file,
            bootstrap_credentials_file: self.bootstrap_credentials_file,
            clock_skew: Duration::from_secs(self.clock_skew_seconds),
            compaction_settle: Duration::from_secs(self.compaction_settle_seconds),
        })
    }
}

/// The process's allocator (see the workspace Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args.into_config()?)),
        Command::Migrate(args) => runtime.block_on(migrate(args)),
        Command::ControlPlane(args) => {
            runtime.block_on(serve(args.into_config(data_plane::Role::ControlPlane)?))
        }
        Command::DataPlane(args) => {
            runtime.block_on(serve(args.into_config(data_plane::Role::DataPlane)?))
        }
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Tenant { connect, command } => runtime.block_on(admin::tenant(connect, command)),
        Command::Principal { connect, command } => {
            runtime.block_on(admin::principal(connect, command))
        }
        Command::Key { connect, command } => runtime.block_on(admin::key(connect, command)),
        Command::Policy { connect, command } => runtime.block_on(admin::policy(connect, command)),
        Command::Audit { connect, command } => runtime.block_on(admin::audit(connect, command)),
        Command::Usage { connect, command } => runtime.block_on(admin::usage(connect, command)),
        Command::Connection { connect, command } => {
            runtime.block_on(connection::run(connect, command))
        }
        Command::Table { connect, command } => runtime.block_on(table::run(connect, command)),
        Command::Put(args) => runtime.block_on(records::put(args)),
        Command::Get(args) => runtime.block_on(records::get(args)),
        Command::Consume(args) => runtime.block_on(consume::run(args)),
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let Some(url) = or_from_file(args.database_url, "SLUICE_DATABASE_URL_FILE")? else {
        anyhow::bail!(
            "name the catalog: --database-url, SLUICE_DATABASE_URL or SLUICE_DATABASE_URL_FILE"
        );
    };
    let redacted = catalog::database::redact_url(&url);
    let catalog = catalog::Catalog::open(&url)
        .await
        .with_context(|| format!("migrating the catalog at {redacted}"))?;
    catalog.close().await;
    println!("sluice: the catalog at {redacted} is migrated");
    Ok(())
}

async fn serve(config: data_plane::Config) -> anyhow::Result<()> {
    let server = data_plane::Server::start(config)
        .await
        .context("starting sluice")?;
    {
        let mut out = std::io::stdout().lock();
        if let Some(ca) = server.ca_path() {
            writeln!(out, "sluice: CA certificate at {}", ca.display())?;
        }
        if server.credentials_path().exists() {
            writeln!(
                out,
                "sluice: credentials at {}",
                server.credentials_path().display()
            )?;
        }
        writeln!(out, "sluice: listening on https://{}", server.local_addr())?;
        out.flush()?;
    }
    server.run(shutdown_signal()).await.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
