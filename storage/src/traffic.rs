//! Per-stream traffic counters (records and bytes in and out), recorded through the
//! `metrics` facade by the writer and by the services that read.

/// Which way records went.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    In,
    Out,
}

/// Records written to or read from a stream.
pub fn stream_traffic(direction: Direction, account: &str, stream: &str, records: u64, bytes: u64) {
    let (records_name, bytes_name) = match direction {
        Direction::In => (
            "sluice_stream_records_in_total",
            "sluice_stream_bytes_in_total",
        ),
        Direction::Out => (
            "sluice_stream_records_out_total",
            "sluice_stream_bytes_out_total",
        ),
    };
    let labels = [
        ("account", account.to_string()),
        ("stream", stream.to_string()),
    ];
    metrics::counter!(records_name, &labels).increment(records);
    metrics::counter!(bytes_name, &labels).increment(bytes);
}
