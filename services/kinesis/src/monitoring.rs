//! Enhanced monitoring: EnableEnhancedMonitoring and DisableEnhancedMonitoring choose a
//! stream's shard-level metrics, and the record paths report those metrics per shard in
//! Prometheus (`sluice_shard_*`, labelled by account, stream and shard) while they are on.
//! A stream with none on costs no per-shard series.

use catalog::Stream;
use catalog::streams::shard_id;
use edge::Caller;
use protocol::model::*;
use protocol::{ApiError, ErrorCode, validate};

use crate::state::*;

/// The shard-level metrics in the order Kinesis documents them, with the Prometheus
/// series each turns on.
pub(crate) const SHARD_LEVEL_METRICS: [(&str, &str); 7] = [
    ("IncomingBytes", "sluice_shard_incoming_bytes_total"),
    ("IncomingRecords", "sluice_shard_incoming_records_total"),
    ("OutgoingBytes", "sluice_shard_outgoing_bytes_total"),
    ("OutgoingRecords", "sluice_shard_outgoing_records_total"),
    (
        "WriteProvisionedThroughputExceeded",
        "sluice_shard_write_provisioned_throughput_exceeded_total",
    ),
    (
        "ReadProvisionedThroughputExceeded",
        "sluice_shard_read_provisioned_throughput_exceeded_total",
    ),
    (
        "IteratorAgeMilliseconds",
        "sluice_shard_iterator_age_milliseconds",
    ),
];

const ALL: &str = "ALL";

/// The metrics a stream has on, in documented order.
pub(crate) fn enabled(stream: &Stream) -> Vec<String> {
    stream
        .shard_level_metrics
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The stream's EnhancedMonitoring member: one entry with the metrics that are on.
pub(crate) fn enhanced_monitoring(stream: &Stream) -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics {
        shard_level_metrics: enabled(stream),
    }]
}

fn series(metric: &str) -> &'static str {
    SHARD_LEVEL_METRICS
        .iter()
        .find(|(name, _)| *name == metric)
        .map(|(_, series)| *series)
        .expect("a documented metric")
}

/// One shard of a stream, with the shard-level metrics its stream has on (the
/// stream's `shard_level_metrics`, as the caller already read it: recording costs no
/// lookup, and nothing at all for a stream with none on).
pub(crate) struct ShardMetrics<'a> {
    account: &'a str,
    stream: &'a str,
    on: &'a str,
    shard: u64,
}

impl<'a> ShardMetrics<'a> {
    pub(crate) fn new(account: &'a str, stream: &'a str, on: &'a str, shard: u64) -> Self {
        ShardMetrics {
            account,
            stream,
            on,
            shard,
        }
    }

    pub(crate) fn of(stream: &'a Stream, shard: u64) -> Self {
        Self::new(
            &stream.account_id,
            &stream.name,
            &stream.shard_level_metrics,
            shard,
        )
    }

    fn is_on(&self, metric: &str) -> bool {
        self.on.split(',').any(|m| m == metric)
    }

    fn labels(&self) -> [(&'static str, String); 3] {
        [
            ("account", self.account.to_string()),
            ("stream", self.stream.to_string()),
            ("shard", shard_id(self.shard)),
        ]
    }

    /// Counts `value` on a shard-level counter, if the stream has that metric on.
    pub(crate) fn count(&self, metric: &str, value: u64) {
        if self.is_on(metric) {
            metrics::counter!(series(metric), &self.labels()).increment(value);
        }
    }

    /// Records records written to (`incoming`) or read from the shard.
    pub(crate) fn traffic(&self, incoming: bool, records: u64, bytes: u64) {
        if self.on.is_empty() {
            return;
        }
        let (r, b) = if incoming {
            ("IncomingRecords", "IncomingBytes")
        } else {
            ("OutgoingRecords", "OutgoingBytes")
        };
        self.count(r, records);
        self.count(b, bytes);
    }

    /// Sets the shard's iterator age: how far behind the newest record a read was.
    pub(crate) fn iterator_age(&self, millis: i64) {
        if self.is_on("IteratorAgeMilliseconds") {
            metrics::gauge!(series("IteratorAgeMilliseconds"), &self.labels())
                .set(millis.max(0) as f64);
        }
    }
}

/// The metrics an Enable/DisableEnhancedMonitoring request names, checked; ALL stands
/// for every one.
fn requested(input: &EnhancedMonitoringInput) -> Result<Vec<&'static str>, ApiError> {
    let names = validate::required(input.shard_level_metrics.as_ref(), "shardLevelMetrics")?;
    if names.is_empty() || names.len() > SHARD_LEVEL_METRICS.len() {
        return Err(ApiError::validation(
            format!("{names:?}"),
            "shardLevelMetrics",
            if names.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 7"
            },
        ));
    }
    let mut out = Vec::new();
    for name in names {
        if name == ALL {
            return Ok(SHARD_LEVEL_METRICS.iter().map(|(m, _)| *m).collect());
        }
        let known = SHARD_LEVEL_METRICS
            .iter()
            .find(|(m, _)| m == name)
            .ok_or_else(|| {
                ApiError::validation(
                    format!("{names:?}"),
                    "shardLevelMetrics",
                    "Member must satisfy constraint: [Member must satisfy enum value set: \
                     [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, \
                     WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, \
                     IteratorAgeMilliseconds, ALL]]",
                )
            })?;
        out.push(known.0);
    }
    Ok(out)
}

/// EnableEnhancedMonitoring (`enable`) and DisableEnhancedMonitoring.
pub(crate) async fn set(
    state: &Kinesis,
    caller: &Caller,
    input: EnhancedMonitoringInput,
    enable: bool,
) -> Result<EnhancedMonitoringOutput, ApiError> {
    let asked = requested(&input)?;
    let action = if enable {
        "kinesis:EnableEnhancedMonitoring"
    } else {
        "kinesis:DisableEnhancedMonitoring"
    };
    let stream = state.load(caller, action, input.stream()).await?;
    if stream.status != catalog::StreamStatus::Active {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Stream {} under account {} not ACTIVE, instead in state {}",
                stream.name,
                stream.account_id,
                stream.status.as_str()
            ),
        ));
    }
    let current = enabled(&stream);
    let desired: Vec<String> = SHARD_LEVEL_METRICS
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| {
            let on = current.iter().any(|c| c == m);
            let named = asked.contains(m);
            if enable { on || named } else { on && !named }
        })
        .map(str::to_string)
        .collect();
    state
        .catalog
        .set_shard_level_metrics(stream.id, &desired.join(","))
        .await
        .map_err(api)?;
    state.streams.forget(&caller.account_id, &stream.name);
    Ok(EnhancedMonitoringOutput {
        stream_arn: state.arn(caller, &stream.name),
        stream_name: stream.name,
        current_shard_level_metrics: current,
        desired_shard_level_metrics: desired,
    })
}
