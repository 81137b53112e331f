//! `sluice consume`: a ready consumer-group worker. Each user record (KPL aggregates
//! split) is one JSON object per line on stdout; a batch is checkpointed once its
//! lines are written and flushed; SIGTERM or SIGINT ends it after the batch in hand,
//! checkpointed, and leaves the group so its shards move at once.

use std::io::Write;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sluice_client::Client;
use sluice_client::group::{GroupConsumer, GroupOptions, GroupRecord, StartFrom};
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::ConnectArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum From {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The stream to read.
    #[arg(long)]
    stream: String,
    /// The consumer group; made on first use, starting at --from.
    #[arg(long)]
    group: String,
    /// Where a new group starts (an existing group keeps its checkpoints).
    #[arg(long, value_enum, default_value = "trim-horizon")]
    from: From,
    /// With --from at-timestamp: RFC 3339 or epoch seconds.
    #[arg(long)]
    timestamp: Option<String>,
    /// The name this worker shows in the group.
    #[arg(long)]
    member_name: Option<String>,
    /// A new group's lease timeout: a worker silent this long loses its shards.
    #[arg(long)]
    lease_timeout_seconds: Option<i64>,
    /// Stop (checkpointed, leaving the group) after this many records.
    #[arg(long)]
    max_records: Option<u64>,
}

fn epoch_seconds(text: &str) -> anyhow::Result<f64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text} is neither RFC 3339 nor epoch seconds"))?;
    Ok(at.timestamp_millis() as f64 / 1000.0)
}

fn line(record: &GroupRecord) -> String {
    let arrival_ms = (record.approximate_arrival * 1000.0).round() as i64;
    let arrival = chrono::DateTime::from_timestamp_millis(arrival_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let mut value = json!({
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "partition_key": record.partition_key,
        "approximate_arrival": arrival,
        "data": BASE64.encode(&record.data),
    });
    if let Some(sub) = record.sub_sequence_number {
        value["sub_sequence_number"] = json!(sub);
    }
    value.to_string()
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let from = match (args.from, &args.timestamp) {
        (From::TrimHorizon, None) => StartFrom::TrimHorizon,
        (From::Latest, None) => StartFrom::Latest,
        (From::AtTimestamp, Some(at)) => StartFrom::AtTimestamp(epoch_seconds(at)?),
        (From::AtTimestamp, None) => anyhow::bail!("--from at-timestamp needs --timestamp"),
        (_, Some(_)) => anyhow::bail!("--timestamp goes with --from at-timestamp"),
    };
    let connect = &args.connect;
    let client = Client::from_files(
        &connect.endpoint,
        &connect.ca,
        &connect.credentials,
        &connect.region,
    )?;
    let options = GroupOptions {
        member_name: args.member_name.clone(),
        create_from: Some(from),
        lease_timeout_seconds: args.lease_timeout_seconds,
        ..GroupOptions::default()
    };
    let mut group = GroupConsumer::join(client, &args.stream, &args.group, options).await?;
    eprintln!(
        "joined consumer group {} of {} as {}",
        args.group,
        args.stream,
        group.member_id()
    );
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut written = 0u64;
    let stdout = std::io::stdout();
    loop {
        if args.max_records.is_some_and(|max| written >= max) {
            break;
        }
        let batch = tokio::select! {
            batch = group.next_batch() => batch?,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let mut out = stdout.lock();
        for record in &batch.records {
            writeln!(out, "{}", line(record))?;
        }
        out.flush()?;
        drop(out);
        written += batch.records.len() as u64;
        // Written and flushed: now the group may forget them.
        group.commit(&batch).await?;
    }
    let member = group.member_id().to_string();
    group.leave().await?;
    eprintln!("left consumer group {} as {member}", args.group);
    Ok(())
}
