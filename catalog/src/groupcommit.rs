//! Group commit for small, frequent writes on SQLite (SQS's sends, receives, deletes).
//!
//! SQLite has one writer and every durable commit costs an fsync of the WAL (about
//! 2,000 a second here, see the field notes), so one transaction per request caps a
//! queue at a few hundred requests a second, and writers that find the lock taken
//! sleep in SQLite's busy handler. Here writes are handed to one task per catalog,
//! which takes every write waiting (up to `GROUP_MAX`), runs them one after another in
//! one `BEGIN IMMEDIATE` transaction, commits once, and only then answers each: an
//! answer is never given before the commit that holds it is known durable.
//!
//! A write is a function of the connection that can run again: when any write of a
//! group fails (or the commit does), the group is rolled back whole and each of its
//! writes runs again alone, in a transaction of its own, so one write's error is only
//! its own. On Postgres, where writers run side by side and the server groups commits
//! itself, every write runs alone in the caller's task.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use std::collections::HashMap;

use crate::error::{Backend, CatalogError};

/// What the writes of one transaction meter, summed, and written once before its
/// commit (one upsert per account, resource, metric and hour instead of one per write).
/// `billing` adds to it by `Metric`.
#[derive(Debug, Default)]
pub(crate) struct Meters {
    counts: HashMap<(String, String, &'static str, i64), u64>,
}

impl Meters {
    /// Counts `quantity` of the metric named `metric` for `resource` of `account_id` in
    /// the hour that starts at `hour_ms`.
    pub(crate) fn add_named(
        &mut self,
        account_id: &str,
        resource: &str,
        metric: &'static str,
        quantity: u64,
        hour_ms: i64,
    ) {
        if quantity == 0 {
            return;
        }
        *self
            .counts
            .entry((
                account_id.to_string(),
                resource.to_string(),
                metric,
                hour_ms,
            ))
            .or_default() += quantity;
    }

    async fn write(self, conn: &mut AnyConnection) -> Result<(), CatalogError> {
        for ((account, resource, metric, hour), quantity) in self.counts {
            count_usage(conn, &account, &resource, metric, quantity, hour).await?;
        }
        Ok(())
    }
}

/// Adds `quantity` to a usage counter (`usage_counters`), in the caller's transaction.
pub(crate) async fn count_usage(
    conn: &mut AnyConnection,
    account_id: &str,
    resource: &str,
    metric: &str,
    quantity: u64,
    hour_ms: i64,
) -> Result<(), CatalogError> {
    if quantity == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO usage_counters (account_id, stream_name, hour_ms, metric, quantity) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, stream_name, hour_ms, metric) \
         DO UPDATE SET quantity = usage_counters.quantity + excluded.quantity",
    )
    .bind(account_id)
    .bind(resource)
    .bind(hour_ms)
    .bind(metric)
    .bind(i64::try_from(quantity).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes one commit holds at most.
const GROUP_MAX: usize = 128;
/// The writer gives its connection back after this long without writes.
const HOLD_IDLE: std::time::Duration = std::time::Duration::from_millis(50);
/// Writes waiting for the writer at most; a caller beyond waits to hand its write over.
const QUEUE_MAX: usize = 4_096;

/// A future borrowing the connection it runs on.
pub(crate) type OnConnection<'c, T> =
    Pin<Box<dyn Future<Output = Result<T, CatalogError>> + Send + 'c>>;

type Output = Box<dyn Any + Send>;
type Erased = Box<
    dyn for<'c> Fn(&'c mut AnyConnection, &'c mut Meters) -> OnConnection<'c, Output> + Send + Sync,
>;

struct Job {
    work: Erased,
    reply: oneshot::Sender<Result<Output, CatalogError>>,
}

/// The writer's door: hands writes to the task that commits them in groups.
#[derive(Debug, Clone)]
pub(crate) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task (SQLite only) on the current runtime; it ends when the
    /// last door closes.
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> GroupWriter {
        Self::start_counted(pool, backend).0
    }

    /// The same, with the count of commits it makes (of groups, and of writes run
    /// again alone).
    fn start_counted(pool: AnyPool, backend: Backend) -> (GroupWriter, Arc<AtomicU64>) {
        let (jobs, rx) = mpsc::channel(QUEUE_MAX);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_groups(pool, backend, rx, commits.clone()));
        (GroupWriter { jobs }, commits)
    }
}

/// Runs `work` in a write transaction, grouped with others when `writer` is given, and
/// answers its result once its transaction committed.
pub(crate) async fn write<T, F>(
    pool: &AnyPool,
    backend: Backend,
    writer: Option<&GroupWriter>,
    work: F,
) -> Result<T, CatalogError>
where
    T: Send + 'static,
    F: for<'c> Fn(&'c mut AnyConnection, &'c mut Meters) -> OnConnection<'c, T>
        + Send
        + Sync
        + 'static,
{
    let Some(writer) = writer else {
        return alone(pool, backend, &work).await;
    };
    let erased: Erased = Box::new(move |conn, meters| {
        let fut = work(conn, meters);
        Box::pin(async move { fut.await.map(|t| Box::new(t) as Output) })
    });
    let (reply, answer) = oneshot::channel();
    let job = Job {
        work: erased,
        reply,
    };
    if let Err(mpsc::error::SendError(job)) = writer.jobs.send(job).await {
        // The writer is gone (its runtime is shutting down): run alone.
        return alone(pool, backend, &job.work).await.map(downcast);
    }
    match answer.await {
        Ok(result) => result.map(downcast),
        // The writer stopped inside this write's group (a panic): its transaction was
        // rolled back, nothing of it committed.
        Err(_) => Err(CatalogError::Database(sqlx::Error::WorkerCrashed)),
    }
}

