//! Per-shard throughput limits, as Kinesis enforces them: writes of 1 MiB/s or 1,000
//! records/s and reads of 2 MiB/s or 5 GetRecords calls/s per shard by default,
//! configurable per deployment (0 turns a limit off).
//!
//! Each limit is a token bucket holding at most one second of its rate. Writes take
//! their tokens before they are appended (a record that finds too few is refused, and
//! PutRecords refuses just those records); a read takes one call token before it reads
//! and its bytes after, so one large read puts its shard in debt and the next calls are
//! refused until the debt is paid, as Kinesis does.
//!
//! The buckets live in this process. When several processes write one shard (they
//! share a Postgres catalog), writes also draw on the shard's shared budget in the
//! catalog (`--shared-throughput-limits`, on by default with Postgres): a process
//! leases slices of each one-second window's budget (`SLICES_PER_SECOND` of them make
//! the rate) with one statement and spends them here, so all processes together admit at
//! most the rate in each window of wall-clock time; see ARCHITECTURE.md for the bound.
//! Reads are limited per process only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol::clock::SharedClock;

use catalog::throughput::{BudgetWindow, WRITE_BUDGET_WINDOWS_KEPT, WriteBudget};
use catalog::{Catalog, CatalogError};
use protocol::{ApiError, ErrorCode};

/// The rates, per shard and second; 0 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    pub write_bytes: u64,
    pub write_records: u64,
    pub read_bytes: u64,
    pub read_calls: u64,
}

impl Default for ShardLimits {
    /// Kinesis's per-shard limits.
    fn default() -> Self {
        ShardLimits {
            write_bytes: 1024 * 1024,
            write_records: 1_000,
            read_bytes: 2 * 1024 * 1024,
            read_calls: 5,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When it was last refilled, by the throttle's clock (ms).
    at_ms: i64,
}

impl Bucket {
    fn full(rate: u64, now_ms: i64) -> Bucket {
        Bucket {
            tokens: rate as f64,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, rate: u64, now_ms: i64) {
        // A clock stepped back refills nothing rather than taking tokens away.
        let elapsed_s = now_ms.saturating_sub(self.at_ms).max(0) as f64 / 1_000.0;
        self.tokens = (self.tokens + elapsed_s * rate as f64).min(rate as f64);
        self.at_ms = self.at_ms.max(now_ms);
    }
}

#[derive(Debug, Clone, Copy)]
struct ShardBuckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_bytes: Bucket,
    read_calls: Bucket,
    used_ms: i64,
}

/// Shards whose buckets are kept at once; idle ones go first when it is reached.
const SHARDS_TRACKED_MAX: usize = 100_000;
/// A shard untouched this long has full buckets anyway, so forgetting it loses nothing.
const IDLE_MS: i64 = 2_000;

/// A lease asks for this fraction of a shard's rate (1/16): small enough that the
/// slices a process leased and did not spend leave little of a window unused, large
/// enough that a busy shard costs a process 16 round trips a second per budget, not
/// one per record.
pub const SLICES_PER_SECOND: u64 = 16;

/// What one lease asks of `rate` when `held` is in hand and `need` is wanted: a slice,
/// or more when one record needs more (a large record's bytes), never more than `rate`.
pub fn lease_size(rate: u64, need: u64, held: u64) -> u64 {
    rate.div_ceil(SLICES_PER_SECOND)
        .max(need.saturating_sub(held))
        .min(rate)
}

/// What this process holds of one shared budget of a shard, for one window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Held {
    tokens: u64,
    /// A lease got less than it asked, so the window's budget is all leased out: asking
    /// again before the window ends would cost a round trip and get nothing.
    spent_out: bool,
}

impl Held {
    /// What to lease before `need` can be spent, of a budget of `rate`: `None` when it
    /// can be spent now, or not before the next window.
    fn shortfall(self, rate: u64, need: u64) -> Option<u64> {
        (self.tokens < need && !self.spent_out).then(|| lease_size(rate, need, self.tokens))
    }

