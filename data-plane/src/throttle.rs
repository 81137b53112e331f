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
//! The buckets live in this process: with several data-plane processes writing one
//! shard each enforces the limit on its own share (shared buckets belong with the split
//! deployment of the lifecycle issue).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    at: Instant,
}

impl Bucket {
    fn full(rate: u64, now: Instant) -> Bucket {
        Bucket {
            tokens: rate as f64,
            at: now,
        }
    }

    fn refill(&mut self, rate: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate as f64).min(rate as f64);
        self.at = now;
    }
}

#[derive(Debug, Clone, Copy)]
struct ShardBuckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_bytes: Bucket,
    read_calls: Bucket,
    used: Instant,
}

/// Shards whose buckets are kept at once; idle ones go first when it is reached.
const SHARDS_TRACKED_MAX: usize = 100_000;
/// A shard untouched this long has full buckets anyway, so forgetting it loses nothing.
const IDLE: Duration = Duration::from_secs(2);

pub struct Throttle {
    limits: ShardLimits,
    shards: Mutex<HashMap<(i64, u64), ShardBuckets>>,
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
            control_plane::streams::shard_id(shard_ordinal)
        ),
    )
}

impl Throttle {
    pub fn new(limits: ShardLimits) -> Throttle {
        Throttle {
            limits,
            shards: Mutex::new(HashMap::new()),
        }
    }

    fn with_shard<T>(&self, key: (i64, u64), f: impl FnOnce(&mut ShardBuckets, Instant) -> T) -> T {
        let now = Instant::now();
        let mut shards = self.shards.lock().expect("throttle lock");
        if shards.len() >= SHARDS_TRACKED_MAX && !shards.contains_key(&key) {
            shards.retain(|_, b| now.saturating_duration_since(b.used) < IDLE);
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
            used: now,
        });
        buckets.used = now;
        f(buckets, now)
    }

    /// Takes the tokens for one record of `bytes` written to a shard, or refuses it.
    pub fn admit_write(&self, stream_id: i64, shard: u64, bytes: u64) -> bool {
        let l = self.limits;
        if l.write_bytes == 0 && l.write_records == 0 {
            return true;
        }
        self.with_shard((stream_id, shard), |b, now| {
            b.write_bytes.refill(l.write_bytes, now);
            b.write_records.refill(l.write_records, now);
            // A record larger than a second's budget is admitted once the bucket is full.
            let need_bytes = bytes.min(l.write_bytes) as f64;
            let bytes_ok = l.write_bytes == 0 || b.write_bytes.tokens >= need_bytes;
            let records_ok = l.write_records == 0 || b.write_records.tokens >= 1.0;
            if bytes_ok && records_ok {
                if l.write_bytes > 0 {
                    b.write_bytes.tokens -= need_bytes;
                }
                if l.write_records > 0 {
                    b.write_records.tokens -= 1.0;
                }
                true
            } else {
                false
            }
        })
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

    #[test]
    fn writes_are_limited_by_records_and_bytes_per_shard() {
        let t = Throttle::new(limits(10, 1_000_000, 0, 0));
        let admitted = (0..25).filter(|_| t.admit_write(1, 0, 10)).count();
        assert_eq!(admitted, 10);
        // Another shard has its own buckets.
        assert!(t.admit_write(1, 1, 10));
        let t = Throttle::new(limits(0, 1_000, 0, 0));
        assert!(t.admit_write(1, 0, 600));
        assert!(!t.admit_write(1, 0, 600));
        assert!(t.admit_write(1, 0, 400));
        // The bucket refills at the rate.
        std::thread::sleep(Duration::from_millis(700));
        assert!(t.admit_write(1, 0, 600));
    }

    #[test]
    fn a_large_read_puts_the_shard_in_debt() {
        let t = Throttle::new(limits(0, 0, 5, 1_000));
        assert!(t.admit_read(1, 0));
        t.charge_read(1, 0, 3_000);
        assert!(!t.admit_read(1, 0));
        let t = Throttle::new(limits(0, 0, 5, 0));
        assert_eq!((0..8).filter(|_| t.admit_read(1, 0)).count(), 5);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let t = Throttle::new(limits(0, 0, 0, 0));
        assert!((0..10_000).all(|_| t.admit_write(1, 0, 1_000_000)));
        assert!((0..10_000).all(|_| t.admit_read(1, 0)));
    }
}
