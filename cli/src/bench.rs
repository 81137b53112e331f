//! `sluice bench`: drives a running server over TLS with many connections and reports
//! records/s, MB/s and latency percentiles for PutRecord, PutRecords and a catch-up
//! read with GetRecords.
//!
//! The load is bounded: each phase runs for `--seconds` (the read phase until it has
//! read what the write phases wrote), against the endpoint given, which must be a
//! loopback address unless `--allow-remote` says otherwise.

mod sns;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use serde_json::{Value, json};
use tokio_rustls::TlsConnector;

use crate::sigv4::Signer;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The server, host:port (TLS).
    #[arg(long, default_value = "127.0.0.1:4567")]
    endpoint: SocketAddr,
    /// The CA certificate to trust (the server prints where its own is).
    #[arg(long, default_value = "./sluice-data/tls/ca.pem")]
    ca: PathBuf,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds each write phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Shards of the benchmark stream.
    #[arg(long, default_value_t = 8)]
    shards: u32,
    /// Bytes of data per record.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Phases to run, comma separated: put-record, put-records, get-records,
    /// consumer-group (members of one group, one per shard, read what was written
    /// and checkpoint each batch; reported per checkpoint), and firehose
    /// (PutRecordBatch to a delivery stream into the bucket --firehose-bucket-arn
    /// through the connection --firehose-role-arn names, until every byte is in S3), and
    /// sqs (each connection sends a batch of ten, receives up to ten and deletes them,
    /// over and over, on one new queue; messages/s are the messages deleted), and sns
    /// (each connection publishes to one new topic with --sns-queues queues subscribed;
    /// a Publish answers once every queue has the message, so its latency is
    /// publish-to-delivery; records/s are deliveries).
    #[arg(long, default_value = "put-record,put-records,get-records")]
    phases: String,
    /// AWS shared-credentials file whose [default] profile signs the requests (the
    /// server writes its bootstrap admin's there).
    #[arg(long, default_value = "./sluice-data/credentials")]
    credentials: PathBuf,
    /// The region requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Permit a non-loopback endpoint.
    #[arg(long)]
    allow_remote: bool,
    /// The firehose phase's destination connection: arn:aws:iam::ACCOUNT:role/NAME.
    #[arg(long)]
    firehose_role_arn: Option<String>,
    /// The firehose phase's bucket: arn:aws:s3:::BUCKET.
    #[arg(long)]
    firehose_bucket_arn: Option<String>,
    /// Another endpoint, host:port on loopback speaking plain HTTP (kinesalite, moto's
    /// server): after the phases against Sluice, the put-record, put-records,
    /// get-records and sqs phases run against it with the same load, and the ratio of
    /// records/s is printed.
    #[arg(long)]
    compare: Option<SocketAddr>,
    /// Queues subscribed to the sns phase's topic.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=100))]
    sns_queues: u16,
    /// The server's process id (on this machine): each phase also reports the CPU time
    /// the server and the bench spent per request (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The `--compare` server's process id, for the same figure of it.
    #[arg(long)]
    compare_pid: Option<u32>,
}

/// The phases `--compare` repeats against the other endpoint.
const COMPARABLE: [&str; 4] = ["put-record", "put-records", "get-records", "sqs"];
/// The phases that write or read the benchmark stream.
const STREAM_PHASES: [&str; 4] = ["put-record", "put-records", "get-records", "consumer-group"];

const JSON: &str = "application/x-amz-json-1.1";

#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    /// The server's process, when its CPU time is measured.
    pid: Option<u32>,
    /// `None`: plain HTTP (only ever a `--compare` endpoint).
    connector: Option<TlsConnector>,
    signer: Arc<Signer>,
}

struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    signer: Arc<Signer>,
    /// To connect again when a server closes after an answer (moto's does).
    client: Client,
}

/// A request body with its signature, made once: a signature stays valid for the
/// server's clock-skew window, which is longer than a phase may run.
#[derive(Clone)]
struct Signed {
    body: Bytes,
    amz_date: String,
    authorization: String,
}

