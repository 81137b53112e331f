//! The on-demand mode's scaling: an ON_DEMAND stream splits a shard that carries much
//! of a shard's write capacity and merges two neighbours that carry little, by itself,
//! within configured bounds on its open shard count.
//!
//! A pass looks at each ACTIVE on-demand stream's writes over the last window, as the
//! catalog's chunk rows record them (so any process may run it, and every process sees
//! the writes of all of them), and takes at most one step per stream:
//! - a shard whose write rate reaches half a shard's capacity (records or bytes, the
//!   per-shard write limits, or Kinesis's when those are off) splits at the middle of
//!   its hash key range, while the stream is under its maximum;
//! - otherwise, while over its minimum, the adjacent pair of shards with the least
//!   combined rate merges when that rate is under a fifth of one shard's capacity and
//!   both shards have been open a whole window (so a fresh child is not merged away
//!   before it has shown its traffic).
//!
//! A step is a reshard like any other (`Catalog::reshard`): lineage, the meter and the
//! account's shard limit hold as for SplitShard and MergeShards. Two processes running
//! the pass at once cannot both reshard from the same state: the reshard takes the
//! stream's row and re-reads its open shards inside its transaction, and a plan on a
//! shard that closed meanwhile is refused.

use std::collections::HashMap;

use catalog::streams::{Reshard, ReshardContext};
use catalog::{CatalogError, Stream};
use protocol::hash::HashKey;

use crate::settings::OnDemandScaling;
use crate::state::Kinesis;
use crate::throttle::ShardLimits;

/// A shard's share of write capacity at or past which it splits.
const SPLIT_AT: f64 = 0.5;
/// Two neighbours' combined share under which they merge.
const MERGE_UNDER: f64 = 0.2;
/// On-demand streams one pass looks at, at most.
const STREAMS_PER_PASS: i64 = 1_000;

/// A shard's write capacity in bytes a second: the configured limit, else Kinesis's.
pub fn shard_write_bytes(limits: &ShardLimits) -> u64 {
    match limits.write_bytes {
        0 => ShardLimits::default().write_bytes,
        n => n,
    }
}

/// The open shards an on-demand stream keeps for its warm throughput.
pub fn warm_floor(stream: &Stream, limits: &ShardLimits) -> u32 {
    let wanted = (stream.warm_throughput_mibps.max(0) as u64).saturating_mul(1024 * 1024);
    u32::try_from(wanted.div_ceil(shard_write_bytes(limits))).unwrap_or(u32::MAX)
}

