//! The deliverers. A supervisor looks for delivery streams every second and starts a
//! worker for each one whose lease this process takes; the worker reads records from
//! the positions the catalog keeps (a DirectPut buffer, or a source stream's shards,
//! a child shard only once its parents were delivered to their ends), buffers them by
//! the destination's size and interval, and delivers a buffer in two steps: the
//! buffer is recorded (`begin_delivery`: its name and where it ends per shard), the
//! destination takes it, and only then do the positions move (`finish_delivery`).
//! A worker that finds a recorded buffer (its process died mid-way) delivers exactly
//! those records again under the same name. Delivery is at least once; a restart
//! repeats at most the one buffer that was in flight, and as the same object.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;

use catalog::firehose::{BufferRange, DeliveryStream};
use catalog::streams::Stream;
use protocol::arn::StreamArn;

use crate::FirehoseService;
use crate::config::{Destination, Stored};
use crate::http::HttpDestination;
use crate::shapes::S3Destination;

/// How often the supervisor looks for delivery streams to deliver.
pub const SUPERVISOR_INTERVAL: Duration = Duration::from_secs(1);
/// A worker's lease; it renews it every pass, well within.
pub const LEASE_MS: i64 = 30_000;
/// How long an idle worker waits before it looks for records again.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// A `_bulk` answer is read up to this size (a 10,000-item answer is about 1 MB).
const BULK_ANSWER_BYTES_MAX: usize = 32 << 20;
/// Workers one process runs at most.
pub const WORKERS_MAX: usize = 512;
/// Records one shard read takes at most.
const READ_RECORDS_MAX: usize = 10_000;
/// Waits between failed deliveries: from the first to the last, doubling.
const RETRY_WAIT_FIRST: Duration = Duration::from_millis(500);
const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

/// The running supervisor and its workers; `stop` ends them.
pub struct Deliverers {
    supervisor: tokio::task::JoinHandle<()>,
    workers: Arc<std::sync::Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>>,
    owner: String,
    service: Arc<FirehoseService>,
}

impl Deliverers {
    pub fn start(service: Arc<FirehoseService>) -> Deliverers {
        let owner = format!("deliverer-{}", uuid::Uuid::new_v4());
        let workers: Arc<std::sync::Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>> =
            Arc::default();
        let supervisor = tokio::spawn(supervise(service.clone(), owner.clone(), workers.clone()));
        Deliverers {
            supervisor,
            workers,
            owner,
            service,
        }
    }

    /// Stops every worker (a buffer in flight stays recorded for the next process)
    /// and gives the leases up so another process takes over at once.
    pub async fn stop(self) {
        self.supervisor.abort();
        let _ = self.supervisor.await;
        let workers: Vec<(i64, tokio::task::JoinHandle<()>)> =
            self.workers.lock().expect("not poisoned").drain().collect();
        for (id, task) in workers {
            task.abort();
            let _ = task.await;
            let _ = self.service.catalog.release_delivery(id, &self.owner).await;
        }
    }
}

async fn supervise(
    service: Arc<FirehoseService>,
    owner: String,
    workers: Arc<std::sync::Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>>,
) {
    let mut tick = tokio::time::interval(SUPERVISOR_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        workers
            .lock()
            .expect("not poisoned")
            .retain(|_, task| !task.is_finished());
        let ids = match service.catalog.delivery_stream_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "listing delivery streams failed");
                continue;
            }
        };
        for id in ids {
            if workers.lock().expect("not poisoned").len() >= WORKERS_MAX {
                break;
            }
            if workers.lock().expect("not poisoned").contains_key(&id) {
                continue;
            }
            let now = service.clock.now_ms();
            match service
                .catalog
                .claim_delivery(id, &owner, now, LEASE_MS)
                .await
            {
                Ok(true) => {
                    let task = tokio::spawn(work(service.clone(), owner.clone(), id));
                    workers.lock().expect("not poisoned").insert(id, task);
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, id, "claiming a delivery stream failed"),
            }
        }
    }
}

/// Records read and not yet delivered.
#[derive(Default)]
struct Buffer {
    records: Vec<Bytes>,
    /// Each record's place in the log: (shard, counter).
    /// Each record's place in the log: (shard, counter, user record within a KPL
    /// aggregate).
    places: Vec<(u64, u64, u32)>,
    /// Whether KPL aggregates are split into their user records (a Kinesis source).
    split_aggregates: bool,
    bytes: usize,
    oldest_ms: Option<i64>,
    /// Per shard: where its records in the buffer start and end.
    ranges: BTreeMap<u64, (u64, u64)>,
}

impl Buffer {
    fn clear(&mut self) {
        let split_aggregates = self.split_aggregates;
        *self = Buffer {
            split_aggregates,
            ..Buffer::default()
        };
    }