/// The target and signing service of `operation`: a Kinesis operation's name, or a
/// whole target (`Firehose_20150804.PutRecordBatch`).
fn target_of(operation: &str) -> (String, &'static str) {
    if operation.starts_with("Firehose_20150804.") {
        (operation.to_string(), "firehose")
    } else if operation.starts_with("AmazonSQS.") {
        (operation.to_string(), "sqs")
    } else {
        (format!("Kinesis_20131202.{operation}"), "kinesis")
    }
}

impl Signed {
    fn new(signer: &Signer, operation: &str, body: Bytes) -> Signed {
        let (target, service) = target_of(operation);
        let (amz_date, authorization) = signer.sign_request(
            "POST",
            "/",
            "",
            service,
            &[("content-type", JSON), ("x-amz-target", &target)],
            &body,
            protocol::clock::now_utc(&protocol::clock::SystemClock),
        );
        Signed {
            body,
            amz_date,
            authorization,
        }
    }
}

impl Client {
    async fn connect(&self) -> anyhow::Result<Connection> {
        Ok(Connection {
            sender: self.sender().await?,
            signer: self.signer.clone(),
            client: self.clone(),
        })
    }

    async fn sender(&self) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        Ok(match &self.connector {
            Some(tls) => crate::client::connect(tls, self.addr, "localhost").await?,
            None => {
                let tcp = tokio::net::TcpStream::connect(self.addr).await?;
                tcp.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        })
    }
}

impl Connection {
    async fn call(&mut self, operation: &str, body: Bytes) -> anyhow::Result<Value> {
        let body = self.call_raw(operation, body).await?;
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Signs and sends; returns the raw response body of a successful call.
    async fn call_raw(&mut self, operation: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let signed = Signed::new(&self.signer, operation, body);
        self.send(operation, signed).await
    }

    async fn send(&mut self, operation: &str, signed: Signed) -> anyhow::Result<Bytes> {
        let request = Request::post("/")
            .header("host", &self.signer.host)
            .header("content-type", JSON)
            .header("x-amz-target", target_of(operation).0)
            .header("x-amz-date", signed.amz_date)
            .header("authorization", signed.authorization)
            .body(Full::new(signed.body))?;
        if self.sender.ready().await.is_err() {
            self.sender = self.client.sender().await?;
            self.sender.ready().await?;
        }
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "{operation} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}

struct PhaseResult {
    requests: u64,
    records: u64,
    bytes: u64,
    errors: u64,
    /// Requests refused for the per-shard throughput limits (and, for reads, retried).
    throttled: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl PhaseResult {
    fn empty() -> PhaseResult {
        PhaseResult {
            requests: 0,
            records: 0,
            bytes: 0,
            errors: 0,
            throttled: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
        }
    }

    /// Prints the phase's line (and, with `cpu`, what it cost in CPU time); returns its
    /// records/s.
    fn report(&mut self, name: &str, cpu: &CpuMeter) -> f64 {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us[i] as f64 / 1000.0
        };
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{name:<12} {:>10.0} req/s {:>10.0} records/s {:>8.1} MB/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p999 {:>6.2} ms  ({} requests, {} errors, {} throttled, {:.1} s)",
            self.requests as f64 / secs,
            self.records as f64 / secs,
            self.bytes as f64 / secs / 1e6,
            pct(0.50),
            pct(0.99),
            pct(0.999),
            self.requests,
            self.errors,
            self.throttled,
            secs
        );
        if let Some((server, bench)) = cpu.spent() {
            let per = |s: f64| s * 1e6 / self.requests.max(1) as f64;
            println!(
                "{:<12} CPU per request: server {:.0} us, bench {:.0} us ({:.2} and {:.2} cores)",
                "",
                per(server),
                per(bench),
                server / secs,
                bench / secs
            );
        }
        if self.throttled > 0 {
            println!(
                "sluice bench: {} {name} requests met the server's per-shard limits (Kinesis's: \
                 writes 1 MiB/s and 1,000 records/s, reads 2 MiB/s and 5 calls/s per shard), so \
                 this measures the limits. To measure the server, start it with \
                 --shard-write-bytes-per-second 0 --shard-write-records-per-second 0 \
                 --shard-read-bytes-per-second 0 --shard-read-calls-per-second 0, or give the \
                 bench more --shards.",
                self.throttled
            );
        }
        self.records as f64 / secs
    }
}

/// CPU time spent by the server (when its process id is known) and by this process
/// since a phase began.
struct CpuMeter {
    server: Option<(u32, f64)>,
    bench: Option<f64>,
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            server: server_pid.and_then(|pid| Some((pid, cpu_seconds(pid).ok()?))),
            bench: cpu_seconds(std::process::id()).ok(),
        }
    }

