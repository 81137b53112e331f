//! Group commit: the one writer of this process.
//!
//! Handlers hand their routed records to the writer task and wait. The writer takes
//! everything that queued up while the previous flush ran (up to a size bound), writes
//! one chunk per (stream, shard) into one durable append, then in one catalog
//! transaction assigns each shard its next sequence numbers and inserts one chunk row
//! per chunk. Only after that commit does any caller learn its sequence numbers.
//!
//! Every chunk is sealed under its stream's current data key (see `keyring`), bound to
//! its account, stream, shard, object key and offset. The writer learns the object key
//! and offset from the object store before it encodes (`ObjectStore::append_with`),
//! so encoding and sealing run on the blocking thread that appends.
//!
//! INVARIANT: a sequence number is returned only for a record whose chunk bytes are
//! synced and whose catalog row is committed. A crash before the commit leaves bytes no
//! row names, which no read ever sees.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use catalog::chunks::{Committed, NewChunk};
use envelope::DataKey;
use protocol::clock::SharedClock;
use protocol::{ApiError, ErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::chunk::{self, ChunkPlace, RecordIn};
use crate::keyring::Keyring;
use crate::objects::ObjectStore;

/// Bytes of record data waiting for or inside a flush, at most. Callers past it wait
/// up to `ADMISSION_WAIT`, then get `ServiceUnavailable`.
const PENDING_BYTES_MAX: usize = 256 * 1024 * 1024;
const ADMISSION_WAIT: Duration = Duration::from_secs(5);
/// Requests queued for the writer, at most.
const QUEUE_REQUESTS_MAX: usize = 16_384;
/// One flush takes at most this much data, or this many requests.
const FLUSH_BYTES_MAX: usize = 16 * 1024 * 1024;
const FLUSH_REQUESTS_MAX: usize = 4_096;

/// A record routed to its shard, waiting to be written.
#[derive(Debug)]
pub struct PendingRecord {
    pub shard_ordinal: u64,
    /// The key that routed it; a record whose shard closed before its commit is routed
    /// again by it.
    pub hash_key: protocol::hash::HashKey,
    pub partition_key: String,
    pub data: bytes::Bytes,
}

impl PendingRecord {
    fn cost(&self) -> usize {
        self.partition_key.len() + self.data.len() + 64
    }

    fn as_record_in(&self, arrival_ms: i64) -> RecordIn<'_> {
        RecordIn {
            arrival_ms,
            partition_key: &self.partition_key,
            data: &self.data,
        }
    }
}

/// Why a record was not written.
#[derive(Debug)]
pub enum AppendError {
    /// The caller's answer.
    Refused(ApiError),
    /// Its shard was closed by a reshard after the record was routed to it: nothing
    /// was acknowledged, and the record, handed back, belongs in one of the shard's
    /// children.
    ShardClosed(Box<PendingRecord>),
}

impl From<ApiError> for AppendError {
    fn from(error: ApiError) -> Self {
        AppendError::Refused(error)
    }
}

/// Where an acknowledged record went: its shard, its counter there and its arrival
/// time. The service that knows the shard writes the sequence number from it
/// (`catalog::streams::Shard::record_sequence_number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    shard_ordinal: u64,
    counter: u64,
    arrival_ms: i64,
}

impl Appended {
    pub fn shard_ordinal(self) -> u64 {
        self.shard_ordinal
    }

    pub fn counter(self) -> u64 {
        self.counter
    }

    pub fn arrival_ms(self) -> i64 {
        self.arrival_ms
    }
}

/// The outcome of one record: where it was written, or why it was not.
pub type RecordResult = Result<Appended, AppendError>;

/// What the writer decided for one record, before it answers (and hands a record
/// whose shard closed back to its caller).
enum Outcome {
    Written(Appended),
    Refused(ApiError),
    ShardClosed,
}

struct AppendRequest {
    stream_id: i64,
    stream_name: String,
    account_id: String,
    records: Vec<PendingRecord>,
    reply: oneshot::Sender<Vec<RecordResult>>,
    _permit: OwnedSemaphorePermit,
}

/// The handle handlers use; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<AppendRequest>,
    admission: Arc<Semaphore>,
}

/// Whether a failed flush failed for want of space (ENOSPC or a quota on the object
/// store's disk, or a full catalog), anywhere in its chain of causes.
fn storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        {
            return true;
        }
        if let Some(catalog) = e.downcast_ref::<catalog::CatalogError>()
            && catalog.is_storage_full()
        {
            return true;
        }
        cause = e.source();
    }
    false
}

