//! A member of a server-side consumer group.
//!
//! `GroupConsumer::join` makes the member (and the group, when asked); `next_batch`
//! heartbeats when due, gives back leases the group asked for, and reads the next
//! batch of records from one of the member's shards (round robin), KPL aggregates
//! split into their user records; `commit` checkpoints a batch (a shard's end
//! included, which lets the group hand out its children); `leave` leaves the group so
//! its shards move at once. Delivery is at least once: a batch not committed when its
//! lease moves is read again by the next holder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::{Client, Error, kpl};

/// The pause before a request the server could not answer is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Attempts at a checkpoint while the server is away (about a minute).
const CHECKPOINT_ATTEMPTS: u32 = 120;

/// Where a group made by `join` starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StartFrom {
    TrimHorizon,
    Latest,
    /// Epoch seconds.
    AtTimestamp(f64),
}

#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// A name for the member (its id is the server's, made of this name).
    pub member_name: Option<String>,
    /// Make the group first (if it does not exist), starting here.
    pub create_from: Option<StartFrom>,
    /// The lease timeout of a group `join` makes.
    pub lease_timeout_seconds: Option<i64>,
    /// GetRecords' Limit.
    pub records_per_call: u32,
    /// The pause when no leased shard had anything new.
    pub idle_wait: Duration,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            member_name: None,
            create_from: None,
            lease_timeout_seconds: None,
            records_per_call: 10_000,
            idle_wait: Duration::from_millis(250),
        }
    }
}

/// A user record as the group delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub shard_id: String,
    pub sequence_number: String,
    /// Its place inside a KPL aggregate; `None` for an ordinary record.
    pub sub_sequence_number: Option<u64>,
    pub partition_key: String,
    /// Epoch seconds.
    pub approximate_arrival: f64,
    pub data: Vec<u8>,
}

/// Records of one shard, in order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub shard_id: String,
    pub records: Vec<GroupRecord>,
    /// The shard is closed and this batch reaches its end.
    pub shard_end: bool,
    lease_counter: i64,
}

#[derive(Debug, Clone)]
struct LeaseState {
    counter: i64,
    start: Value,
    iterator: Option<String>,
    release_requested: bool,
    /// The last record delivered: (sequence number, sub-sequence when the aggregate
    /// was delivered only up to it).
    delivered: Option<String>,
}

pub struct GroupConsumer {
    client: Arc<Client>,
    stream: String,
    group: String,
    member_name: String,
    member_id: String,
    options: GroupOptions,
    leases: BTreeMap<String, LeaseState>,
    heartbeat_every: Duration,
    next_heartbeat: Instant,
    /// The shard read last (round robin).
    cursor: Option<String>,
}

impl GroupConsumer {
    /// Joins `group` of `stream` (making the group first when `options.create_from`).
    pub async fn join(
        client: impl Into<Arc<Client>>,
        stream: &str,
        group: &str,
        options: GroupOptions,
    ) -> Result<GroupConsumer, Error> {
        let client = client.into();
        if let Some(from) = options.create_from {
            let position = match from {
                StartFrom::TrimHorizon => json!({"Type": "TRIM_HORIZON"}),
                StartFrom::Latest => json!({"Type": "LATEST"}),
                StartFrom::AtTimestamp(at) => json!({"Type": "AT_TIMESTAMP", "Timestamp": at}),
            };
            let mut body = json!({
                "StreamName": stream,
                "GroupName": group,
                "StartingPosition": position,
            });
            if let Some(timeout) = options.lease_timeout_seconds {
                body["LeaseTimeoutSeconds"] = json!(timeout);
            }
            match client.groups("CreateConsumerGroup", &body).await {
                Ok(_) => {}
                Err(e) if e.kind() == Some("ResourceInUseException") => {}
                Err(e) => return Err(e),
            }
        }
        let member_name = options
            .member_name
            .clone()
            .unwrap_or_else(|| "member".to_string());
        let mut consumer = GroupConsumer {
            client,
            stream: stream.to_string(),
            group: group.to_string(),
            member_name,
            member_id: String::new(),
            options,
            leases: BTreeMap::new(),
            heartbeat_every: Duration::from_secs(3),
            next_heartbeat: Instant::now(),
            cursor: None,
        };
        consumer.rejoin().await?;
        Ok(consumer)
    }