    /// Takes one record read from the log: a KPL aggregate from a Kinesis source is
    /// split into its user records, as Firehose delivers them.
    fn push(&mut self, shard: u64, counter: u64, arrival_ms: i64, data: Bytes) {
        self.oldest_ms = Some(self.oldest_ms.map_or(arrival_ms, |t| t.min(arrival_ms)));
        if self.split_aggregates
            && let Some(users) = protocol::kpl::deaggregate(&data)
        {
            for (sub, user) in users.into_iter().enumerate() {
                self.bytes += user.data.len();
                self.places.push((shard, counter, sub as u32));
                self.records.push(Bytes::from(user.data));
            }
            return;
        }
        self.bytes += data.len();
        self.places.push((shard, counter, 0));
        self.records.push(data);
    }

    fn ranges(&self) -> Vec<BufferRange> {
        self.ranges
            .iter()
            .filter(|(_, (from, until))| until > from)
            .map(|(&shard_ordinal, &(from, until))| BufferRange {
                shard_ordinal,
                from,
                until,
            })
            .collect()
    }
}

/// Why a delivery did not happen (retried).
type Failed = String;

struct Worker {
    service: Arc<FirehoseService>,
    owner: String,
    id: i64,
    version: i64,
    /// When this worker last renewed its lease (a write; done every third of it).
    renewed_ms: i64,
    buckets: HashMap<String, crate::s3::Bucket>,
    http: Option<reqwest::Client>,
}

async fn work(service: Arc<FirehoseService>, owner: String, id: i64) {
    let mut worker = Worker {
        service,
        owner,
        id,
        version: -1,
        renewed_ms: i64::MIN / 2,
        buckets: HashMap::new(),
        http: None,
    };
    let mut buffer = Buffer::default();
    let mut retry_wait = RETRY_WAIT_FIRST;
    loop {
        match worker.pass(&mut buffer).await {
            Ok(Pass::Idle) => {
                retry_wait = RETRY_WAIT_FIRST;
                tokio::time::sleep(IDLE_WAIT).await;
            }
            Ok(Pass::Delivered) => retry_wait = RETRY_WAIT_FIRST,
            Ok(Pass::Done) => return,
            Err(why) => {
                tracing::warn!(id, error = %why, "a delivery failed; it will be retried");
                buffer.clear();
                tokio::time::sleep(retry_wait).await;
                retry_wait = (retry_wait * 2).min(RETRY_WAIT_MAX);
            }
        }
    }
}

enum Pass {
    Idle,
    Delivered,
    /// The delivery stream is gone, or another process delivers it now.
    Done,
}