    fn add(&mut self, asked: u64, granted: u64) {
        self.tokens += granted;
        self.spent_out |= granted < asked;
    }
}

/// What this process holds of one shard's shared write budgets, for one window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Leased {
    window_s: i64,
    records: Held,
    bytes: Held,
}

impl Leased {
    /// Moves to `window_s`. What was left of an earlier window is dropped unspent: that
    /// is what keeps every window's total within the rate.
    fn enter(&mut self, window_s: i64) {
        if self.window_s != window_s {
            *self = Leased {
                window_s,
                ..Leased::default()
            };
        }
    }
}

/// Shards whose leases are kept at once; once reached, those of past windows go.
const SHARDS_LEASED_MAX: usize = 100_000;

/// What this process leased of one shard, behind a lock that is held across a lease,
/// so that concurrent writes to a shard wait for one lease instead of each taking one.
type ShardLease = Arc<tokio::sync::Mutex<Leased>>;

/// The shared write budgets and what this process leased of them.
struct SharedWrites {
    catalog: Catalog,
    shards: Mutex<HashMap<(i64, u64), ShardLease>>,
}

pub struct Throttle {
    limits: ShardLimits,
    shards: Mutex<HashMap<(i64, u64), ShardBuckets>>,
    /// `None`: the limits hold in this process only.
    shared: Option<SharedWrites>,
    /// Its seconds are the shared budgets' one-second windows.
    clock: SharedClock,
}

/// Kinesis's words for a refusal, counted in `sluice_throttled_total`.
pub fn exceeded(stream: &str, account: &str, shard_ordinal: u64) -> ApiError {
    metrics::counter!(
        "sluice_throttled_total",
        "account" => account.to_string(),
        "stream" => stream.to_string()
    )
    .increment(1);
    ApiError::new(
        ErrorCode::ProvisionedThroughputExceeded,
        format!(
            "Rate exceeded for shard {} in stream {stream} under account {account}.",
            catalog::streams::shard_id(shard_ordinal)
        ),
    )
}

impl SharedWrites {
    fn shard(&self, window_s: i64, key: (i64, u64)) -> ShardLease {
        let mut shards = self.shards.lock().expect("lease lock");
        if shards.len() >= SHARDS_LEASED_MAX && !shards.contains_key(&key) {
            // Leases of past windows are worth nothing; a shard whose lock is held
            // (its Arc shared) keeps its entry.
            shards.retain(|_, l| {
                Arc::strong_count(l) > 1 || l.try_lock().is_ok_and(|l| l.window_s >= window_s)
            });
            if shards.len() >= SHARDS_LEASED_MAX {
                shards.clear();
            }
        }
        shards.entry(key).or_default().clone()
    }

    /// Spends `records` and `bytes` (0 where a limit is off) of what this process
    /// leased of a shard's budgets for the window `clock` reads (once this shard's lock
    /// is held, so a write that waited for it spends in the window it is admitted in),
    /// leasing more first when too little is in hand; false when the window's shared
    /// budget cannot cover them (what was leased stays in hand).
    async fn take(
        &self,
        clock: &(dyn Fn() -> i64 + Sync),
        stream_id: i64,
        shard: u64,
        l: ShardLimits,
        records: u64,
        bytes: u64,
    ) -> Result<bool, CatalogError> {
        let entry = self.shard(clock(), (stream_id, shard));
        let mut leased = entry.lock().await;
        let window_s = clock();
        leased.enter(window_s);
        let window = |budget| BudgetWindow {
            stream_id,
            shard_ordinal: shard,
            budget,
            window_s,
        };
        // (A limit that is off needs 0 and leases nothing.)
        for (budget, rate, need) in [
            (WriteBudget::Records, l.write_records, records),
            (WriteBudget::Bytes, l.write_bytes, bytes),
        ] {
            let held = match budget {
                WriteBudget::Records => &mut leased.records,
                WriteBudget::Bytes => &mut leased.bytes,
            };
            if let Some(want) = held.shortfall(rate, need) {
                // A write cancelled here (its caller went away) loses at most this
                // lease: tokens stranded, never tokens spent twice.
                metrics::counter!("sluice_shared_budget_leases_total").increment(1);
                let granted = self
                    .catalog
                    .lease_write_budget(window(budget), want, rate)
                    .await?;
                held.add(want, granted);
            }
            if held.tokens < need {
                return Ok(false);
            }
        }
        leased.records.tokens -= records;
        leased.bytes.tokens -= bytes;
        Ok(true)
    }
}

