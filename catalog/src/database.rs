//! Opening the catalog database, applying migrations, and the errors of this crate.

use std::borrow::Cow;
use std::time::Duration;
use zeroize::Zeroizing;

pub use crate::error::{Backend, CatalogError};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, Executor, SqlSafeStr};

/// Migrations, embedded so the binary needs no files beside it.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../../migrations/sqlite/0001_catalog.sql"),
    ),
    (
        2,
        "identity",
        include_str!("../../migrations/sqlite/0002_identity.sql"),
    ),
    (
        3,
        "data keys",
        include_str!("../../migrations/sqlite/0003_data_keys.sql"),
    ),
    (
        4,
        "tokens",
        include_str!("../../migrations/sqlite/0004_tokens.sql"),
    ),
    (
        5,
        "kms",
        include_str!("../../migrations/sqlite/0005_kms.sql"),
    ),
    (
        6,
        "policies and audit",
        include_str!("../../migrations/sqlite/0006_policies_audit.sql"),
    ),
    (
        7,
        "usage",
        include_str!("../../migrations/sqlite/0007_usage.sql"),
    ),
    (
        8,
        "stream states",
        include_str!("../../migrations/sqlite/0008_stream_states.sql"),
    ),
    (
        9,
        "shard write budgets",
        include_str!("../../migrations/sqlite/0009_shard_write_budgets.sql"),
    ),
    (
        10,
        "consumers",
        include_str!("../../migrations/sqlite/0010_consumers.sql"),
    ),
    (
        11,
        "compaction",
        include_str!("../../migrations/sqlite/0011_compaction.sql"),
    ),
    (
        12,
        "shard count updates",
        include_str!("../../migrations/sqlite/0012_shard_count_updates.sql"),
    ),
    (
        13,
        "stream settings",
        include_str!("../../migrations/sqlite/0013_stream_settings.sql"),
    ),
    (
        14,
        "kms grants and key specs",
        include_str!("../../migrations/sqlite/0014_kms_grants.sql"),
    ),
    (
        15,
        "max record size",
        include_str!("../../migrations/sqlite/0015_max_record_size.sql"),
    ),
    (
        16,
        "revocations per tenant",
        include_str!("../../migrations/sqlite/0016_revocations_per_tenant.sql"),
    ),
    (
        17,
        "audit chain",
        include_str!("../../migrations/sqlite/0017_audit_chain.sql"),
    ),
    (
        18,
        "idempotency keys",
        include_str!("../../migrations/sqlite/0018_idempotency.sql"),
    ),
    (
        19,
        "consumer groups",
        include_str!("../../migrations/sqlite/0019_consumer_groups.sql"),
    ),
    (
        20,
        "kinesis queues",
        include_str!("../../migrations/sqlite/0020_kinesis_queues.sql"),
    ),
    (
        21,
        "firehose",
        include_str!("../../migrations/sqlite/0021_firehose.sql"),
    ),
    (
        22,
        "table schemas",
        include_str!("../../migrations/sqlite/0022_table_schemas.sql"),
    ),
    (
        23,
        "sqs",
        include_str!("../../migrations/sqlite/0023_sqs.sql"),
    ),
    (
        24,
        "sqs fifo",
        include_str!("../../migrations/sqlite/0024_sqs_fifo.sql"),
    ),
    (
        25,
        "sqs move tasks",
        include_str!("../../migrations/sqlite/0025_sqs_move_tasks.sql"),
    ),
    (
        26,
        "sqs data keys",
        include_str!("../../migrations/sqlite/0026_sqs_data_keys.sql"),
    ),
    (
        27,
        "sqs receive attempts",
        include_str!("../../migrations/sqlite/0027_sqs_receive_attempts.sql"),
    ),
    (
        28,
        "group checkpoint time",
        include_str!("../../migrations/sqlite/0028_group_checkpoint_time.sql"),
    ),
    (
        29,
        "sns",
        include_str!("../../migrations/sqlite/0029_sns.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../../migrations/postgres/0001_catalog.sql"),
    ),
    (
        2,
        "identity",
        include_str!("../../migrations/postgres/0002_identity.sql"),
    ),
    (
        3,
        "data keys",
        include_str!("../../migrations/postgres/0003_data_keys.sql"),
    ),
    (
        4,
        "tokens",
        include_str!("../../migrations/postgres/0004_tokens.sql"),
    ),
    (
        5,
        "kms",
        include_str!("../../migrations/postgres/0005_kms.sql"),
    ),
    (
        6,
        "policies and audit",
        include_str!("../../migrations/postgres/0006_policies_audit.sql"),
    ),
    (
        7,
        "usage",
        include_str!("../../migrations/postgres/0007_usage.sql"),
    ),
    (
        8,
        "stream states",
        include_str!("../../migrations/postgres/0008_stream_states.sql"),
    ),
    (
        9,
        "shard write budgets",
        include_str!("../../migrations/postgres/0009_shard_write_budgets.sql"),
    ),
    (
        10,
        "consumers",
        include_str!("../../migrations/postgres/0010_consumers.sql"),
    ),
    (
        11,
        "compaction",
        include_str!("../../migrations/postgres/0011_compaction.sql"),
    ),
    (
        12,
        "shard count updates",
        include_str!("../../migrations/postgres/0012_shard_count_updates.sql"),
    ),
    (
        13,
        "stream settings",
        include_str!("../../migrations/postgres/0013_stream_settings.sql"),
    ),
    (
        14,
        "kms grants and key specs",
        include_str!("../../migrations/postgres/0014_kms_grants.sql"),
    ),
    (
        15,
        "max record size",
        include_str!("../../migrations/postgres/0015_max_record_size.sql"),
    ),
    (
        16,
        "revocations per tenant",
        include_str!("../../migrations/postgres/0016_revocations_per_tenant.sql"),
    ),
    (
        17,
        "audit chain",
        include_str!("../../migrations/postgres/0017_audit_chain.sql"),
    ),
    (
        18,
        "idempotency keys",
        include_str!("../../migrations/postgres/0018_idempotency.sql"),
    ),
    (
        19,
        "consumer groups",
        include_str!("../../migrations/postgres/0019_consumer_groups.sql"),
    ),
    (
        20,
        "kinesis queues",
        include_str!("../../migrations/postgres/0020_kinesis_queues.sql"),
    ),
    (
        21,
        "firehose",
        include_str!("../../migrations/postgres/0021_firehose.sql"),
    ),
    (
        22,
        "table schemas",
        include_str!("../../migrations/postgres/0022_table_schemas.sql"),
    ),
    (
        23,
        "sqs",
        include_str!("../../migrations/postgres/0023_sqs.sql"),
    ),
    (
        24,
        "sqs fifo",
        include_str!("../../migrations/postgres/0024_sqs_fifo.sql"),
    ),
    (
        25,
        "sqs move tasks",
        include_str!("../../migrations/postgres/0025_sqs_move_tasks.sql"),
    ),
    (
        26,
        "sqs data keys",
        include_str!("../../migrations/postgres/0026_sqs_data_keys.sql"),
    ),
    (
        27,
        "sqs receive attempts",
        include_str!("../../migrations/postgres/0027_sqs_receive_attempts.sql"),
    ),
    (
        28,
        "group checkpoint time",
        include_str!("../../migrations/postgres/0028_group_checkpoint_time.sql"),
    ),
    (
        29,
        "sns",
        include_str!("../../migrations/postgres/0029_sns.sql"),
    ),
];