impl Worker {
    async fn pass(&mut self, buffer: &mut Buffer) -> Result<Pass, Failed> {
        let svc = self.service.clone();
        let now = svc.clock.now_ms();
        // INVARIANT: a buffer is recorded and finished only under this process's lease
        // (`begin_delivery`/`finish_delivery` check it), so renewing it less often
        // than every pass risks a wasted read, never a double delivery.
        if now - self.renewed_ms >= LEASE_MS / 3 {
            if !svc
                .catalog
                .claim_delivery(self.id, &self.owner, now, LEASE_MS)
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(Pass::Done);
            }
            self.renewed_ms = now;
        }
        let Some(ds) = svc
            .catalog
            .delivery_stream_by_id(self.id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Pass::Done);
        };
        let stored = Stored::parse(&ds.config).map_err(|e| e.message)?;
        buffer.split_aggregates = stored.kinesis_source.is_some();
        if ds.version_id != self.version {
            // A new destination: what was buffered is read again from the positions.
            buffer.clear();
            self.buckets.clear();
            self.version = ds.version_id;
        }
        let Some(stream) = self.source_stream(&ds, &stored).await? else {
            return Ok(Pass::Idle);
        };
        if let Some(object) = ds.pending_object.clone() {
            buffer.clear();
            self.refill_pending(&ds, &stream, buffer).await?;
            self.deliver(&ds, &stored, &object, buffer).await?;
            self.finish(&ds, buffer).await?;
            return Ok(Pass::Delivered);
        }
        let hints = stored.destination.buffering();
        self.fill(&ds, &stream, buffer, hints.size_bytes()).await?;
        let age_ms = buffer.oldest_ms.map_or(0, |t| now - t);
        let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
        metrics::gauge!("sluice_firehose_data_freshness_seconds", &labels)
            .set(age_ms as f64 / 1000.0);
        let due = buffer.bytes >= hints.size_bytes()
            || (!buffer.records.is_empty() && age_ms >= hints.interval_ms());
        if !due {
            return Ok(Pass::Idle);
        }
        let object = self.name_for(&ds, &stored, buffer);
        let ranges = buffer.ranges();
        if !svc
            .catalog
            .begin_delivery(self.id, &self.owner, &object, &ranges)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Pass::Done);
        }
        self.deliver(&ds, &stored, &object, buffer).await?;
        self.finish(&ds, buffer).await?;
        Ok(Pass::Delivered)
    }

    async fn finish(&self, ds: &DeliveryStream, buffer: &mut Buffer) -> Result<(), Failed> {
        let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
        metrics::counter!("sluice_firehose_delivered_records_total", &labels)
            .increment(buffer.records.len() as u64);
        metrics::counter!("sluice_firehose_delivered_bytes_total", &labels)
            .increment(buffer.bytes as u64);
        if let Some(oldest) = buffer.oldest_ms {
            let latency = (self.service.clock.now_ms() - oldest).max(0) as f64 / 1000.0;
            metrics::histogram!("sluice_firehose_delivery_latency_seconds", &labels)
                .record(latency);
        }
        buffer.clear();
        self.service
            .catalog
            .finish_delivery(self.id, &self.owner)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The stream the delivery stream reads, as it is now; `None` when it is gone.
    async fn source_stream(
        &self,
        ds: &DeliveryStream,
        stored: &Stored,
    ) -> Result<Option<Stream>, Failed> {
        let name = match &stored.kinesis_source {
            Some(source) => {
                StreamArn::parse(&source.stream_arn)
                    .map_err(|e| e.message)?
                    .stream_name
            }
            None => catalog::firehose::buffer_stream_name(&ds.name),
        };
        match self
            .service
            .catalog
            .load_stream(&ds.account_id, &name)
            .await
        {
            Ok(stream) if stream.id == ds.stream_id => Ok(Some(stream)),
            Ok(_) | Err(catalog::CatalogError::Refused(_)) => {
                tracing::warn!(delivery_stream = %ds.name, stream = %name, "the source stream is gone");
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Reads what comes after the buffer, shard by shard, up to `size` bytes.
    async fn fill(
        &self,
        ds: &DeliveryStream,
        stream: &Stream,
        buffer: &mut Buffer,
        size: usize,
    ) -> Result<(), Failed> {
        let svc = &self.service;
        let positions: HashMap<u64, u64> = svc
            .catalog
            .delivery_positions(self.id)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|p| (p.shard_ordinal, p.next_counter))
            .collect();
        let position = |ordinal: u64| positions.get(&ordinal).copied().unwrap_or(0);
        let retained_since = svc.clock.now_ms() - stream.retention_hours * 3_600_000;
        for shard in &stream.shards {
            if buffer.bytes >= size {
                break;
            }
            // A shard is read to its end once the buffer (or a delivery) holds its
            // last record; its children are read after it, into the same buffer.
            let read_to_end = |ordinal: u64| {
                let reached = buffer
                    .ranges
                    .get(&ordinal)
                    .map_or(position(ordinal), |r| r.1.max(position(ordinal)));
                stream
                    .shards
                    .iter()
                    .find(|s| s.ordinal == ordinal)
                    .is_none_or(|s| !s.is_open() && reached >= s.next_sequence)
            };
            let parents = [shard.parent_ordinal, shard.adjacent_parent_ordinal];
            if read_to_end(shard.ordinal) || !parents.into_iter().flatten().all(read_to_end) {
                continue;
            }
            let start = position(shard.ordinal);
            let from = buffer.ranges.get(&shard.ordinal).map_or(start, |r| r.1);
            if from >= shard.next_sequence {
                continue;
            }
            let read = storage::reader::read_shard(
                &svc.catalog,
                &svc.store,
                &svc.keyring,
                &ds.account_id,
                stream.id,
                shard.ordinal,
                from,
                READ_RECORDS_MAX,
                size - buffer.bytes,
                retained_since,
            )
            .await
            .map_err(|e| e.to_string())?;
            for r in read.records {
                buffer.push(shard.ordinal, r.counter, r.record.arrival_ms, r.record.data);
            }
            buffer
                .ranges
                .entry(shard.ordinal)
                .or_insert((start, start))
                .1 = read.next_counter.max(from);
        }
        Ok(())
    }

    /// The records of the recorded buffer, read again.
    async fn refill_pending(
        &self,
        ds: &DeliveryStream,
        stream: &Stream,
        buffer: &mut Buffer,
    ) -> Result<(), Failed> {
        let svc = &self.service;
        let retained_since = svc.clock.now_ms() - stream.retention_hours * 3_600_000;
        for p in svc
            .catalog
            .delivery_positions(self.id)
            .await
            .map_err(|e| e.to_string())?
        {
            let Some(until) = p.pending_until else {
                continue;
            };
            let mut from = p.next_counter;
            while from < until {
                let read = storage::reader::read_shard(
                    &svc.catalog,
                    &svc.store,
                    &svc.keyring,
                    &ds.account_id,
                    stream.id,
                    p.shard_ordinal,
                    from,
                    READ_RECORDS_MAX,
                    usize::MAX / 2,
                    retained_since,
                )
                .await
                .map_err(|e| e.to_string())?;
                for r in read.records.into_iter().filter(|r| r.counter < until) {
                    buffer.push(
                        p.shard_ordinal,
                        r.counter,
                        r.record.arrival_ms,
                        r.record.data,
                    );
                }
                if read.next_counter <= from || read.at_tip {
                    break;
                }
                from = read.next_counter;
            }
            buffer
                .ranges
                .insert(p.shard_ordinal, (p.next_counter, until));
        }
        Ok(())
    }

    /// The name a buffer is delivered under: the S3 object key, or the HTTP request
    /// id.
    fn name_for(&self, ds: &DeliveryStream, stored: &Stored, buffer: &Buffer) -> String {
        let oldest = buffer
            .oldest_ms
            .unwrap_or_else(|| self.service.clock.now_ms());
        match &stored.destination {
            // Partitioned: the suffix every partition's object shares.
            Destination::S3 { s3, .. } if s3.partitioned() => {
                crate::prefix::suffix(&ds.name, ds.version_id, oldest, &s3.extension())
            }
            Destination::S3 { s3, .. } => match &stored.channel {
                Some(channel) => channel.object_key(oldest, &s3.extension()),
                None => object_key(ds, s3, oldest),
            },
            Destination::Http(_) => uuid::Uuid::new_v4().to_string(),
            // The staged object's key.
            Destination::Redshift(r) => object_key(ds, &r.s3, oldest),
            // The request id, and the HEC channel.
            Destination::Search { .. } | Destination::Splunk(_) => uuid::Uuid::new_v4().to_string(),
        }
    }

    async fn bucket(
        &mut self,
        ds: &DeliveryStream,
        s3: &S3Destination,
    ) -> Result<&crate::s3::Bucket, Failed> {
        let key = format!("{}\0{}", s3.role_arn, s3.bucket_arn);
        if !self.buckets.contains_key(&key) {
            let svc = &self.service;
            let bucket = crate::s3::open(&svc.catalog, &svc.root_key, &ds.account_id, s3).await?;
            self.buckets.insert(key.clone(), bucket);
        }
        Ok(self.buckets.get(&key).expect("just made"))
    }

    async fn deliver(
        &mut self,
        ds: &DeliveryStream,
        stored: &Stored,
        name: &str,
        buffer: &Buffer,
    ) -> Result<(), Failed> {
        let delimiter = stored.destination.processing().and_then(|p| p.delimiter());
        match &stored.destination {
            Destination::S3 { s3, .. } if s3.partitioned() => {
                self.deliver_partitioned(ds, s3, name, buffer, delimiter)
                    .await
            }
            Destination::S3 { s3, .. } => {
                let oldest = buffer.oldest_ms.unwrap_or_default();
                let (body, failed) = self
                    .encode_s3(ds, s3, &buffer.records, delimiter.as_deref())
                    .await?;
                if let Some(body) = body {
                    self.bucket(ds, s3).await?.put(name, body).await?;
                }
                self.put_conversion_failures(ds, s3, &buffer.records, &failed, oldest)
                    .await?;
                if s3.s3_backup_mode.as_deref() == Some("Enabled")
                    && let Some(backup) = &s3.s3_backup_configuration
                {
                    let key = object_key(ds, backup, buffer.oldest_ms.unwrap_or_default());
                    let body = crate::encode::compress(
                        crate::encode::join(&buffer.records, None),
                        backup.compression(),
                    );
                    self.bucket(ds, backup).await?.put(&key, body).await?;
                }
                Ok(())
            }
            Destination::Http(h) => self.deliver_http(ds, h, name, buffer, delimiter).await,
            Destination::Redshift(r) => self.deliver_redshift(ds, r, name, buffer, delimiter).await,
            Destination::Search { search, .. } => self.deliver_search(ds, search, buffer).await,
            Destination::Splunk(s) => self.deliver_splunk(ds, s, name, buffer, delimiter).await,
        }
    }

    /// One HEC request (and its acknowledgment) per attempt, retried with backoff for
    /// the retry duration; then the events go to the error prefix as `splunk-failed`.
    async fn deliver_splunk(
        &mut self,
        ds: &DeliveryStream,
        s: &crate::splunk::SplunkDestination,
        channel: &str,
        buffer: &Buffer,
        delimiter: Option<Vec<u8>>,
    ) -> Result<(), Failed> {
        let svc = self.service.clone();
        let client = self.http.get_or_insert_with(crate::http::client).clone();
        let token = open_sealed(&svc, ds, s.token_sealed.as_deref(), "the HEC token")?
            .ok_or("the HEC token is missing")?;
        let records = delimited(&buffer.records, delimiter.as_deref());
        let oldest = buffer.oldest_ms.unwrap_or_else(|| svc.clock.now_ms());
        let (attempts, failure) = with_retries(&svc, ds, s.retry_ms(), || {
            crate::splunk::send(&client, s, &token, channel, &records, oldest)
        })
        .await;
        if let Some(f) = &failure {
            let lines = error_lines(
                &buffer.records,
                f,
                attempts,
                svc.clock.now_ms(),
                &s.endpoint,
            );
            let key = error_key(ds, &s.s3, oldest, "splunk-failed");
            let body = crate::encode::compress(lines, s.s3.compression());
            self.bucket(ds, &s.s3).await?.put(&key, body).await?;
        }
        if s.s3_backup_mode.as_deref() == Some("AllEvents") {
            let key = object_key(ds, &s.s3, oldest);
            let body =
                crate::encode::compress(crate::encode::lines(&buffer.records), s.s3.compression());
            self.bucket(ds, &s.s3).await?.put(&key, body).await?;
        }
        Ok(())
    }

    /// Dynamic partitioning: one object per partition, each named by its evaluated
    /// prefix and the buffer's suffix `name` (so a repeated buffer rewrites the same
    /// objects); records the query fails on go to the error prefix as
    /// `processing-failed`.
    async fn deliver_partitioned(
        &mut self,
        ds: &DeliveryStream,
        s3: &S3Destination,
        name: &str,
        buffer: &Buffer,
        delimiter: Option<Vec<u8>>,
    ) -> Result<(), Failed> {
        let query = s3
            .processing_configuration
            .as_ref()
            .and_then(|p| p.extraction_query())
            .ok_or("dynamic partitioning without a MetadataExtraction query")?;
        let (groups, failed) = partition_records(query, &buffer.records)?;
        let oldest = buffer
            .oldest_ms
            .unwrap_or_else(|| self.service.clock.now_ms());
        let mut unconverted = Vec::new();
        for (partition, members) in &groups {
            let records: Vec<Bytes> = members.iter().map(|i| buffer.records[*i].clone()).collect();
            let (body, failed) = self
                .encode_s3(ds, s3, &records, delimiter.as_deref())
                .await?;
            unconverted.extend(failed.into_iter().map(|(i, e)| (members[i], e)));
            let Some(body) = body else {
                continue;
            };
            let key = format!(
                "{}{name}",
                crate::prefix::evaluate_partitioned(
                    s3.prefix.as_deref(),
                    oldest,
                    None,
                    Some(partition)
                )
            );
            self.bucket(ds, s3).await?.put(&key, body).await?;
        }
        unconverted.sort_by_key(|(i, _)| *i);
        self.put_conversion_failures(ds, s3, &buffer.records, &unconverted, oldest)
            .await?;
        if !failed.is_empty() {
            let records: Vec<Bytes> = failed
                .iter()
                .map(|(i, _)| buffer.records[*i].clone())
                .collect();
            let failure = crate::http::Failure {
                code: "DynamicPartitioning.MetadataExtractionFailed".into(),
                message: failed[0].1.clone(),
            };
            let lines = error_lines(&records, &failure, 1, self.service.clock.now_ms(), "");
            let key = error_key(ds, s3, oldest, "processing-failed");
            let body = crate::encode::compress(lines, s3.compression());
            self.bucket(ds, s3).await?.put(&key, body).await?;
        }
        Ok(())
    }

    /// Records as an S3 object's body: joined and compressed, or with record format
    /// conversion one Parquet object (`None` when no record converts), with the
    /// records that did not convert and why. A table no longer described fails every
    /// record; a catalog that does not answer fails the delivery, to be tried again.
    async fn encode_s3(
        &self,
        ds: &DeliveryStream,
        s3: &S3Destination,
        records: &[Bytes],
        delimiter: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, crate::convert::Unconverted), Failed> {
        let conversion =
            crate::convert::Conversion::parse(&s3.data_format_conversion_configuration)
                .map_err(|e| e.message)?;
        let Some(conversion) = conversion else {
            let body =
                crate::encode::compress(crate::encode::join(records, delimiter), s3.compression());
            return Ok((Some(body), Vec::new()));
        };
        let (database, table) = conversion.table();
        match crate::tables::load(&self.service.catalog, &ds.account_id, database, table)
            .await
            .map_err(|e| e.message)?
        {
            Some((_, columns)) => {
                let started = std::time::Instant::now();
                let converted = conversion.convert(&columns, records)?;
                let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
                metrics::histogram!("sluice_firehose_conversion_seconds", &labels)
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("sluice_firehose_conversion_failed_records_total", &labels)
                    .increment(converted.1.len() as u64);
                Ok(converted)
            }
            None => {
                let why = format!("table {database}.{table} is not described");
                Ok((None, (0..records.len()).map(|i| (i, why.clone())).collect()))
            }
        }
    }

    /// Records conversion refused, under the error prefix as `format-conversion-failed`
    /// in the shape Firehose documents.
    async fn put_conversion_failures(
        &mut self,
        ds: &DeliveryStream,
        s3: &S3Destination,
        records: &[Bytes],
        failed: &[(usize, String)],
        oldest_ms: i64,
    ) -> Result<(), Failed> {
        if failed.is_empty() {
            return Ok(());
        }
        let conversion =
            crate::convert::Conversion::parse(&s3.data_format_conversion_configuration)
                .map_err(|e| e.message)?;
        let schema = conversion.map(|c| c.schema).unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD;
        let now = self.service.clock.now_ms();
        let mut out = Vec::new();
        for (i, why) in failed {
            let line = serde_json::json!({
                "attemptsMade": 1,
                "arrivalTimestamp": oldest_ms,
                "ErrorCode": "DataFormatConversion.MalformedData",
                "ErrorMessage": why,
                "attemptEndingTimestamp": now,
                "rawData": b64.encode(&records[*i]),
                "dataCatalogTable": {
                    "catalogId": schema.catalog_id.clone().unwrap_or_else(|| ds.account_id.clone()),
                    "databaseName": schema.database_name,
                    "tableName": schema.table_name,
                    "region": schema.region.clone().unwrap_or_else(|| self.service.region.clone()),
                    "versionId": schema.version_id.clone().unwrap_or_else(|| "LATEST".into()),
                },
            });
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        let key = error_key(ds, s3, oldest_ms, "format-conversion-failed");
        self.bucket(ds, s3).await?.put(&key, out).await
    }

    /// One `_bulk` request per round: items the cluster refused for now (429, 5xx) go
    /// again until the retry duration runs out; what it never takes goes to the error
    /// prefix as `elasticsearch-failed`.
    async fn deliver_search(
        &mut self,
        ds: &DeliveryStream,
        search: &crate::search::SearchDestination,
        buffer: &Buffer,
    ) -> Result<(), Failed> {
        let svc = self.service.clone();
        let connection = crate::shapes::role_connection(&search.role_arn).map_err(|e| e.message)?;
        let (settings, secrets) =
            crate::connections::open(&svc.catalog, &svc.root_key, &ds.account_id, connection)
                .await
                .map_err(|e| e.message)?
                .ok_or_else(|| format!("no connection {connection} is registered"))?;
        let client = self.http.get_or_insert_with(crate::http::client).clone();
        let endpoint = search.cluster_endpoint.clone().unwrap_or_default();
        let url = format!("{}/_bulk", endpoint.trim_end_matches('/'));
        let oldest = buffer.oldest_ms.unwrap_or_else(|| svc.clock.now_ms());
        let index = search.index(oldest);
        let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
        let mut pending: Vec<(usize, String)> = buffer
            .places
            .iter()
            .enumerate()
            .map(|(i, (shard, counter, sub))| (i, format!("{:x}-{shard}-{counter}-{sub}", ds.id)))
            .collect();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let deadline = svc.clock.now_ms() + search.retry_ms();
        let mut wait = Duration::from_millis(500);
        let mut attempts = 0u32;
        while !pending.is_empty() {
            attempts += 1;
            let documents: Vec<(&[u8], String)> = pending
                .iter()
                .map(|(i, id)| (buffer.records[*i].as_ref(), id.clone()))
                .collect();
            let body = crate::search::bulk_body(search, &index, &documents);
            let mut request = client
                .post(&url)
                .header("Content-Type", "application/x-ndjson")
                .body(body);
            if let Some(user) = &settings.http_username {
                request = request.basic_auth(user, secrets.http_password.as_deref());
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let bytes = crate::http::read_limited(response, BULK_ANSWER_BYTES_MAX).await;
                    let answer: serde_json::Value =
                        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                    crate::search::bulk_outcomes(&answer, pending.len())
                }
                Ok(response) => Err(format!("the cluster answered {}", response.status())),
                Err(e) => Err(format!("the _bulk request failed: {e}")),
            };
            let mut again = Vec::new();
            match outcome {
                Ok(outcomes) => {
                    for ((i, id), outcome) in pending.into_iter().zip(outcomes) {
                        match outcome {
                            None => {}
                            Some((true, _)) => again.push((i, id)),
                            Some((false, why)) => refused.push((i, why)),
                        }
                    }
                }
                Err(why) => {
                    tracing::warn!(delivery_stream = %ds.name, error = %why, "a _bulk request failed");
                    again = pending;
                }
            }
            pending = again;
            if pending.is_empty() {
                break;
            }
            metrics::counter!("sluice_firehose_delivery_failures_total", &labels).increment(1);
            if svc.clock.now_ms() + wait.as_millis() as i64 > deadline {
                refused.extend(
                    pending
                        .drain(..)
                        .map(|(i, _)| (i, "the retry duration ran out".to_string())),
                );
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_WAIT_MAX);
        }
        let all = search.s3_backup_mode.as_deref() == Some("AllDocuments");
        if !refused.is_empty() {
            let records: Vec<Bytes> = refused
                .iter()
                .map(|(i, _)| buffer.records[*i].clone())
                .collect();
            let failure = crate::http::Failure {
                code: "OS.DocumentRefused".into(),
                message: refused[0].1.clone(),
            };
            let lines = error_lines(&records, &failure, attempts, svc.clock.now_ms(), &endpoint);
            let key = error_key(ds, &search.s3, oldest, "elasticsearch-failed");
            let body = crate::encode::compress(lines, search.s3.compression());
            self.bucket(ds, &search.s3).await?.put(&key, body).await?;
        }
        if all {
            let key = object_key(ds, &search.s3, oldest);
            let body = crate::encode::compress(
                crate::encode::lines(&buffer.records),
                search.s3.compression(),
            );
            self.bucket(ds, &search.s3).await?.put(&key, body).await?;
        }
        Ok(())
    }

    /// Stages the buffer under the S3 configuration, then loads it into the table,
    /// retried for the destination's retry duration; a load that never succeeds leaves
    /// a manifest of the staged object under `errors/manifests/` (as Firehose does).
    async fn deliver_redshift(
        &mut self,
        ds: &DeliveryStream,
        r: &crate::warehouse::RedshiftDestination,
        key: &str,
        buffer: &Buffer,
        delimiter: Option<Vec<u8>>,
    ) -> Result<(), Failed> {
        let svc = self.service.clone();
        // Rows are lines: a record that does not end one gets a newline (or the
        // delimiter AppendDelimiterToRecord names).
        let data = match &delimiter {
            Some(d) => crate::encode::join(&buffer.records, Some(d)),
            None => crate::encode::lines(&buffer.records),
        };
        let staged = crate::encode::compress(data.clone(), r.s3.compression());
        self.bucket(ds, &r.s3).await?.put(key, staged).await?;
        let password = open_sealed(
            &svc,
            ds,
            r.password_sealed.as_deref(),
            "the warehouse password",
        )?;
        let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
        let (_, failure) = with_retries(&svc, ds, r.retry_ms(), || async {
            let rows = crate::warehouse::load(r, password.as_deref(), &data)
                .await
                .map_err(|message| crate::http::Failure {
                    code: "Redshift.LoadFailed".into(),
                    message,
                })?;
            metrics::counter!("sluice_firehose_loaded_rows_total", &labels).increment(rows);
            Ok(())
        })
        .await;
        if let Some(crate::http::Failure { message: why, .. }) = failure {
            let bucket = crate::shapes::bucket_name(&r.s3.bucket_arn).map_err(|e| e.message)?;
            let manifest = serde_json::json!({
                "entries": [{"url": format!("s3://{bucket}/{key}"), "mandatory": true}],
                "error": why,
            });
            let manifest_key = format!(
                "errors/manifests/{}",
                crate::prefix::suffix(
                    &ds.name,
                    ds.version_id,
                    buffer.oldest_ms.unwrap_or_default(),
                    ""
                )
            );
            self.bucket(ds, &r.s3)
                .await?
                .put(&manifest_key, manifest.to_string().into_bytes())
                .await?;
        }
        if r.s3_backup_mode.as_deref() == Some("Enabled")
            && let Some(backup) = &r.s3_backup_configuration
        {
            let key = object_key(ds, backup, buffer.oldest_ms.unwrap_or_default());
            let body = crate::encode::compress(
                crate::encode::join(&buffer.records, None),
                backup.compression(),
            );
            self.bucket(ds, backup).await?.put(&key, body).await?;
        }
        Ok(())
    }

    /// Posts the buffer until the endpoint takes it or the retry duration runs out;
    /// then the records go to the S3 configuration's error prefix.
    async fn deliver_http(
        &mut self,
        ds: &DeliveryStream,
        h: &HttpDestination,
        request_id: &str,
        buffer: &Buffer,
        delimiter: Option<Vec<u8>>,
    ) -> Result<(), Failed> {
        let svc = self.service.clone();
        let client = self.http.get_or_insert_with(crate::http::client).clone();
        let access_key = open_sealed(
            &svc,
            ds,
            h.endpoint.access_key_sealed.as_deref(),
            "the endpoint's access key",
        )?;
        let records = delimited(&buffer.records, delimiter.as_deref());
        let source_arn = crate::api::delivery_stream_arn(&svc.region, &ds.account_id, &ds.name);
        let started = svc.clock.now_ms();
        let (attempts, failure) = with_retries(&svc, ds, h.retry_ms(), || {
            crate::http::post(
                &client,
                h,
                access_key.as_deref(),
                &source_arn,
                request_id,
                svc.clock.now_ms(),
                &records,
            )
        })
        .await;
        let all_data = h.s3_backup_mode.as_deref() == Some("AllData");
        let oldest = buffer.oldest_ms.unwrap_or(started);
        if let Some(f) = &failure {
            let lines = error_lines(
                &buffer.records,
                f,
                attempts,
                svc.clock.now_ms(),
                &h.endpoint.url,
            );
            let key = error_key(ds, &h.s3, oldest, "http-endpoint-failed");
            let body = crate::encode::compress(lines, h.s3.compression());
            self.bucket(ds, &h.s3).await?.put(&key, body).await?;
        }
        if all_data {
            let key = object_key(ds, &h.s3, oldest);
            let body = crate::encode::compress(
                crate::encode::join(&buffer.records, delimiter.as_deref()),
                h.s3.compression(),
            );
            self.bucket(ds, &h.s3).await?.put(&key, body).await?;
        }
        Ok(())
    }
}

/// A secret the API sealed under the root key for the delivery stream's account
/// (`None` when none was given).
fn open_sealed(
    svc: &FirehoseService,
    ds: &DeliveryStream,
    sealed: Option<&str>,
    what: &str,
) -> Result<Option<String>, Failed> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|e| format!("{what} is not stored as base64: {e}"))?;
    let opened = svc
        .root_key
        .open(&sealed, &crate::api::access_key_aad(&ds.account_id))
        .map_err(|e| format!("{what} does not open: {e}"))?;
    Ok(Some(String::from_utf8_lossy(&opened).into_owned()))
}

