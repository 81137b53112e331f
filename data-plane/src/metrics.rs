//! Prometheus metrics. Code records through the `metrics` facade (`counter!`,
//! `histogram!`); this module installs the one process-wide recorder and renders its
//! text for `GET /metrics`, which the gateway serves only to an authenticated caller
//! Cedar allows `sluice:ReadMetrics` (the administering tenant's, by default: the
//! metrics name every tenant's streams).
//!
//! Every label has a bounded set of values: operations and outcomes are closed sets
//! (unknown targets count as `unknown`, outcomes are AWS error type names), and stream
//! labels are bounded by the streams a deployment may hold.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds, for every `*_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Buckets for counts (records per commit batch).
const COUNT_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1_024.0, 4_096.0, 16_384.0];
/// Buckets for sizes in bytes (bytes per commit batch).
const BYTES_BUCKETS: &[f64] = &[
    1_024.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (a process may start several
/// servers in tests; they share it).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_records".into()), COUNT_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only its own"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "sluice_requests_total",
        "Requests by API, operation and outcome (ok or the AWS error type)."
    );
    describe_histogram!(
        "sluice_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its answer, by API and operation."
    );
    describe_counter!(
        "sluice_stream_records_in_total",
        "Records acknowledged to writers, per stream."
    );
    describe_counter!(
        "sluice_stream_bytes_in_total",
        Unit::Bytes,
        "Record data bytes acknowledged to writers, per stream."
    );
    describe_counter!(
        "sluice_stream_records_out_total",
        "Records returned by GetRecords, per stream."
    );
    describe_counter!(
        "sluice_stream_bytes_out_total",
        Unit::Bytes,
        "Record data bytes returned by GetRecords, per stream."
    );
    describe_histogram!(
        "sluice_commit_batch_records",
        "Records in one group commit (one durable append, one catalog transaction)."
    );
    describe_histogram!(
        "sluice_commit_batch_bytes",
        Unit::Bytes,
        "Record data bytes in one group commit."
    );
    describe_histogram!(
        "sluice_object_store_duration_seconds",
        Unit::Seconds,
        "Object-store operations (op=append: a flush made durable, a local append or an S3 PUT; op=read: a chunk read, a ranged GET on S3)."
    );
    describe_histogram!(
        "sluice_catalog_duration_seconds",
        Unit::Seconds,
        "Catalog transactions of the write path (a flush's commit; an audit batch)."
    );
    describe_counter!(
        "sluice_compacted_chunks_total",
        "Chunks compaction rewrote into per-shard objects."
    );
    describe_counter!(
        "sluice_compacted_bytes_total",
        Unit::Bytes,
        "Stored bytes of the chunks compaction rewrote."
    );
    describe_counter!(
        "sluice_throttled_total",
        "Records and reads refused for their shard's throughput limit, per stream."
    );
    describe_counter!(
        "sluice_shared_budget_leases_total",
        "Leases of shared per-shard write budgets from the catalog (one statement each)."
    );
    describe_counter!(
        "sluice_authorization_decisions_total",
        "Authorization decisions by outcome (Allow or Deny)."
    );
}

/// Records a finished request.
pub fn request(api: &'static str, operation: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(
        "sluice_requests_total",
        "api" => api,
        "operation" => operation.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(
        "sluice_request_duration_seconds",
        "api" => api,
        "operation" => operation.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// The API and operation a target names, with a bounded set of values.
pub fn operation_of(target: &str) -> (&'static str, &str) {
    if let Some(op) = target.strip_prefix(protocol::model::Operation::TARGET_PREFIX)
        && protocol::model::Operation::from_target(target).is_some()
    {
        return ("kinesis", op);
    }
    if let Some(op) = groups::GroupOperation::from_target(target) {
        return ("groups", op.name());
    }
    if let Some(op) = firehose::FirehoseOperation::from_target(target) {
        return ("firehose", op.name());
    }
    if let Some(op) = sqs::SqsOperation::from_target(target) {
        return ("sqs", op.name());
    }
    if let Some(op) = firehose::channel_api::ChannelOperation::from_target(target) {
        return ("kinesis", op.name());
    }
    if let Some(op) = target.strip_prefix(protocol::kms::KmsOperation::TARGET_PREFIX) {
        let known = protocol::kms::KmsOperation::from_target(target).is_some();
        return ("kms", if known { op } else { "unknown" });
    }
    ("kinesis", "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_render_as_prometheus_text() {
        let handle = handle();
        request("kinesis", "PutRecord", "ok", Duration::from_millis(3));
        storage::traffic::stream_traffic(
            storage::traffic::Direction::In,
            "111111111111",
            "orders",
            2,
            10,
        );
        metrics::histogram!("sluice_commit_batch_records").record(17.0);
        let text = handle.render();
        assert!(
            text.contains(
                r#"sluice_requests_total{api="kinesis",operation="PutRecord",outcome="ok"}"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"sluice_request_duration_seconds_bucket{api="kinesis",operation="PutRecord",le="0.005"}"#), "{text}");
        assert!(
            text.contains(
                r#"sluice_stream_bytes_in_total{account="111111111111",stream="orders"} 10"#
            ),
            "{text}"
        );
        assert!(
            text.contains("sluice_commit_batch_records_bucket"),
            "{text}"
        );
    }

    #[test]
    fn unknown_targets_do_not_grow_the_label_set() {
        assert_eq!(
            operation_of("Kinesis_20131202.PutRecord"),
            ("kinesis", "PutRecord")
        );
        assert_eq!(
            operation_of("Kinesis_20131202.Bogus"),
            ("kinesis", "unknown")
        );
        assert_eq!(operation_of("whatever"), ("kinesis", "unknown"));
        assert_eq!(operation_of("TrentService.Encrypt"), ("kms", "Encrypt"));
        assert_eq!(operation_of("TrentService.Nope"), ("kms", "unknown"));
    }
}