/// One step for one stream, if its traffic calls for one.
pub fn decide(
    stream: &Stream,
    written: &HashMap<u64, (u64, u64)>,
    limits: &ShardLimits,
    scaling: &OnDemandScaling,
    now_ms: i64,
) -> Option<Reshard> {
    let kinesis = ShardLimits::default();
    let capacity_records = match limits.write_records {
        0 => kinesis.write_records,
        n => n,
    } as f64;
    let capacity_bytes = match limits.write_bytes {
        0 => kinesis.write_bytes,
        n => n,
    } as f64;
    let window_ms = scaling.window.as_millis().max(1) as i64;
    let mut open: Vec<_> = stream.open_shards().collect();
    open.sort_by_key(|s| s.hash_key_range.starting);
    // A shard's share of one shard's capacity, over the part of the window it was open.
    let share = |ordinal: u64, created_at_ms: i64| {
        let (records, bytes) = written.get(&ordinal).copied().unwrap_or((0, 0));
        let seconds = ((now_ms - created_at_ms).clamp(1_000, window_ms)) as f64 / 1000.0;
        (records as f64 / seconds / capacity_records).max(bytes as f64 / seconds / capacity_bytes)
    };
    let count = open.len() as u32;
    let floor = warm_floor(stream, limits);
    // Under its warm throughput: the widest shard splits, traffic or not.
    if count < floor.min(scaling.shards_max)
        && let Some(widest) = open
            .iter()
            .filter(|s| s.hash_key_range.ending.0 - s.hash_key_range.starting.0 >= 4)
            .max_by_key(|s| s.hash_key_range.ending.0 - s.hash_key_range.starting.0)
    {
        let range = widest.hash_key_range;
        return Some(Reshard::Split {
            shard: widest.ordinal,
            new_starting_key: HashKey(
                range.starting.0 + (range.ending.0 - range.starting.0) / 2 + 1,
            ),
        });
    }
    if count < scaling.shards_max {
        let hottest = open
            .iter()
            .map(|s| (share(s.ordinal, s.created_at_ms), *s))
            .filter(|(u, s)| {
                *u >= SPLIT_AT && s.hash_key_range.ending.0 - s.hash_key_range.starting.0 >= 4
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, shard)) = hottest {
            let range = shard.hash_key_range;
            let middle = range.starting.0 + (range.ending.0 - range.starting.0) / 2 + 1;
            return Some(Reshard::Split {
                shard: shard.ordinal,
                new_starting_key: HashKey(middle),
            });
        }
    }
    if count > scaling.shards_min.max(floor) {
        let settled = |created_at_ms: i64| now_ms - created_at_ms >= window_ms;
        let coldest = open
            .windows(2)
            .filter(|pair| settled(pair[0].created_at_ms) && settled(pair[1].created_at_ms))
            .map(|pair| {
                let combined = share(pair[0].ordinal, pair[0].created_at_ms)
                    + share(pair[1].ordinal, pair[1].created_at_ms);
                (combined, pair[0].ordinal, pair[1].ordinal)
            })
            .filter(|(combined, _, _)| *combined < MERGE_UNDER)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, low, high)) = coldest {
            return Some(Reshard::Merge {
                shard: low,
                adjacent: high,
            });
        }
    }
    None
}