/// Each record followed by the delimiter, when AppendDelimiterToRecord asks for one.
fn delimited(records: &[Bytes], delimiter: Option<&[u8]>) -> Vec<Bytes> {
    match delimiter {
        Some(d) => records
            .iter()
            .map(|r| Bytes::from([r.as_ref(), d].concat()))
            .collect(),
        None => records.to_vec(),
    }
}

/// Runs `attempt` until it succeeds or `retry_ms` from now would pass before the next
/// try (waits from 0.5 s, doubling to 30 s); each failure is counted and logged.
/// Returns the attempts made and the last failure, if it never succeeded.
async fn with_retries<F, Fut>(
    svc: &FirehoseService,
    ds: &DeliveryStream,
    retry_ms: i64,
    mut attempt: F,
) -> (u32, Option<crate::http::Failure>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::http::Failure>>,
{
    let labels = [("delivery_stream", format!("{}/{}", ds.account_id, ds.name))];
    let deadline = svc.clock.now_ms() + retry_ms;
    let mut wait = RETRY_WAIT_FIRST;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(()) => return (attempts, None),
            Err(f) => {
                metrics::counter!("sluice_firehose_delivery_failures_total", &labels).increment(1);
                tracing::warn!(delivery_stream = %ds.name, attempt = attempts, code = %f.code, error = %f.message, "a delivery attempt failed");
                if svc.clock.now_ms() + wait.as_millis() as i64 > deadline {
                    return (attempts, Some(f));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_WAIT_MAX);
            }
        }
    }
}