    /// Seconds of CPU (server, bench) since `start`, if the server's is measured.
    fn spent(&self) -> Option<(f64, f64)> {
        let (pid, server) = self.server?;
        let now = cpu_seconds(pid).ok()?;
        let bench = match self.bench {
            Some(b) => cpu_seconds(std::process::id()).ok()? - b,
            None => 0.0,
        };
        Some((now - server, bench))
    }
}

/// User and system CPU seconds of process `pid` (Linux's /proc; clock ticks of 1/100 s,
/// the USER_HZ /proc reports in).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime, are the 12th and 13th after it.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/{pid}/stat"))?
            .parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Whether a failed call was refused for a per-shard throughput limit.
fn throttled(error: &anyhow::Error) -> bool {
    error
        .to_string()
        .contains("ProvisionedThroughputExceededException")
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.endpoint.ip().is_loopback() && !args.allow_remote {
        bail!(
            "--endpoint {} is not a loopback address; pass --allow-remote to mean it",
            args.endpoint
        );
    }
    if args.connections == 0 || args.connections > 4096 {
        bail!("--connections must be 1..=4096");
    }
    if args.seconds == 0 || args.seconds > 600 {
        bail!("--seconds must be 1..=600");
    }
    if args.record_bytes == 0 || args.record_bytes > protocol::limits::RECORD_BYTES_MAX - 16 {
        bail!("--record-bytes must be 1..=1048560");
    }
    let signer = Arc::new(Signer::from_credentials_file(
        &args.credentials,
        args.region.clone(),
        "localhost".into(),
    )?);
    for pid in [args.server_pid, args.compare_pid].into_iter().flatten() {
        cpu_seconds(pid).map_err(|e| {
            anyhow::anyhow!("--server-pid/--compare-pid {pid}: cannot read its CPU time: {e}")
        })?;
    }
    let sluice = Client {
        addr: args.endpoint,
        pid: args.server_pid,
        connector: Some(crate::client::tls_connector(&args.ca)?),
        signer: signer.clone(),
    };
    let ours = measure(&sluice, &args, &args.phases).await?;
    let Some(other) = args.compare else {
        return Ok(());
    };
    if !other.ip().is_loopback() {
        bail!("--compare {other} is not a loopback address");
    }
    let phases: Vec<&str> = args
        .phases
        .split(',')
        .map(str::trim)
        .filter(|p| COMPARABLE.contains(p))
        .collect();
    if phases.is_empty() {
        bail!("--compare repeats only the phases {COMPARABLE:?}");
    }
    println!("sluice bench: the same load against {other} (plain HTTP)");
    let compared = Client {
        addr: other,
        pid: args.compare_pid,
        connector: None,
        signer,
    };
    let theirs = measure(&compared, &args, &phases.join(",")).await?;
    for (phase, theirs) in &theirs {
        if let Some((_, ours)) = ours.iter().find(|(p, _)| p == phase) {
            println!(
                "{phase:<12} sluice {ours:>10.0} records/s  {other} {theirs:>10.0} records/s  ratio {:>6.2}x",
                ours / theirs.max(f64::MIN_POSITIVE)
            );
        }
    }
    Ok(())
}