    /// The member id the server gave this member.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The shards this member holds now.
    pub fn shards(&self) -> Vec<String> {
        self.leases.keys().cloned().collect()
    }

    async fn rejoin(&mut self) -> Result<(), Error> {
        let answer = self
            .client
            .groups(
                "JoinConsumerGroup",
                &json!({
                    "StreamName": self.stream,
                    "GroupName": self.group,
                    "MemberName": self.member_name,
                }),
            )
            .await?;
        self.member_id = answer["MemberId"]
            .as_str()
            .ok_or_else(|| Error::Format("JoinConsumerGroup answered no MemberId".into()))?
            .to_string();
        self.leases.clear();
        self.apply(&answer);
        Ok(())
    }

    /// Takes the leases an answer lists; keeps the reading state of those it held
    /// already under the same counter.
    fn apply(&mut self, answer: &Value) {
        let mut next = BTreeMap::new();
        for lease in answer["Leases"].as_array().into_iter().flatten() {
            let (Some(shard), Some(counter)) =
                (lease["ShardId"].as_str(), lease["LeaseCounter"].as_i64())
            else {
                continue;
            };
            let release_requested = lease["ReleaseRequested"].as_bool().unwrap_or(false);
            let state = match self.leases.remove(shard) {
                Some(mut held) if held.counter == counter => {
                    held.release_requested = release_requested;
                    held
                }
                _ => LeaseState {
                    counter,
                    start: lease["StartingPosition"].clone(),
                    iterator: None,
                    release_requested,
                    delivered: None,
                },
            };
            next.insert(shard.to_string(), state);
        }
        self.leases = next;
        if let Some(ms) = answer["HeartbeatIntervalMillis"].as_u64() {
            self.heartbeat_every = Duration::from_millis(ms.max(100));
        }
        self.next_heartbeat = Instant::now() + self.heartbeat_every;
    }

    async fn heartbeat(&mut self) -> Result<(), Error> {
        let answer = self
            .client
            .groups(
                "HeartbeatConsumerGroup",
                &json!({
                    "StreamName": self.stream,
                    "GroupName": self.group,
                    "MemberId": self.member_id,
                }),
            )
            .await;
        match answer {
            Ok(answer) => {
                self.apply(&answer);
                Ok(())
            }
            // Out of the group (paused past the lease timeout): a new membership.
            Err(e) if e.kind() == Some("LeaseLostException") => self.rejoin().await,
            Err(e) => Err(e),
        }
    }