fn downcast<T: 'static>(out: Output) -> T {
    *out.downcast::<T>()
        .expect("a write answers the type it was made with")
}

/// `work` in a transaction of its own.
async fn alone<T, F>(pool: &AnyPool, backend: Backend, work: &F) -> Result<T, CatalogError>
where
    F: for<'c> Fn(&'c mut AnyConnection, &'c mut Meters) -> OnConnection<'c, T> + ?Sized,
{
    let mut tx = begin(pool, backend).await?;
    let mut meters = Meters::default();
    let out = work(&mut tx, &mut meters).await?;
    meters.write(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// A real transaction, never a savepoint (as `Catalog::begin_write`).
async fn begin(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, CatalogError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

async fn write_groups(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    commits: Arc<AtomicU64>,
) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    // The writer keeps its connection between groups while they succeed; after a
    // failure it goes back to the pool, whose check closes it if SQLite ended its
    // transaction by itself (`Catalog::open`), and the next group takes another.
    let mut held: Option<PoolConnection<sqlx::Any>> = None;
    loop {
        let got = if held.is_some() {
            // Idle for a moment, the connection goes back to the pool (which
            // `Catalog::close` waits for).
            match tokio::time::timeout(HOLD_IDLE, rx.recv_many(&mut group, GROUP_MAX)).await {
                Ok(n) => n,
                Err(_) => {
                    held = None;
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut group, GROUP_MAX).await
        };
        if got == 0 {
            break;
        }
        let jobs = std::mem::replace(&mut group, Vec::with_capacity(GROUP_MAX));
        metrics::histogram!("sluice_catalog_group_commit_writes").record(jobs.len() as f64);
        let outcome = together(&pool, backend, &mut held, &jobs).await;
        if outcome.is_err() {
            held = None;
        }
        commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_catalog_group_commits_total").increment(1);
        match outcome {
            Ok(outputs) => {
                for (job, out) in jobs.into_iter().zip(outputs) {
                    let _ = job.reply.send(Ok(out));
                }
            }
            // A group of one: its error is its own; running it again would repeat it.
            Err(error) if jobs.len() == 1 => {
                let job = jobs.into_iter().next().expect("one write");
                let _ = job.reply.send(Err(error));
            }
            Err(error) => {
                tracing::debug!(%error, writes = jobs.len(), "a group commit failed; its writes run again alone");
                for job in jobs {
                    let result = alone(&pool, backend, &job.work).await;
                    commits.fetch_add(1, Ordering::Relaxed);
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Every write of `jobs` in one transaction, or none.
async fn together(
    pool: &AnyPool,
    backend: Backend,
    held: &mut Option<PoolConnection<sqlx::Any>>,
    jobs: &[Job],
) -> Result<Vec<Output>, CatalogError> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(pool.acquire().await?),
    };
    let mut tx = match backend {
        Backend::Sqlite => sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?,
        Backend::Postgres => sqlx::Connection::begin(&mut **conn).await?,
    };
    let mut outputs = Vec::with_capacity(jobs.len());
    let mut meters = Meters::default();
    for job in jobs {
        outputs.push((job.work)(&mut tx, &mut meters).await?);
    }
    meters.write(&mut tx).await?;
    tx.commit().await?;
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &std::path::Path) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.join("g.db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (n BIGINT NOT NULL PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn insert(
        n: i64,
    ) -> impl for<'c> Fn(&'c mut AnyConnection, &'c mut Meters) -> OnConnection<'c, i64> {
        move |conn, _| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                Ok(n)
            })
        }
    }

    #[tokio::test]
    async fn writes_waiting_together_commit_together_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(dir.path()).await;
        let (writer, commits) = GroupWriter::start_counted(pool.clone(), Backend::Sqlite);
        // 7 is written first; among 200 writes waiting together its second insert
        // fails (a primary key taken) and only it fails.
        write(&pool, Backend::Sqlite, Some(&writer), insert(7))
            .await
            .unwrap();
        let before = commits.load(Ordering::Relaxed);
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..200 {
            let (pool, writer) = (pool.clone(), writer.clone());
            writes.spawn(async move {
                (
                    n,
                    write(&pool, Backend::Sqlite, Some(&writer), insert(n)).await,
                )
            });
        }
        let mut failed = Vec::new();
        while let Some(done) = writes.join_next().await {
            let (n, result) = done.unwrap();
            match result {
                Ok(got) => assert_eq!(got, n),
                Err(_) => failed.push(n),
            }
        }
        assert_eq!(failed, vec![7]);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 200);
        // Fewer commits than writes: they were grouped (a failed group adds one
        // commit per write run again alone, so at most one group can have failed).
        let made = commits.load(Ordering::Relaxed) - before;
        assert!(made < 200, "{made} commits for 200 writes");
        // A write alone in its group that fails answers its error, run once.
        let before = commits.load(Ordering::Relaxed);
        assert!(
            write(&pool, Backend::Sqlite, Some(&writer), insert(7))
                .await
                .is_err()
        );
        assert_eq!(commits.load(Ordering::Relaxed) - before, 1);
        // Idle, the writer gives its connection back: closing the pool (as a server
        // does on shutdown) does not wait for it forever.
        tokio::time::timeout(std::time::Duration::from_secs(10), pool.close())
            .await
            .expect("the pool closes while the writer is idle");
    }
}