/// Runs `phases` against one endpoint (making the benchmark stream first when a phase
/// needs it, and deleting it after); the records/s of each phase.
async fn measure(
    client: &Client,
    args: &BenchArgs,
    phases: &str,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let needs_stream = phases.split(',').any(|p| STREAM_PHASES.contains(&p.trim()));
    if !needs_stream {
        println!(
            "sluice bench: {} connections, {} B messages, {} s per phase",
            args.connections, args.record_bytes, args.seconds
        );
        return run_phases(client, args, phases, "").await;
    }
    let mut control = client.connect().await?;
    let stream = format!("bench-{}", std::process::id());
    control
        .call(
            "CreateStream",
            Bytes::from(json!({"StreamName": stream, "ShardCount": args.shards}).to_string()),
        )
        .await?;
    // The stream takes records once it is ACTIVE (it is CREATING for the server's
    // --stream-transition-ms); wait up to a minute.
    let active_by = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = control
            .call(
                "DescribeStreamSummary",
                Bytes::from(json!({ "StreamName": stream }).to_string()),
            )
            .await?;
        if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            break;
        }
        anyhow::ensure!(
            Instant::now() < active_by,
            "stream {stream} was not ACTIVE after a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "sluice bench: stream {stream}, {} shards, {} connections, {} B records, {} s per write phase",
        args.shards, args.connections, args.record_bytes, args.seconds
    );
    // The stream goes whatever the phases did: a failed bench leaves nothing behind.
    let measured = run_phases(client, args, phases, &stream).await;
    // A connection of its own: the first one sat idle through the phases, and the
    // server closes idle connections.
    drop(control);
    let deleted = match client.connect().await {
        Ok(mut fresh) => {
            fresh
                .call(
                    "DeleteStream",
                    Bytes::from(json!({"StreamName": stream}).to_string()),
                )
                .await
        }
        Err(e) => Err(e),
    };
    let measured = measured?;
    deleted.map(|_| measured)
}

async fn run_phases(
    client: &Client,
    args: &BenchArgs,
    phases: &str,
    stream: &str,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let data = BASE64.encode(vec![b'x'; args.record_bytes]);
    let mut rates = Vec::new();
    for phase in phases.split(',').map(str::trim) {
        let cpu = CpuMeter::start(client.pid);
        match phase {
            "put-record" => {
                let bodies: Vec<Bytes> = (0..1024)
                    .map(|i| Bytes::from(json!({"StreamName": stream, "PartitionKey": format!("pk-{i}"), "Data": data}).to_string()))
                    .collect();
                let mut result =
                    drive(client, args, "PutRecord", bodies, 1, args.record_bytes).await?;
                rates.push(("put-record", result.report("PutRecord", &cpu)));
            }
            "put-records" => {
                let bodies: Vec<Bytes> = (0..16)
                    .map(|b| {
                        let records: Vec<Value> = (0..500)
                            .map(|i| json!({"PartitionKey": format!("pk-{b}-{i}"), "Data": data}))
                            .collect();
                        Bytes::from(json!({"StreamName": stream, "Records": records}).to_string())
                    })
                    .collect();
                let mut result =
                    drive(client, args, "PutRecords", bodies, 500, args.record_bytes).await?;
                rates.push(("put-records", result.report("PutRecords", &cpu)));
            }
            "get-records" => {
                let mut result = catch_up(client, stream, args.shards).await?;
                rates.push(("get-records", result.report("GetRecords", &cpu)));
            }
            "consumer-group" => {
                let mut result = group_read(args, stream).await?;
                rates.push(("consumer-group", result.report("Group", &cpu)));
            }
            "firehose" => firehose(client, args, &data, &cpu).await?,
            "sqs" => {
                let mut result = sqs(client, args).await?;
                rates.push(("sqs", result.report("SQS", &cpu)));
            }
            "sns" => {
                let mut result = sns::sns(client, args).await?;
                rates.push(("sns", result.report("SNS", &cpu)));
            }
            other => bail!("unknown phase {other:?}"),
        }
    }
    Ok(rates)
}

