//! The Kinesis service's settings: account limits, the stream transition while, the
//! per-shard throughput limits and the on-demand mode's bounds.

use std::time::Duration;

use crate::throttle::ShardLimits;

/// The settings of the Kinesis service.
#[derive(Debug, Clone)]
pub struct KinesisConfig {
    pub region: String,
    /// Shards an account may hold across its streams.
    pub account_shards_max: i64,
    /// On-demand streams an account may have (AWS: 50).
    pub account_on_demand_streams_max: i64,
    /// How long a stream stays CREATING, UPDATING or DELETING; 0 makes them immediate.
    pub stream_transition_ms: u64,
    /// Per-shard throughput limits (Kinesis's by default).
    pub shard_limits: ShardLimits,
    /// How ON_DEMAND streams split and merge by themselves.
    pub on_demand: OnDemandScaling,
}

/// Bounds and pace of the on-demand mode's scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnDemandScaling {
    /// Open shards an on-demand stream keeps at least (its initial count by default).
    pub shards_min: u32,
    /// Open shards it grows to at most.
    pub shards_max: u32,
    /// The window its write rates are measured over.
    pub window: Duration,
}

impl Default for OnDemandScaling {
    fn default() -> Self {
        OnDemandScaling {
            shards_min: protocol::limits::ON_DEMAND_INITIAL_SHARDS as u32,
            shards_max: 200,
            window: Duration::from_secs(60),
        }
    }
}

impl OnDemandScaling {
    /// How often the pass runs: six times a window, at most once a second.
    pub fn interval(&self) -> Duration {
        (self.window / 6).max(Duration::from_secs(1))
    }
}