    /// Gives back each lease the group asked for (everything delivered of it was
    /// committed, or will be read again by its next holder).
    async fn release_requested(&mut self) -> Result<(), Error> {
        let asked: Vec<(String, i64)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.release_requested)
            .map(|(s, l)| (s.clone(), l.counter))
            .collect();
        for (shard, counter) in asked {
            self.leases.remove(&shard);
            let body = json!({
                "StreamName": self.stream,
                "GroupName": self.group,
                "MemberId": self.member_id,
                "ShardId": shard,
                "LeaseCounter": counter,
                "Release": true,
            });
            match self.client.groups("CheckpointConsumerGroup", &body).await {
                Ok(answer) => self.apply(&answer),
                Err(e) if e.kind() == Some("LeaseLostException") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next batch of records of one of this member's shards: waits (heartbeating)
    /// until there is one.
    pub async fn next_batch(&mut self) -> Result<Batch, Error> {
        loop {
            if Instant::now() >= self.next_heartbeat {
                match self.heartbeat().await {
                    Ok(()) => {}
                    // The server is away or busy: try again soon; if it stays away past
                    // the lease timeout, the next heartbeat joins afresh.
                    Err(e) if e.is_retryable() => {
                        self.next_heartbeat = Instant::now() + RETRY_PAUSE;
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            match self.release_requested().await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            let shards: Vec<String> = self.leases.keys().cloned().collect();
            let first = match &self.cursor {
                Some(c) => shards.iter().position(|s| s > c).unwrap_or(0),
                None => 0,
            };
            for i in 0..shards.len() {
                let shard = &shards[(first + i) % shards.len()];
                self.cursor = Some(shard.clone());
                if let Some(batch) = self.read(shard).await? {
                    return Ok(batch);
                }
            }
            let until_heartbeat = self
                .next_heartbeat
                .saturating_duration_since(Instant::now());
            tokio::time::sleep(self.options.idle_wait.min(until_heartbeat)).await;
        }
    }

    async fn iterator(&self, shard: &str, lease: &LeaseState) -> Result<String, Error> {
        let mut body = json!({"StreamName": self.stream, "ShardId": shard});
        match &lease.delivered {
            Some(sequence) => {
                body["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                body["StartingSequenceNumber"] = json!(sequence);
            }
            None => {
                let kind = lease.start["Type"].as_str().unwrap_or("TRIM_HORIZON");
                body["ShardIteratorType"] = json!(kind);
                if let Some(sequence) = lease.start["SequenceNumber"].as_str() {
                    body["StartingSequenceNumber"] = json!(sequence);
                }
                if let Some(at) = lease.start["Timestamp"].as_f64() {
                    body["Timestamp"] = json!(at);
                }
            }
        }
        let answer = self.client.kinesis("GetShardIterator", &body).await?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Format("GetShardIterator answered no ShardIterator".into()))
    }

    async fn read(&mut self, shard: &str) -> Result<Option<Batch>, Error> {
        let Some(lease) = self.leases.get(shard).cloned() else {
            return Ok(None);
        };
        let iterator = match lease.iterator.clone() {
            Some(iterator) => iterator,
            None => match self.iterator(shard, &lease).await {
                Ok(iterator) => iterator,
                Err(e) if e.is_retryable() => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let answer = match self
            .client
            .kinesis(
                "GetRecords",
                &json!({"ShardIterator": iterator, "Limit": self.options.records_per_call}),
            )
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.kind() == Some("ExpiredIteratorException") => {
                if let Some(held) = self.leases.get_mut(shard) {
                    held.iterator = None;
                }
                return Ok(None);
            }
            Err(e) if e.is_retryable() => return Ok(None),
            Err(e) => return Err(e),
        };
        // Skip what a checkpoint inside an aggregate says was processed.
        let skip_through = match (&lease.delivered, lease.start["Type"].as_str()) {
            (None, Some("AT_SEQUENCE_NUMBER")) => lease.start["SequenceNumber"]
                .as_str()
                .map(|s| (s.to_string(), lease.start["SubSequenceNumber"].as_u64())),
            _ => None,
        };
        let mut records = Vec::new();
        let mut last_sequence = None;
        for record in answer["Records"].as_array().into_iter().flatten() {
            let sequence = record["SequenceNumber"].as_str().unwrap_or("").to_string();
            let data = BASE64
                .decode(record["Data"].as_str().unwrap_or(""))
                .map_err(|e| Error::Format(format!("GetRecords Data is not base64: {e}")))?;
            let arrival = record["ApproximateArrivalTimestamp"]
                .as_f64()
                .unwrap_or(0.0);
            // A checkpoint's number names the record's position, not its text.
            let skip = match &skip_through {
                Some((at, sub)) if same_position(at, &sequence) => *sub,
                _ => None,
            };
            match kpl::deaggregate(&data) {
                Some(users) => {
                    for (i, user) in users.into_iter().enumerate() {
                        let i = i as u64;
                        if skip.is_some_and(|s| i <= s) {
                            continue;
                        }
                        records.push(GroupRecord {
                            shard_id: shard.to_string(),
                            sequence_number: sequence.clone(),
                            sub_sequence_number: Some(i),
                            partition_key: user.partition_key,
                            approximate_arrival: arrival,
                            data: user.data,
                        });
                    }
                }
                None if skip.is_some() => {}
                None => records.push(GroupRecord {
                    shard_id: shard.to_string(),
                    sequence_number: sequence.clone(),
                    sub_sequence_number: None,
                    partition_key: record["PartitionKey"].as_str().unwrap_or("").to_string(),
                    approximate_arrival: arrival,
                    data,
                }),
            }
            last_sequence = Some(sequence);
        }
        let next = answer["NextShardIterator"].as_str().map(str::to_string);
        let shard_end = next.is_none();
        if let Some(held) = self.leases.get_mut(shard) {
            held.iterator = next;
            if last_sequence.is_some() {
                held.delivered = last_sequence;
            }
        }
        if records.is_empty() && !shard_end {
            return Ok(None);
        }
        Ok(Some(Batch {
            shard_id: shard.to_string(),
            records,
            shard_end,
            lease_counter: lease.counter,
        }))
    }

    /// Checkpoints everything in `batch` (and the shard's end when it reached it).
    /// A lease that moved on meanwhile is dropped quietly: its next holder reads the
    /// batch again.
    pub async fn commit(&mut self, batch: &Batch) -> Result<(), Error> {
        let mut body = json!({
            "StreamName": self.stream,
            "GroupName": self.group,
            "MemberId": self.member_id,
            "ShardId": batch.shard_id,
            "LeaseCounter": batch.lease_counter,
        });
        if batch.shard_end {
            body["ShardEnd"] = json!(true);
        } else if let Some(last) = batch.records.last() {
            body["SequenceNumber"] = json!(last.sequence_number);
        } else {
            return Ok(());
        }
        self.checkpoint(&batch.shard_id, body).await
    }

    /// Checkpoints one record (inside an aggregate too): every record of its shard up
    /// to it is processed.
    pub async fn checkpoint_at(&mut self, record: &GroupRecord) -> Result<(), Error> {
        let Some(lease) = self.leases.get(&record.shard_id) else {
            return Ok(());
        };
        let mut body = json!({
            "StreamName": self.stream,
            "GroupName": self.group,
            "MemberId": self.member_id,
            "ShardId": record.shard_id,
            "LeaseCounter": lease.counter,
            "SequenceNumber": record.sequence_number,
        });
        if let Some(sub) = record.sub_sequence_number {
            body["SubSequenceNumber"] = json!(sub);
        }
        self.checkpoint(&record.shard_id, body).await
    }

    /// Stores a checkpoint, retrying while the server is away (up to
    /// `CHECKPOINT_ATTEMPTS`); a lease lost meanwhile is dropped.
    async fn checkpoint(&mut self, shard: &str, body: Value) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.groups("CheckpointConsumerGroup", &body).await {
                Ok(answer) => {
                    self.apply(&answer);
                    return Ok(());
                }
                Err(e) if e.kind() == Some("LeaseLostException") => {
                    self.leases.remove(shard);
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < CHECKPOINT_ATTEMPTS => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The group's records as a `Stream`, checkpointed automatically: a batch is
    /// committed when the record after its last is asked for (so at most the batch in
    /// hand is read again after a crash).
    pub fn records(self) -> impl futures_util::Stream<Item = Result<GroupRecord, Error>> {
        let queue = std::collections::VecDeque::new();
        futures_util::stream::unfold(
            (self, queue, None::<Batch>),
            |(mut group, mut queue, mut done)| async move {
                loop {
                    if let Some(record) = queue.pop_front() {
                        return Some((Ok(record), (group, queue, done)));
                    }
                    if let Some(batch) = done.take()
                        && let Err(e) = group.commit(&batch).await
                    {
                        return Some((Err(e), (group, queue, None)));
                    }
                    match group.next_batch().await {
                        Ok(batch) => {
                            queue.extend(batch.records.iter().cloned());
                            done = Some(batch);
                        }
                        Err(e) => return Some((Err(e), (group, queue, None))),
                    }
                }
            },
        )
    }

    /// Leaves the group: its shards go to the other members at once.
    pub async fn leave(self) -> Result<(), Error> {
        match self
            .client
            .groups(
                "LeaveConsumerGroup",
                &json!({
                    "StreamName": self.stream,
                    "GroupName": self.group,
                    "MemberId": self.member_id,
                }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Some("LeaseLostException") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Whether two sequence numbers name the same record (their texts may differ in the
/// times they carry).
fn same_position(a: &str, b: &str) -> bool {
    match (
        protocol::SequenceNumber::decode(a),
        protocol::SequenceNumber::decode(b),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}