/// Runs `operation` on every connection until the phase's time is up.
async fn drive(
    client: &Client,
    args: &BenchArgs,
    operation: &'static str,
    bodies: Vec<Bytes>,
    records_per_request: u64,
    record_bytes: usize,
) -> anyhow::Result<PhaseResult> {
    let bodies: Arc<Vec<Signed>> = Arc::new(
        bodies
            .into_iter()
            .map(|b| Signed::new(&client.signer, operation, b))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        let client = client.clone();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await?;
            let mut latencies = Vec::new();
            let (mut ok, mut errors, mut limited) = (0u64, 0u64, 0u64);
            let mut i = c;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let t = Instant::now();
                match conn.send(operation, body).await {
                    Ok(raw) => {
                        let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                        let failed = v
                            .get("FailedRecordCount")
                            .or_else(|| v.get("FailedPutCount"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        if failed > 0 {
                            errors += 1;
                        } else {
                            ok += 1;
                        }
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    Err(e) if throttled(&e) => limited += 1,
                    Err(_) => {
                        errors += 1;
                        conn = client.connect().await?;
                    }
                }
            }
            anyhow::Ok((ok, errors, limited, latencies))
        }));
    }
    let mut result = PhaseResult::empty();
    for task in tasks {
        let (ok, errors, limited, latencies) = task.await??;
        result.requests += ok;
        result.errors += errors;
        result.throttled += limited;
        result.latencies_us.extend(latencies);
    }
    result.elapsed = started.elapsed();
    result.records = result.requests * records_per_request;
    result.bytes = result.records * record_bytes as u64;
    Ok(result)
}

/// Members of one new consumer group (one per shard, at most one per connection)
/// read the stream from TRIM_HORIZON through the group, checkpointing each batch,
/// until the group has been idle for a second or the phase's time is up. Requests
/// and latencies are the checkpoints'.
async fn group_read(args: &BenchArgs, stream: &str) -> anyhow::Result<PhaseResult> {
    use sluice_client::group::{GroupConsumer, GroupOptions, StartFrom};
    let members = (args.shards.max(1) as usize).min(args.connections.max(1));
    let group = format!(
        "bench-{}",
        protocol::clock::Clock::now_ms(&protocol::clock::SystemClock).rem_euclid(1_000_000_000)
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds.max(1));
    let idle_after = Duration::from_secs(1);
    let mut tasks = Vec::new();
    for m in 0..members {
        let endpoint = args.endpoint.to_string();
        let (ca, credentials, region) = (
            args.ca.clone(),
            args.credentials.clone(),
            args.region.clone(),
        );
        let (stream, group) = (stream.to_string(), group.clone());
        tasks.push(tokio::spawn(async move {
            let client = sluice_client::Client::from_files(&endpoint, &ca, &credentials, &region)?;
            let options = GroupOptions {
                member_name: Some(format!("bench-{m}")),
                create_from: Some(StartFrom::TrimHorizon),
                idle_wait: Duration::from_millis(20),
                ..GroupOptions::default()
            };
            let mut member = GroupConsumer::join(client, &stream, &group, options).await?;
            let (mut commits, mut records, mut bytes) = (0u64, 0u64, 0u64);
            let mut latencies = Vec::new();
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let wait = idle_after.min(deadline - now);
                let Ok(batch) = tokio::time::timeout(wait, member.next_batch()).await else {
                    break;
                };
                let batch = batch?;
                records += batch.records.len() as u64;
                bytes += batch
                    .records
                    .iter()
                    .map(|r| r.data.len() as u64)
                    .sum::<u64>();
                let t = Instant::now();
                member.commit(&batch).await?;
                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                commits += 1;
            }
            member.leave().await?;
            anyhow::Ok((commits, records, bytes, latencies))
        }));
    }
    let mut result = PhaseResult::empty();
    for task in tasks {
        let (commits, records, bytes, latencies) = task.await??;
        result.requests += commits;
        result.records += records;
        result.bytes += bytes;
        result.latencies_us.extend(latencies);
    }
    // The last second was spent finding nothing more to read.
    result.elapsed = started
        .elapsed()
        .saturating_sub(idle_after)
        .max(Duration::from_millis(1));
    Ok(result)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsPage<'a> {
    #[serde(borrow)]
    records: Vec<PageRecord<'a>>,
    #[serde(borrow)]
    next_shard_iterator: Option<&'a str>,
    millis_behind_latest: i64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageRecord<'a> {
    /// base64 has no escapes, so it borrows straight from the body.
    data: &'a str,
}