impl Committer {
    /// Starts the writer task. It ends when every handle is dropped and the queue is
    /// drained; await the returned handle to know the last flush is done.
    pub fn spawn(
        catalog: Catalog,
        store: Arc<ObjectStore>,
        keyring: Arc<Keyring>,
        clock: SharedClock,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE_REQUESTS_MAX);
        let writer = Writer {
            catalog,
            store,
            keyring,
            clock,
            last_arrival_ms: 0,
        };
        let task = tokio::spawn(writer.run(rx));
        (
            Committer {
                queue,
                admission: Arc::new(Semaphore::new(PENDING_BYTES_MAX)),
            },
            task,
        )
    }

    /// Writes the records of one request durably; the results are in request order.
    pub async fn append(
        &self,
        stream_id: i64,
        stream_name: &str,
        account_id: &str,
        records: Vec<PendingRecord>,
    ) -> Result<Vec<RecordResult>, ApiError> {
        let cost: usize = records.iter().map(PendingRecord::cost).sum();
        let permits = u32::try_from(cost.min(PENDING_BYTES_MAX)).expect("bounded");
        let busy = || {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The server is busy; retry the request.",
            )
        };
        let permit = tokio::time::timeout(
            ADMISSION_WAIT,
            self.admission.clone().acquire_many_owned(permits),
        )
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream_id,
            stream_name: stream_name.to_string(),
            account_id: account_id.to_string(),
            records,
            reply,
            _permit: permit,
        };
        self.queue.send(request).await.map_err(|_| {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The server is shutting down.",
            )
        })?;
        // The writer always answers; a dropped sender means it died mid-flush.
        answer.await.map_err(|_| ApiError::internal())
    }
}

struct Writer {
    catalog: Catalog,
    store: Arc<ObjectStore>,
    keyring: Arc<Keyring>,
    /// Arrival times of records.
    clock: SharedClock,
    last_arrival_ms: i64,
}

/// Where one shard's chunk sits in the flush, which records it holds, and the key it
/// is sealed under.
struct ChunkPlan {
    stream_id: i64,
    shard_ordinal: u64,
    /// (request index, record index) in write order.
    members: Vec<(usize, usize)>,
    key: Arc<DataKey>,
    offset_in_flush: usize,
    len: usize,
    /// Whose records these are, and their PUT payload units, for the meter.
    account_id: String,
    stream_name: String,
    payload_units: u64,
    /// KiB its records bill on an ON_DEMAND stream (each rounded up to 1 KiB).
    ingress_kib: u64,
    /// KiB they bill as Firehose ingestion (each rounded up to 5 KB).
    firehose_kib: u64,
}