/// Groups a buffer's records by their partition (the query runs here, in one
/// synchronous call: jaq's filters must not live across an await); the records the
/// query fails on, with why.
#[allow(clippy::type_complexity)]
fn partition_records(
    query: &str,
    records: &[Bytes],
) -> Result<
    (
        BTreeMap<crate::partition::Partition, Vec<usize>>,
        Vec<(usize, String)>,
    ),
    Failed,
> {
    let query = crate::partition::Query::compile(query)?;
    let mut groups: BTreeMap<crate::partition::Partition, Vec<usize>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match query.partition(record) {
            Ok(p) => groups.entry(p).or_default().push(i),
            Err(why) => failed.push((i, why)),
        }
    }
    Ok((groups, failed))
}

/// The key of a buffer's object under an S3 destination.
fn object_key(ds: &DeliveryStream, s3: &S3Destination, oldest_ms: i64) -> String {
    let extension = s3.extension();
    format!(
        "{}{}",
        crate::prefix::evaluate(s3.prefix.as_deref(), oldest_ms, None),
        crate::prefix::suffix(&ds.name, ds.version_id, oldest_ms, &extension)
    )
}

/// The key of the records a destination would not take, under the error prefix.
fn error_key(ds: &DeliveryStream, s3: &S3Destination, oldest_ms: i64, kind: &str) -> String {
    format!(
        "{}{}",
        crate::prefix::evaluate(s3.error_output_prefix.as_deref(), oldest_ms, Some(kind)),
        crate::prefix::suffix(
            &ds.name,
            ds.version_id,
            oldest_ms,
            s3.compression().extension()
        )
    )
}

/// One JSON line per record that failed, as Firehose writes them under the error
/// prefix: the attempts, the error, and the raw data in base64.
fn error_lines(
    records: &[Bytes],
    failure: &crate::http::Failure,
    attempts: u32,
    now_ms: i64,
    url: &str,
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for r in records {
        let line = serde_json::json!({
            "attemptsMade": attempts,
            "arrivalTimestamp": now_ms,
            "errorCode": failure.code,
            "errorMessage": failure.message,
            "attemptEndingTimestamp": now_ms,
            "rawData": b64.encode(r),
            "EndpointUrl": url,
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