/// Connections the pool keeps at most. SQLite serialises writers anyway; readers and
/// the group-commit writer share these.
const POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a statement waits for SQLite's write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// How long a caller waits for a free connection.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The catalog database.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's group committer (`groupcommit`); `None` on Postgres.
    group: Option<crate::groupcommit::GroupWriter>,
}

impl Catalog {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`) and applies migrations.
    pub async fn open(url: &str) -> Result<Catalog, CatalogError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(CatalogError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let options = AnyPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT);
        let options = match backend {
            Backend::Sqlite => options
                // INVARIANT: a connection goes back to the pool only outside any
                // transaction. When SQLite ends a transaction by itself (SQLITE_FULL,
                // SQLITE_IOERR roll it back), sqlx's ROLLBACK then fails and its count of
                // open transactions stays at one; reused, such a connection would turn
                // the next BEGIN into a SAVEPOINT, the next COMMIT into a RELEASE that
                // commits nothing, and hold the write lock for good. Such a connection
                // is closed (which rolls back whatever it holds) instead.
                .after_release(|conn, _meta| {
                    Box::pin(async move {
                        // The ping runs after any rollback queued by a dropped
                        // transaction, so the count below is settled.
                        conn.ping().await?;
                        if conn.is_in_transaction() {
                            tracing::warn!(
                                "a catalog connection came back inside a transaction; closing it"
                            );
                            metrics::counter!("sluice_catalog_connections_discarded_total")
                                .increment(1);
                            return Ok(false);
                        }
                        Ok(true)
                    })
                })
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; synchronous=FULL makes a
                        // commit durable before it returns, which acknowledgement relies on.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                        )))
                        .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => options,
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let pool = options.connect(&url).await?;
        // On Postgres writers run side by side: one writer per process measured at
        // about half the throughput (its statements wait on the network one by one).
        let group = (backend == Backend::Sqlite)
            .then(|| crate::groupcommit::GroupWriter::start(pool.clone(), backend));
        let catalog = Catalog {
            pool,
            backend,
            group,
        };
        catalog.migrate().await?;
        Ok(catalog)
    }

    async fn migrate(&self) -> Result<(), CatalogError> {
        let files = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Begins a write transaction that is a real transaction, never a savepoint: on
    /// SQLite `BEGIN IMMEDIATE` (the write lock first), which sqlx refuses on a
    /// connection it believes is already in a transaction and SQLite refuses on one
    /// that is; so its COMMIT is a real, durable commit or an error.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, CatalogError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Runs `work` in a write transaction, committed together with other such writes
    /// waiting at the same time on SQLite (`groupcommit`); answers once it committed.
    pub(crate) async fn write_grouped<T, F>(&self, work: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: for<'c> Fn(
                &'c mut sqlx::AnyConnection,
                &'c mut crate::groupcommit::Meters,
            ) -> crate::groupcommit::OnConnection<'c, T>
            + Send
            + Sync
            + 'static,
    {
        crate::groupcommit::write(&self.pool, self.backend, self.group.as_ref(), work).await
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a statement.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; used on shutdown after the last write committed.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A secret the servers share (the shard-iterator key, say), made of random bytes
    /// from `generate` the first time it is asked for, and kept sealed under the root
    /// key (bound to its name). A secret stored before secrets were sealed (32 bytes in
    /// the clear) is sealed in place on first read.
    pub async fn server_secret(
        &self,
        root: &crate::rootkey::RootKey,
        name: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, CatalogError> {
        let aad = format!("server-secret:{name}");
        let candidate = Zeroizing::new(generate());
        // INVARIANT: the first writer wins; every server then reads the same secret.
        sqlx::query(
            "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(root.seal(&candidate, aad.as_bytes()))
        .execute(&self.pool)
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        if let Ok(secret) = root.open(&stored, aad.as_bytes()) {
            return Ok(secret);
        }
        if stored.len() != LEGACY_SECRET_LEN {
            return Err(CatalogError::Corrupt {
                what: format!(
                    "server secret {name} does not open under the root key: is this the root key \
                     (SLUICE_ROOT_KEY or root.key) the catalog was made with?"
                ),
            });
        }
        // The compare keeps two processes from sealing it twice over.
        sqlx::query("UPDATE server_secrets SET secret = $1 WHERE name = $2 AND secret = $3")
            .bind(root.seal(&stored, aad.as_bytes()))
            .bind(name)
            .bind(&stored)
            .execute(&self.pool)
            .await?;
        Ok(Zeroizing::new(stored))
    }
}

/// The length of a server secret stored in the clear by versions that did not seal them.
const LEGACY_SECRET_LEN: usize = 32;

/// A database URL with its password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