impl Throttle {
    /// Limits that hold in this process only.
    pub fn new(limits: ShardLimits, clock: SharedClock) -> Throttle {
        Throttle {
            limits,
            shards: Mutex::new(HashMap::new()),
            shared: None,
            clock,
        }
    }

    /// Limits whose writes also hold across every process sharing `catalog`.
    pub fn shared(limits: ShardLimits, catalog: Catalog, clock: SharedClock) -> Throttle {
        Throttle {
            shared: Some(SharedWrites {
                catalog,
                shards: Mutex::new(HashMap::new()),
            }),
            ..Throttle::new(limits, clock)
        }
    }

    /// Deletes the shared budgets of windows long past (any process may; one suffices).
    pub async fn expire_shared_budgets(&self) -> Result<(), CatalogError> {
        if let Some(shared) = &self.shared {
            shared
                .catalog
                .expire_write_budgets(self.clock.now_s() - WRITE_BUDGET_WINDOWS_KEPT)
                .await?;
        }
        Ok(())
    }

    fn with_shard<T>(&self, key: (i64, u64), f: impl FnOnce(&mut ShardBuckets, i64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut shards = self.shards.lock().expect("throttle lock");
        if shards.len() >= SHARDS_TRACKED_MAX && !shards.contains_key(&key) {
            shards.retain(|_, b| now.saturating_sub(b.used_ms) < IDLE_MS);
            if shards.len() >= SHARDS_TRACKED_MAX {
                // Everything is busy: start over rather than grow without bound.
                shards.clear();
            }
        }
        let l = self.limits;
        let buckets = shards.entry(key).or_insert_with(|| ShardBuckets {
            write_bytes: Bucket::full(l.write_bytes, now),
            write_records: Bucket::full(l.write_records, now),
            read_bytes: Bucket::full(l.read_bytes, now),
            read_calls: Bucket::full(l.read_calls, now),
            used_ms: now,
        });
        buckets.used_ms = now;
        f(buckets, now)
    }

    /// Takes the tokens for one record of `bytes` written to a shard, or refuses it:
    /// from this process's buckets, then (when shared) from the shard's shared budgets.
    pub async fn admit_write(
        &self,
        stream_id: i64,
        shard: u64,
        bytes: u64,
    ) -> Result<bool, CatalogError> {
        let clock = self.clock.clone();
        self.admit_write_in(&move || clock.now_s(), stream_id, shard, bytes)
            .await
    }

    async fn admit_write_in(
        &self,
        clock: &(dyn Fn() -> i64 + Sync),
        stream_id: i64,
        shard: u64,
        bytes: u64,
    ) -> Result<bool, CatalogError> {
        let l = self.limits;
        if l.write_bytes == 0 && l.write_records == 0 {
            return Ok(true);
        }
        // A record larger than a second's budget is admitted once the bucket is full.
        let need_bytes = bytes.min(l.write_bytes);
        let need_records = u64::from(l.write_records > 0);
        let taken = self.with_shard((stream_id, shard), |b, now| {
            b.write_bytes.refill(l.write_bytes, now);
            b.write_records.refill(l.write_records, now);
            let bytes_ok = b.write_bytes.tokens >= need_bytes as f64;
            let records_ok = b.write_records.tokens >= need_records as f64;
            if bytes_ok && records_ok {
                b.write_bytes.tokens -= need_bytes as f64;
                b.write_records.tokens -= need_records as f64;
            }
            bytes_ok && records_ok
        });
        let Some(shared) = &self.shared else {
            return Ok(taken);
        };
        if !taken {
            return Ok(false);
        }
        let admitted = shared
            .take(clock, stream_id, shard, l, need_records, need_bytes)
            .await;
        if !matches!(admitted, Ok(true)) {
            self.give_back_write(stream_id, shard, need_records, need_bytes);
        }
        admitted
    }

    /// Returns a refused record's tokens to this process's buckets.
    fn give_back_write(&self, stream_id: i64, shard: u64, records: u64, bytes: u64) {
        let l = self.limits;
        self.with_shard((stream_id, shard), |b, now| {
            b.write_bytes.refill(l.write_bytes, now);
            b.write_records.refill(l.write_records, now);
            b.write_bytes.tokens = (b.write_bytes.tokens + bytes as f64).min(l.write_bytes as f64);
            b.write_records.tokens =
                (b.write_records.tokens + records as f64).min(l.write_records as f64);
        });
    }

    /// Takes one GetRecords call from a shard, or refuses it (also while the shard's
    /// read bytes are in debt).
    pub fn admit_read(&self, stream_id: i64, shard: u64) -> bool {
        let l = self.limits;
        if l.read_calls == 0 && l.read_bytes == 0 {
            return true;
        }
        self.with_shard((stream_id, shard), |b, now| {
            b.read_calls.refill(l.read_calls, now);
            b.read_bytes.refill(l.read_bytes, now);
            let calls_ok = l.read_calls == 0 || b.read_calls.tokens >= 1.0;
            let bytes_ok = l.read_bytes == 0 || b.read_bytes.tokens > 0.0;
            if calls_ok && bytes_ok {
                if l.read_calls > 0 {
                    b.read_calls.tokens -= 1.0;
                }
                true
            } else {
                false
            }
        })
    }

    /// Charges the bytes a read returned; they may put the shard in debt.
    pub fn charge_read(&self, stream_id: i64, shard: u64, bytes: u64) {
        let l = self.limits;
        if l.read_bytes == 0 {
            return;
        }
        self.with_shard((stream_id, shard), |b, now| {
            b.read_bytes.refill(l.read_bytes, now);
            b.read_bytes.tokens -= bytes as f64;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::clock::SystemClock;
    use std::time::Duration;

    fn limits(
        write_records: u64,
        write_bytes: u64,
        read_calls: u64,
        read_bytes: u64,
    ) -> ShardLimits {
        ShardLimits {
            write_bytes,
            write_records,
            read_bytes,
            read_calls,
        }
    }

    /// Records of `bytes` admitted out of `n` tried on one shard in the window `clock`
    /// reads.
    async fn admitted(t: &Throttle, clock: fn() -> i64, shard: u64, n: usize, bytes: u64) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            ok += usize::from(t.admit_write_in(&clock, 1, shard, bytes).await.unwrap());
        }
        ok
    }

    #[tokio::test]
    async fn writes_are_limited_by_records_and_bytes_per_shard() {
        let t = Throttle::new(limits(10, 1_000_000, 0, 0), SystemClock::shared());
        assert_eq!(admitted(&t, || 0, 0, 25, 10).await, 10);
        // Another shard has its own buckets.
        assert!(t.admit_write(1, 1, 10).await.unwrap());
        let clock = protocol::clock::ManualClock::at(1_000_000);
        let t = Throttle::new(limits(0, 1_000, 0, 0), clock.clone());
        assert!(t.admit_write(1, 0, 600).await.unwrap());
        assert!(!t.admit_write(1, 0, 600).await.unwrap());
        assert!(t.admit_write(1, 0, 400).await.unwrap());
        // The bucket refills at the rate: 599 bytes after 599 ms, 600 after 600.
        clock.advance(Duration::from_millis(599));
        assert!(!t.admit_write(1, 0, 600).await.unwrap());
        clock.advance(Duration::from_millis(1));
        assert!(t.admit_write(1, 0, 600).await.unwrap());
        // A clock stepped back takes nothing away and adds nothing.
        clock.set_ms(0);
        assert!(!t.admit_write(1, 0, 1).await.unwrap());
    }

    #[test]
    fn a_lease_is_a_slice_or_what_one_record_lacks_within_the_rate() {
        // 1/16 of the rate, rounded up, at least 1.
        assert_eq!(lease_size(200, 1, 0), 13);
        assert_eq!(lease_size(1_000, 1, 0), 63);
        assert_eq!(lease_size(1_048_576, 1_024, 0), 65_536);
        assert_eq!(lease_size(5, 1, 0), 1);
        // A record larger than a slice asks for what it lacks, up to the rate.
        assert_eq!(lease_size(1_000, 600, 100), 500);
        assert_eq!(lease_size(1_000, 5_000, 0), 1_000);
        // A limit that is off leases nothing.
        assert_eq!(lease_size(0, 0, 0), 0);
        // 16 slices cover the rate, so a window's budget is spent in at most 16 leases
        // per process (and one more that finds it spent).
        for rate in [1, 5, 20, 200, 1_000, 1_048_576] {
            assert!(lease_size(rate, 1, 0) * SLICES_PER_SECOND >= rate);
        }
    }

    #[test]
    fn a_budget_found_spent_is_not_asked_again_in_its_window() {
        let mut held = Held::default();
        assert_eq!(held.shortfall(200, 1), Some(13));
        held.add(13, 13);
        assert_eq!(held.shortfall(200, 1), None);
        held.tokens = 0;
        // Only 5 were left: the window's budget is gone, no more round trips for it.
        assert_eq!(held.shortfall(200, 1), Some(13));
        held.add(13, 5);
        assert_eq!((held.tokens, held.spent_out), (5, true));
        held.tokens = 0;
        assert_eq!(held.shortfall(200, 1), None);
        // A large record asks for what it lacks.
        assert_eq!(Held::default().shortfall(1_000, 600), Some(600));
        assert_eq!(Held::default().shortfall(0, 0), None);
    }

    #[test]
    fn leftovers_of_a_window_are_dropped_in_the_next() {
        let held = Held {
            tokens: 7,
            spent_out: true,
        };
        let mut leased = Leased {
            window_s: 5,
            records: held,
            bytes: held,
        };
        leased.enter(5);
        assert_eq!((leased.records, leased.bytes), (held, held));
        leased.enter(6);
        assert_eq!(
            leased,
            Leased {
                window_s: 6,
                ..Leased::default()
            }
        );
    }

    #[tokio::test]
    async fn processes_sharing_a_catalog_share_each_shards_budget() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalog::testing::catalogs(dir.path()).await {
            // Two processes, each writing one shard at the whole rate (2x together),
            // turn about: the window admits exactly the rate, 200.
            let a = Throttle::shared(limits(200, 0, 0, 0), catalog.clone(), SystemClock::shared());
            let b = Throttle::shared(limits(200, 0, 0, 0), catalog.clone(), SystemClock::shared());
            let mut ok = (0, 0);
            for _ in 0..20 {
                ok.0 += admitted(&a, || 1_000, 0, 10, 1).await;
                ok.1 += admitted(&b, || 1_000, 0, 10, 1).await;
            }
            assert_eq!(ok.0 + ok.1, 200, "{ok:?}");
            assert!(ok.0 >= 50 && ok.1 >= 50, "{ok:?}");
            // A neighbour shard is untouched; the next window starts afresh.
            assert_eq!(admitted(&a, || 1_000, 1, 100, 1).await, 100);
            assert_eq!(admitted(&b, || 1_001, 0, 1, 1).await, 1);

            // A process that stops sending strands at most one slice (13) of a window.
            let c = Throttle::shared(limits(200, 0, 0, 0), catalog.clone(), SystemClock::shared());
            let d = Throttle::shared(limits(200, 0, 0, 0), catalog.clone(), SystemClock::shared());
            assert_eq!(admitted(&c, || 2_000, 0, 1, 1).await, 1);
            assert_eq!(admitted(&d, || 2_000, 0, 300, 1).await, 200 - 13);

            // Bytes: a large record leases what it lacks; a partial grant stays in hand
            // for a record it covers.
            let e = Throttle::shared(
                limits(0, 1_000, 0, 0),
                catalog.clone(),
                SystemClock::shared(),
            );
            let f = Throttle::shared(
                limits(0, 1_000, 0, 0),
                catalog.clone(),
                SystemClock::shared(),
            );
            assert_eq!(admitted(&e, || 3_000, 0, 1, 600).await, 1);
            assert_eq!(admitted(&f, || 3_000, 0, 1, 600).await, 0);
            assert_eq!(admitted(&f, || 3_000, 0, 1, 400).await, 1);
            assert_eq!(admitted(&e, || 3_000, 0, 1, 1).await, 0);

            // Windows long past are deleted.
            a.expire_shared_budgets().await.unwrap();
            assert_eq!(catalog.expire_write_budgets(i64::MAX).await.unwrap(), 0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_in_two_processes_share_one_budget() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalog::testing::catalogs(dir.path()).await {
            let processes = [
                Arc::new(Throttle::shared(
                    limits(200, 0, 0, 0),
                    catalog.clone(),
                    SystemClock::shared(),
                )),
                Arc::new(Throttle::shared(
                    limits(200, 0, 0, 0),
                    catalog.clone(),
                    SystemClock::shared(),
                )),
            ];
            // 8 writers per process, 50 records each: 800 asked of 200.
            let writers: Vec<_> = (0..16)
                .map(|i| {
                    let t = processes[i % 2].clone();
                    tokio::spawn(async move { admitted(&t, || 5_000, 0, 50, 1).await })
                })
                .collect();
            let mut total = 0;
            for w in writers {
                total += w.await.unwrap();
            }
            assert_eq!(total, 200);
        }
    }

    #[tokio::test]
    async fn a_refusal_by_the_shared_budget_gives_back_the_local_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog::testing::catalogs(dir.path()).await.remove(0);
        let a = Throttle::shared(limits(10, 0, 0, 0), catalog.clone(), SystemClock::shared());
        let b = Throttle::shared(limits(10, 0, 0, 0), catalog, SystemClock::shared());
        assert_eq!(admitted(&b, || 4_000, 0, 10, 1).await, 10);
        // a's own bucket is full but the window's shared budget is gone...
        assert_eq!(admitted(&a, || 4_000, 0, 10, 1).await, 0);
        // ...and a refusal cost a nothing: the next window gets all of a's bucket.
        assert_eq!(admitted(&a, || 4_001, 0, 20, 1).await, 10);
    }

    #[test]
    fn a_large_read_puts_the_shard_in_debt() {
        let t = Throttle::new(limits(0, 0, 5, 1_000), SystemClock::shared());
        assert!(t.admit_read(1, 0));
        t.charge_read(1, 0, 3_000);
        assert!(!t.admit_read(1, 0));
        let t = Throttle::new(limits(0, 0, 5, 0), SystemClock::shared());
        assert_eq!((0..8).filter(|_| t.admit_read(1, 0)).count(), 5);
    }

    #[tokio::test]
    async fn zero_turns_a_limit_off() {
        let t = Throttle::new(limits(0, 0, 0, 0), SystemClock::shared());
        assert_eq!(admitted(&t, || 0, 0, 10_000, 1_000_000).await, 10_000);
        assert!((0..10_000).all(|_| t.admit_read(1, 0)));
    }
}