/// Reads every shard from TRIM_HORIZON to its end, one connection per shard.
async fn catch_up(client: &Client, stream: &str, shards: u32) -> anyhow::Result<PhaseResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in 0..shards {
        let client = client.clone();
        let stream = stream.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await?;
            let it = conn
                .call(
                    "GetShardIterator",
                    Bytes::from(
                        json!({"StreamName": stream, "ShardId": format!("shardId-{shard:012}"), "ShardIteratorType": "TRIM_HORIZON"})
                            .to_string(),
                    ),
                )
                .await?;
            let mut iterator = it["ShardIterator"].as_str().unwrap_or_default().to_string();
            let (mut requests, mut records, mut bytes, mut limited) = (0u64, 0u64, 0u64, 0u64);
            let mut latencies = Vec::new();
            loop {
                let t = Instant::now();
                let raw = match conn
                    .call_raw("GetRecords", Bytes::from(json!({"ShardIterator": iterator, "Limit": 10000}).to_string()))
                    .await
                {
                    Ok(raw) => raw,
                    // Over the shard's read limit: wait for its next second, as the
                    // SDKs back off, and read on with the same iterator.
                    Err(e) if throttled(&e) => {
                        limited += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                requests += 1;
                // Borrowed, typed parsing: the load generator should cost far less than
                // the server it measures.
                let page: GetRecordsPage<'_> = serde_json::from_slice(&raw)?;
                records += page.records.len() as u64;
                bytes += page.records.iter().map(|r| r.data.len() as u64 * 3 / 4).sum::<u64>();
                match page.next_shard_iterator {
                    Some(next) if !(page.records.is_empty() && page.millis_behind_latest == 0) => {
                        iterator = next.to_string()
                    }
                    _ => break,
                }
            }
            anyhow::Ok((requests, records, bytes, limited, latencies))
        }));
    }
    let mut result = PhaseResult::empty();
    for task in tasks {
        let (requests, records, bytes, limited, latencies) = task.await??;
        result.throttled += limited;
        result.requests += requests;
        result.records += records;
        result.bytes += bytes;
        result.latencies_us.extend(latencies);
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// PutRecordBatch to a new delivery stream for the phase's time, then waits until the
/// server reports every byte delivered to S3; reports the ingest rate and the rate
/// from the first put to the last byte in the bucket.
async fn firehose(
    client: &Client,
    args: &BenchArgs,
    data: &str,
    cpu: &CpuMeter,
) -> anyhow::Result<()> {
    let (Some(role), Some(bucket)) = (&args.firehose_role_arn, &args.firehose_bucket_arn) else {
        bail!("the firehose phase needs --firehose-role-arn and --firehose-bucket-arn");
    };
    let name = format!("bench-fh-{}", std::process::id());
    let mut control = client.connect().await?;
    control
        .call(
            "Firehose_20150804.CreateDeliveryStream",
            Bytes::from(
                json!({
                    "DeliveryStreamName": name,
                    "ExtendedS3DestinationConfiguration": {
                        "RoleARN": role, "BucketARN": bucket, "Prefix": "sluice-bench/",
                        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
                    },
                })
                .to_string(),
            ),
        )
        .await?;
    drop(control);
    let bodies: Vec<Bytes> = (0..16)
        .map(|_| {
            let records: Vec<Value> = (0..500).map(|_| json!({ "Data": data })).collect();
            Bytes::from(json!({"DeliveryStreamName": name, "Records": records}).to_string())
        })
        .collect();
    let started = Instant::now();
    let outcome = async {
        let mut result = drive(
            client,
            args,
            "Firehose_20150804.PutRecordBatch",
            bodies,
            500,
            args.record_bytes,
        )
        .await?;
        result.report("Firehose in", cpu);
        let put = result.bytes;
        let deadline = Instant::now() + Duration::from_secs(600);
        let label = format!("/{name}\"}}");
        loop {
            let mut conn = client.connect().await?;
            let text = conn.metrics().await?;
            let delivered: u64 = text
                .lines()
                .find(|l| l.starts_with("sluice_firehose_delivered_bytes_total{") && l.contains(&label))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0, |v| v as u64);
            if delivered >= put {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{:<12} {:>8.1} MB/s from the first PutRecordBatch to the last byte in S3 ({} MB in {:.1} s)",
                    "Firehose S3",
                    put as f64 / secs / 1e6,
                    put / 1_000_000,
                    secs
                );
                return anyhow::Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {delivered} of {put} bytes were delivered after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    .await;
    let mut conn = client.connect().await?;
    let deleted = conn
        .call(
            "Firehose_20150804.DeleteDeliveryStream",
            Bytes::from(json!({ "DeliveryStreamName": name }).to_string()),
        )
        .await;
    outcome?;
    deleted.map(|_| ())
}

/// One SQS round on every connection until the phase's time is up: SendMessageBatch
/// of ten, ReceiveMessage of up to ten, DeleteMessageBatch of what came. Requests and
/// latencies are rounds; records are messages deleted (each sent, received and deleted,
/// durably, end to end).
async fn sqs(client: &Client, args: &BenchArgs) -> anyhow::Result<PhaseResult> {
    let name = format!("bench-sqs-{}", std::process::id());
    let mut control = client.connect().await?;
    let made = control
        .call(
            "AmazonSQS.CreateQueue",
            Bytes::from(json!({ "QueueName": name }).to_string()),
        )
        .await?;
    let url = made["QueueUrl"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("CreateQueue answered no QueueUrl"))?
        .to_string();
    let body = "x".repeat(args.record_bytes);
    let send = Bytes::from(
        json!({
            "QueueUrl": url,
            "Entries": (0..10).map(|i| json!({"Id": i.to_string(), "MessageBody": body})).collect::<Vec<_>>(),
        })
        .to_string(),
    );
    let receive = Bytes::from(
        json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 60}).to_string(),
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let client = client.clone();
        let (send, receive, url) = (send.clone(), receive.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await?;
            let (mut rounds, mut deleted, mut errors) = (0u64, 0u64, 0u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let round = async {
                    conn.call("AmazonSQS.SendMessageBatch", send.clone()).await?;
                    let got = conn.call("AmazonSQS.ReceiveMessage", receive.clone()).await?;
                    let handles: Vec<Value> = got["Messages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, m)| json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
                        .collect();
                    let n = handles.len() as u64;
                    if n > 0 {
                        conn.call(
                            "AmazonSQS.DeleteMessageBatch",
                            Bytes::from(json!({"QueueUrl": url, "Entries": handles}).to_string()),
                        )
                        .await?;
                    }
                    anyhow::Ok(n)
                }
                .await;
                match round {
                    Ok(n) => {
                        rounds += 1;
                        deleted += n;
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("sluice bench: an SQS round failed: {e:#}");
                        }
                        errors += 1;
                        conn = client.connect().await?;
                    }
                }
            }
            anyhow::Ok((rounds, deleted, errors, latencies))
        }));
    }
    let mut result = PhaseResult::empty();
    for task in tasks {
        let (rounds, deleted, errors, latencies) = task.await??;
        result.requests += rounds;
        result.records += deleted;
        result.errors += errors;
        result.latencies_us.extend(latencies);
    }
    result.elapsed = started.elapsed();
    result.bytes = result.records * args.record_bytes as u64;
    let mut conn = client.connect().await?;
    conn.call(
        "AmazonSQS.DeleteQueue",
        Bytes::from(json!({ "QueueUrl": url }).to_string()),
    )
    .await?;
    Ok(result)
}

impl Connection {
    /// The server's Prometheus text (signed for the service `sluice`).
    async fn metrics(&mut self) -> anyhow::Result<String> {
        let (amz_date, authorization) = self.signer.sign_request(
            "GET",
            "/metrics",
            "",
            "sluice",
            &[],
            b"",
            protocol::clock::now_utc(&protocol::clock::SystemClock),
        );
        let request = Request::get("/metrics")
            .header("host", &self.signer.host)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .body(Full::new(Bytes::new()))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("/metrics answered {status}");
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