/// One pass over every ACTIVE on-demand stream.
pub async fn pass(state: &Kinesis, now_ms: i64) -> Result<(), CatalogError> {
    let scaling = state.config.on_demand;
    let since = now_ms - scaling.window.as_millis() as i64;
    let streams = state.catalog.on_demand_streams(STREAMS_PER_PASS).await?;
    for (stream_id, account) in streams {
        let Some(stream) = state.catalog.load_stream_by_id(&account, stream_id).await? else {
            continue;
        };
        let written = state.catalog.shard_writes_since(stream_id, since).await?;
        let Some(step) = decide(
            &stream,
            &written,
            &state.config.shard_limits,
            &scaling,
            now_ms,
        ) else {
            continue;
        };
        let done = state
            .catalog
            .reshard(
                &ReshardContext {
                    account_id: &account,
                    name: &stream.name,
                    region: &state.config.region,
                    now_ms,
                    account_shards_max: state.config.account_shards_max,
                    updating_until_ms: None,
                    by_hand: false,
                },
                step,
            )
            .await;
        match done {
            Ok(done) => {
                tracing::info!(stream = %stream.name, account = %account, ?step, open_before = done.open_before, open_after = done.open_after, "on-demand scaling");
                state.streams.forget(&account, &stream.name);
            }
            // Another process resharded first, the stream changed state, or the
            // account is at its shard limit: the next pass looks again.
            Err(CatalogError::Refused(e)) => {
                tracing::debug!(stream = %stream.name, error = %e.message, "on-demand scaling step refused");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{Shard, StreamMode, StreamStatus};
    use protocol::hash::HashKeyRange;
    use std::time::Duration;

    fn stream(created_at_ms: i64, count: u32) -> Stream {
        Stream {
            id: 1,
            account_id: "000000000000".into(),
            name: "od".into(),
            status: StreamStatus::Active,
            mode: StreamMode::OnDemand,
            retention_hours: 24,
            created_at_ms,
            encryption_type: "NONE".into(),
            key_id: None,
            master_key_id: None,
            shard_level_metrics: String::new(),
            record_distribution: "USER_PARTITION_KEY".into(),
            warm_throughput_mibps: 0,
            max_record_size_kib: 1024,
            shards: HashKeyRange::split_evenly(count)
                .into_iter()
                .enumerate()
                .map(|(i, range)| Shard {
                    ordinal: i as u64,
                    hash_key_range: range,
                    parent_ordinal: None,
                    adjacent_parent_ordinal: None,
                    created_at_ms,
                    closed_at_ms: None,
                    next_sequence: 1,
                })
                .collect(),
        }
    }

    const LIMITS: ShardLimits = ShardLimits {
        write_bytes: 1_000_000,
        write_records: 100,
        read_bytes: 0,
        read_calls: 0,
    };
    const SCALING: OnDemandScaling = OnDemandScaling {
        shards_min: 2,
        shards_max: 4,
        window: Duration::from_secs(10),
    };

    #[test]
    fn a_hot_shard_splits_in_the_middle() {
        let s = stream(0, 2);
        // 600 records in 10 s on shard 1: 60% of 100 records/s.
        let written = HashMap::from([(0, (10, 100)), (1, (600, 6_000))]);
        let step = decide(&s, &written, &LIMITS, &SCALING, 20_000).unwrap();
        let range = s.shards[1].hash_key_range;
        assert_eq!(
            step,
            Reshard::Split {
                shard: 1,
                new_starting_key: HashKey(
                    range.starting.0 + (range.ending.0 - range.starting.0) / 2 + 1
                ),
            }
        );
        // Bytes count as much as records: 6 MB in 10 s is 60% of 1 MB/s.
        let written = HashMap::from([(0, (1, 6_000_000))]);
        assert!(matches!(
            decide(&s, &written, &LIMITS, &SCALING, 20_000),
            Some(Reshard::Split { shard: 0, .. })
        ));
        // At its maximum a stream does not split.
        let full = stream(0, 4);
        let written = HashMap::from([(1, (900, 0))]);
        assert!(!matches!(
            decide(&full, &written, &LIMITS, &SCALING, 20_000),
            Some(Reshard::Split { .. })
        ));
    }

    #[test]
    fn cold_settled_neighbours_merge_down_to_the_minimum() {
        let s = stream(0, 4);
        let written = HashMap::from([(0, (500, 0)), (1, (50, 0)), (2, (10, 0)), (3, (10, 0))]);
        // 2 and 3 are the coldest pair (2% together); 0 is at 50% and would split, but
        // the stream is at its maximum.
        assert_eq!(
            decide(&s, &written, &LIMITS, &SCALING, 20_000),
            Some(Reshard::Merge {
                shard: 2,
                adjacent: 3
            })
        );
        // Shards younger than a window do not merge.
        assert_eq!(decide(&s, &written, &LIMITS, &SCALING, 5_000), None);
        // At its minimum a stream does not merge.
        let small = stream(0, 2);
        assert_eq!(
            decide(&small, &HashMap::new(), &LIMITS, &SCALING, 20_000),
            None
        );
        // A busy pair does not merge: 15% + 10% is over a fifth.
        let busy = HashMap::from([(0, (150, 0)), (1, (100, 0)), (2, (150, 0)), (3, (150, 0))]);
        let three = stream(0, 3);
        assert_eq!(decide(&three, &busy, &LIMITS, &SCALING, 20_000), None);
    }

    #[test]
    fn warm_throughput_keeps_shards_and_grows_to_them() {
        // 3 MiB/s at 1,000,000 bytes/s a shard: 4 shards (3,145,728 / 1,000,000, up).
        let mut s = stream(0, 4);
        s.warm_throughput_mibps = 3;
        assert_eq!(warm_floor(&s, &LIMITS), 4);
        // Idle, at its floor: no merge even though the pair is cold.
        assert_eq!(decide(&s, &HashMap::new(), &LIMITS, &SCALING, 20_000), None);
        // Under its floor: the widest shard splits with no traffic at all.
        let mut small = stream(0, 2);
        small.warm_throughput_mibps = 3;
        assert!(matches!(
            decide(&small, &HashMap::new(), &LIMITS, &SCALING, 20_000),
            Some(Reshard::Split { .. })
        ));
        // Without a target the floor is nothing.
        assert_eq!(warm_floor(&stream(0, 2), &LIMITS), 0);
    }
}
