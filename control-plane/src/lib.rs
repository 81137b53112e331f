//! The control plane's periodic passes: what keeps streams, keys and storage moving
//! when nobody calls. Each pass runs on a timer, takes its time from the clock it is
//! given and decides through the catalog, so several processes may run it at once.
//!
//! - streams leave CREATING, UPDATING and DELETING when their while runs out (every
//!   process, so transitions keep their time while any process is up);
//! - the KMS key sweep destroys keys past their deletion date and rotates due ones;
//! - the retention janitor deletes expired chunk rows, then objects no row names, then
//!   shared write budgets of windows past;
//! - compaction rewrites settled chunks into per-shard objects;
//! - the on-demand scaler splits hot shards and merges cold ones;
//! - audit retention removes the trail's oldest batches past their time;
//! - every consumer group's lag is published to the metrics.
//!
//! The last five run in `sluice serve` and `sluice control-plane` only (`control`): a
//! janitor pass lists the whole bucket, and every data plane doing it would only
//! multiply the work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use protocol::clock::SharedClock;
use storage::keyring::Keyring;
use storage::objects::ObjectStore;

/// How often streams in a passing state are checked.
pub const STREAM_STATE_SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Streams one sweep deletes at most.
const STREAM_DELETIONS_PER_SWEEP: i64 = 100;

/// What the passes work on.
pub struct PassContext {
    pub catalog: Catalog,
    pub store: Arc<ObjectStore>,
    pub keyring: Arc<Keyring>,
    pub kinesis: Arc<kinesis::Kinesis>,
    pub kms: Arc<kms::KmsService>,
    pub clock: SharedClock,
    /// Compaction rewrites a chunk once its newest record is this old.
    pub compaction_settle: Duration,
    /// The audit trail's retention (`None`: kept for good) and the chain's MAC key.
    pub audit_retention: Option<Duration>,
    pub audit_chain_key: Arc<zeroize::Zeroizing<Vec<u8>>>,
}

/// How often audit retention runs.
const AUDIT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// The running passes; `stop` ends them.
pub struct Passes {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Runs `pass` every `interval` (a late tick delays the next rather than bunching),
/// with the context and the clock's time in milliseconds, until aborted.
fn every<F, Fut>(cx: &Arc<PassContext>, interval: Duration, pass: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<PassContext>, i64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let cx = cx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = cx.clock.now_ms();
            pass(cx.clone(), now).await;
        }
    })
}

impl Passes {
    /// Starts the stream-state sweep, and with `control` the key sweep, the janitor,
    /// compaction and the on-demand scaler.
    pub fn start(cx: Arc<PassContext>, control: bool) -> Passes {
        let mut tasks = vec![every(
            &cx,
            STREAM_STATE_SWEEP_INTERVAL,
            |cx, now| async move { advance_stream_states(&cx, now).await },
        )];
        if control {
            tasks.push(every(&cx, kms::KEY_SWEEP_INTERVAL, |cx, _| async move {
                if kms::sweep_keys(&cx.kms).await {
                    // Data keys unwrapped under a destroyed key go with it.
                    cx.keyring.forget_all().await;
                }
            }));
            tasks.push(every(
                &cx,
                storage::janitor::JANITOR_INTERVAL,
                |cx, now| async move { expire(&cx, now).await },
            ));
            tasks.push(every(
                &cx,
                storage::compact::COMPACTION_INTERVAL,
                |cx, now| async move {
                    let settle = cx.compaction_settle;
                    if let Err(e) =
                        storage::compact::pass(&cx.catalog, &cx.store, &cx.keyring, now, settle)
                            .await
                    {
                        tracing::error!(error = %e, "compaction failed");
                    }
                },
            ));
            if let Some(retention) = cx.audit_retention {
                tasks.push(every(
                    &cx,
                    AUDIT_RETENTION_INTERVAL,
                    move |cx, now| async move {
                        let before = now - retention.as_millis() as i64;
                        match cx.catalog.prune_audit(&cx.audit_chain_key, before).await {
                            Ok(0) => {}
                            Ok(rows) => tracing::info!(rows, "audit rows past retention removed"),
                            Err(e) => tracing::error!(error = %e, "audit retention failed"),
                        }
                    },
                ));
            }
            tasks.push(every(
                &cx,
                sqs::QUEUE_METRICS_INTERVAL,
                |cx, now| async move {
                    if let Err(e) = sqs::publish_queue_metrics(&cx.catalog, now).await {
                        tracing::error!(error = %e, "SQS queue metrics pass failed");
                    }
                },
            ));
            tasks.push(every(
                &cx,
                groups::LAG_PASS_INTERVAL,
                |cx, now| async move {
                    if let Err(e) = groups::publish_lag(&cx.catalog, now).await {
                        tracing::error!(error = %e, "consumer group lag pass failed");
                    }
                },
            ));
            let scaling = cx.kinesis.config.on_demand.interval();
            tasks.push(every(&cx, scaling, |cx, now| async move {
                if let Err(e) = kinesis::autoscale::pass(&cx.kinesis, now).await {
                    tracing::error!(error = %e, "on-demand scaling failed");
                }
            }));
        }
        Passes { tasks }
    }

    /// Stops every pass; one cut short commits nothing it had not finished.
    pub async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// One stream-state sweep: the catalog's UPDATE decides which process changes a
/// stream; this one forgets what it cached of the streams it changed.
pub async fn advance_stream_states(cx: &PassContext, now_ms: i64) {
    match cx
        .catalog
        .advance_stream_states(now_ms, STREAM_DELETIONS_PER_SWEEP)
        .await
    {
        Ok(changed) => {
            for (account, name) in changed {
                cx.kinesis.streams.forget(&account, &name);
            }
        }
        Err(e) => tracing::error!(error = %e, "advancing stream states failed"),
    }
}

/// One janitor pass: expired records' space, then shared write budgets long past.
pub async fn expire(cx: &PassContext, now_ms: i64) {
    if let Err(e) = storage::janitor::sweep(
        &cx.catalog,
        &cx.store,
        now_ms,
        storage::janitor::SEGMENT_GRACE,
    )
    .await
    {
        tracing::error!(error = %e, "the retention janitor failed");
    }
    if let Err(e) = cx.kinesis.throttle.expire_shared_budgets().await {
        tracing::error!(error = %e, "expiring shared write budgets failed");
    }
    if let Err(e) = cx.catalog.expire_idempotency_keys(now_ms).await {
        tracing::error!(error = %e, "expiring idempotency keys failed");
    }
    // SQS messages past their queue's retention, and deduplication ids past their
    // window, in queues nobody receives from (a receive drops its queue's own).
    if let Err(e) = cx.catalog.expire_sqs_messages(now_ms).await {
        tracing::error!(error = %e, "expiring SQS messages failed");
    }
    // SQS data keys older than any message sealed under them can be.
    if let Err(e) = cx.catalog.forget_old_sqs_data_keys(now_ms).await {
        tracing::error!(error = %e, "forgetting old SQS data keys failed");
    }
}