/// What became of each chunk of a flush, in plan order.
type Firsts = Vec<Committed>;
type FlushError = Box<dyn std::error::Error + Send + Sync>;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        while let Some(first) = rx.recv().await {
            let mut bytes: usize = first.records.iter().map(PendingRecord::cost).sum();
            let mut batch = vec![first];
            while bytes < FLUSH_BYTES_MAX && batch.len() < FLUSH_REQUESTS_MAX {
                match rx.try_recv() {
                    Ok(next) => {
                        bytes += next.records.iter().map(PendingRecord::cost).sum::<usize>();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.flush(batch).await;
        }
    }

    fn arrival_ms(&mut self) -> i64 {
        let now = self.clock.now_ms();
        // Arrival times never go backwards within this writer, so AT_TIMESTAMP finds a
        // shard's records in sequence order.
        self.last_arrival_ms = self.last_arrival_ms.max(now);
        self.last_arrival_ms
    }

    async fn flush(&mut self, batch: Vec<AppendRequest>) {
        let arrival_ms = self.arrival_ms();
        let mut results: Vec<Vec<Option<Outcome>>> = batch
            .iter()
            .map(|r| (0..r.records.len()).map(|_| None).collect())
            .collect();

        // Group by (stream, shard), keeping request order within each shard.
        let mut groups: BTreeMap<(i64, u64), Vec<(usize, usize)>> = BTreeMap::new();
        for (ri, request) in batch.iter().enumerate() {
            for (ci, record) in request.records.iter().enumerate() {
                groups
                    .entry((request.stream_id, record.shard_ordinal))
                    .or_default()
                    .push((ri, ci));
            }
        }
        // Streams whose master key refused a new data key (disabled, pending deletion,
        // deleted): their records get that KMS error; the rest of the flush goes on.
        let mut refused: BTreeMap<i64, ApiError> = BTreeMap::new();
        let Some((batch, outcome)) = self
            .seal_write_and_commit(batch, groups, arrival_ms, &mut refused)
            .await
        else {
            return;
        };
        match outcome {
            Ok((plans, firsts)) => {
                for (plan, first) in plans.iter().zip(firsts) {
                    for (i, &(ri, ci)) in plan.members.iter().enumerate() {
                        results[ri][ci] = Some(match first {
                            Committed::From(first) => Outcome::Written(Appended {
                                shard_ordinal: plan.shard_ordinal,
                                counter: first + i as u64,
                                arrival_ms,
                            }),
                            Committed::ShardClosed => Outcome::ShardClosed,
                            Committed::Gone => Outcome::Refused(ApiError::stream_not_found(
                                &batch[ri].stream_name,
                                &batch[ri].account_id,
                            )),
                        });
                    }
                }
                // Records of streams that were gone before a key could be made for them,
                // or whose master key refused one.
                for (ri, per_request) in results.iter_mut().enumerate() {
                    for slot in per_request.iter_mut().filter(|s| s.is_none()) {
                        *slot = Some(Outcome::Refused(match refused.get(&batch[ri].stream_id) {
                            Some(error) => error.clone(),
                            None => ApiError::stream_not_found(
                                &batch[ri].stream_name,
                                &batch[ri].account_id,
                            ),
                        }));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&*e), "flush failed; its records were not acknowledged");
                let refusal = if storage_full(&*e) {
                    edge::storage_full()
                } else {
                    ApiError::internal()
                };
                for per_request in results.iter_mut() {
                    for slot in per_request.iter_mut() {
                        *slot = Some(Outcome::Refused(refusal.clone()));
                    }
                }
            }
        }
        let (mut batch_records, mut batch_bytes) = (0u64, 0u64);
        for (request, per_request) in batch.iter().zip(&results) {
            let (mut records, mut bytes) = (0u64, 0u64);
            for (record, result) in request.records.iter().zip(per_request) {
                if matches!(result, Some(Outcome::Written(_))) {
                    records += 1;
                    bytes += record.data.len() as u64;
                }
            }
            if records > 0 {
                crate::traffic::stream_traffic(
                    crate::traffic::Direction::In,
                    &request.account_id,
                    &request.stream_name,
                    records,
                    bytes,
                );
            }
            batch_records += records;
            batch_bytes += bytes;
        }
        metrics::histogram!("sluice_commit_batch_records").record(batch_records as f64);
        metrics::histogram!("sluice_commit_batch_bytes").record(batch_bytes as f64);
        for (request, per_request) in batch.into_iter().zip(results) {
            let answers = request
                .records
                .into_iter()
                .zip(per_request)
                .map(
                    |(record, outcome)| match outcome.expect("every record gets an outcome") {
                        Outcome::Written(seq) => Ok(seq),
                        Outcome::Refused(e) => Err(AppendError::Refused(e)),
                        Outcome::ShardClosed => Err(AppendError::ShardClosed(Box::new(record))),
                    },
                )
                .collect();
            // A caller that went away no longer needs its answer; its records stay written.
            let _ = request.reply.send(answers);
        }
    }

    /// Picks each chunk's data key, then encodes, seals and appends the chunks durably
    /// on a blocking thread, then commits their rows. Hands the batch back with the
    /// chunks written and each one's first sequence counter (`None`: the batch was lost
    /// to a panic, and its callers already got InternalFailure).
    async fn seal_write_and_commit(
        &self,
        batch: Vec<AppendRequest>,
        groups: BTreeMap<(i64, u64), Vec<(usize, usize)>>,
        arrival_ms: i64,
        refused: &mut BTreeMap<i64, ApiError>,
    ) -> Option<(
        Vec<AppendRequest>,
        Result<(Vec<ChunkPlan>, Firsts), FlushError>,
    )> {
        let mut plans = Vec::with_capacity(groups.len());
        let mut flush_len = 0usize;
        for ((stream_id, shard_ordinal), members) in groups {
            // One seal per chunk, counted before the chunk is sealed.
            let key = match self.keyring.key_for_sealing(stream_id).await {
                Ok(Some(key)) => key,
                // The stream is gone; its records are answered as not found.
                Ok(None) => continue,
                // Its master key is not usable: only its records fail, with that error.
                Err(crate::keyring::KeyringError::Catalog(catalog::CatalogError::Refused(
                    refusal,
                ))) => {
                    refused.insert(stream_id, edge::refusal_error(&refusal));
                    continue;
                }
                Err(e) => return Some((batch, Err(e.into()))),
            };
            let records: Vec<RecordIn<'_>> = members
                .iter()
                .map(|&(ri, ci)| batch[ri].records[ci].as_record_in(arrival_ms))
                .collect();
            let len = chunk::encoded_len(records.iter(), true);
            // What the records bill: PUT payload units on a provisioned stream, KiB on
            // an ON_DEMAND one (the commit knows which).
            let (payload_units, ingress_kib, firehose_kib) =
                members
                    .iter()
                    .fold((0u64, 0u64, 0u64), |(units, kib, firehose), &(ri, ci)| {
                        let record = &batch[ri].records[ci];
                        let bytes = (record.data.len() + record.partition_key.len()) as u64;
                        (
                            units + catalog::billing::put_payload_units(bytes),
                            kib + catalog::billing::ingress_kib(bytes),
                            firehose
                                + catalog::billing::firehose_ingested_kib(record.data.len() as u64),
                        )
                    });
            let (account_id, stream_name) = {
                let first = &batch[members[0].0];
                (first.account_id.clone(), first.stream_name.clone())
            };
            plans.push(ChunkPlan {
                account_id,
                stream_name,
                payload_units,
                ingress_kib,
                firehose_kib,
                stream_id,
                shard_ordinal,
                members,
                key,
                offset_in_flush: flush_len,
                len,
            });
            flush_len += len;
        }
        if plans.is_empty() {
            return Some((batch, Ok((plans, Vec::new()))));
        }
        let append_started = std::time::Instant::now();
        let appended = self
            .store
            .append_with(
                flush_len,
                (batch, plans),
                move |(batch, plans), object_key, base, out| {
                    for plan in plans {
                        let records: Vec<RecordIn<'_>> = plan
                            .members
                            .iter()
                            .map(|&(ri, ci)| batch[ri].records[ci].as_record_in(arrival_ms))
                            .collect();
                        // INVARIANT: chunks are laid out back to back in plan order, so
                        // this chunk lands at `base + offset_in_flush`, which its row
                        // will name.
                        assert_eq!(out.len(), plan.offset_in_flush);
                        let account_id = &batch[plan.members[0].0].account_id;
                        let place = ChunkPlace {
                            account_id,
                            object_key,
                            byte_offset: base + plan.offset_in_flush as u64,
                        };
                        chunk::encode(
                            out,
                            plan.stream_id,
                            plan.shard_ordinal,
                            &records,
                            Some((&plan.key, &place)),
                        );
                        assert_eq!(out.len(), plan.offset_in_flush + plan.len);
                    }
                },
            )
            .await;
        // A panic while encoding dropped the batch: its callers saw their reply
        // channels close and answered InternalFailure; nothing is left to answer.
        let ((batch, plans), appended) = match appended {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(error = %e, "encoding a flush panicked; its records were not acknowledged");
                return None;
            }
        };
        metrics::histogram!("sluice_object_store_duration_seconds", "op" => "append")
            .record(append_started.elapsed().as_secs_f64());
        let (object_key, base) = match appended {
            Ok(place) => place,
            Err(e) => return Some((batch, Err(e.into()))),
        };
        let commit_started = std::time::Instant::now();
        let committed = self.commit(&object_key, base, &plans, arrival_ms).await;
        metrics::histogram!("sluice_catalog_duration_seconds", "op" => "commit")
            .record(commit_started.elapsed().as_secs_f64());
        match committed {
            Ok(firsts) => Some((batch, Ok((plans, firsts)))),
            Err(e) => Some((batch, Err(e))),
        }
    }

    /// Commits the rows of chunks appended at `base` of `object_key`; returns what
    /// became of each chunk: its first sequence counter, or that its shard is closed or
    /// its stream gone (its bytes stay unnamed, so never read).
    async fn commit(
        &self,
        object_key: &str,
        base: u64,
        plans: &[ChunkPlan],
        arrival_ms: i64,
    ) -> Result<Firsts, FlushError> {
        let chunks: Vec<NewChunk<'_>> = plans
            .iter()
            .map(|plan| NewChunk {
                account_id: &plan.account_id,
                stream_name: &plan.stream_name,
                stream_id: plan.stream_id,
                shard_ordinal: plan.shard_ordinal,
                record_count: plan.members.len() as u64,
                byte_offset: plan.offset_in_flush as u64,
                byte_length: plan.len as u64,
                data_key_id: plan.key.id().get(),
                payload_units: plan.payload_units,
                ingress_kib: plan.ingress_kib,
                firehose_kib: plan.firehose_kib,
            })
            .collect();
        Ok(self
            .catalog
            .commit_chunks(object_key, base, &chunks, arrival_ms)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing a segment")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn a_full_disk_is_found_anywhere_in_the_causes() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        assert!(storage_full(&full));
        assert!(storage_full(&Wrapped(full)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!storage_full(&Wrapped(other)));
        let corrupt = catalog::CatalogError::Corrupt { what: "x".into() };
        assert!(!storage_full(&corrupt));
    }
}
