//! A producer: user records in, PutRecords calls out. Records are (optionally)
//! aggregated in the KPL format, packed into calls within PutRecords' limits (500
//! records, 5 MiB a call, 1 MiB a record), and each call carries an
//! `X-Sluice-Idempotency-Key`, so a retry after a lost answer is stored once. Records a
//! call reports as failed (throttled) are sent again, with exponential backoff and
//! full jitter, until `max_attempts`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::{Client, Error, kpl};

/// PutRecords' documented limits.
pub const RECORDS_PER_CALL_MAX: usize = 500;
pub const BYTES_PER_CALL_MAX: usize = 5 * 1024 * 1024;
pub const BYTES_PER_RECORD_MAX: usize = 1024 * 1024;
/// What an aggregate is kept under (the KPL's default is 50 KiB).
pub const AGGREGATE_BYTES_MAX: usize = 50 * 1024;

#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// Pack user records into KPL aggregates.
    pub aggregate: bool,
    /// Send each call's idempotency key.
    pub idempotency_keys: bool,
    /// Attempts per record before `put` gives up.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            aggregate: false,
            idempotency_keys: true,
            max_attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Where a user record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub shard_id: String,
    pub sequence_number: String,
    /// Its place in the aggregate that carried it.
    pub sub_sequence_number: Option<u64>,
}

pub struct Producer {
    client: Arc<Client>,
    stream: String,
    options: ProducerOptions,
}

/// One Kinesis record of a call: what it carries, and which user records.
struct Outgoing {
    partition_key: String,
    data: Vec<u8>,
    /// (index of the user record, sub-sequence when aggregated)
    users: Vec<(usize, Option<u64>)>,
}

impl Producer {
    pub fn new(client: impl Into<Arc<Client>>, stream: &str, options: ProducerOptions) -> Self {
        Producer {
            client: client.into(),
            stream: stream.to_string(),
            options,
        }
    }

    /// Stores `records` (partition key, data) and says where each went, in order.
    pub async fn put(&self, records: &[(String, Vec<u8>)]) -> Result<Vec<Stored>, Error> {
        for (key, data) in records {
            if key.is_empty() || key.chars().count() > 256 {
                return Err(Error::Config(format!(
                    "partition key {key:?} is not 1 to 256 characters"
                )));
            }
            if key.len() + data.len() > BYTES_PER_RECORD_MAX {
                return Err(Error::Config(format!(
                    "a record of {} bytes is over the 1 MiB limit",
                    key.len() + data.len()
                )));
            }
        }
        let outgoing = if self.options.aggregate {
            aggregate(records)
        } else {
            records
                .iter()
                .enumerate()
                .map(|(i, (key, data))| Outgoing {
                    partition_key: key.clone(),
                    data: data.clone(),
                    users: vec![(i, None)],
                })
                .collect()
        };
        let mut stored: Vec<Option<Stored>> = vec![None; records.len()];
        let mut pending: Vec<usize> = (0..outgoing.len()).collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            attempt += 1;
            let mut failed = Vec::new();
            for call in calls(&outgoing, &pending) {
                match self.send(&outgoing, &call).await {
                    Ok(answers) => {
                        for (index, answer) in call.iter().zip(answers) {
                            match answer {
                                Some((shard_id, sequence_number)) => {
                                    for (user, sub) in &outgoing[*index].users {
                                        stored[*user] = Some(Stored {
                                            shard_id: shard_id.clone(),
                                            sequence_number: sequence_number.clone(),
                                            sub_sequence_number: *sub,
                                        });
                                    }
                                }
                                None => failed.push(*index),
                            }
                        }
                    }
                    Err(e) if e.is_retryable() => failed.extend_from_slice(&call),
                    Err(e) => return Err(e),
                }
            }
            if failed.is_empty() {
                break;
            }
            if attempt >= self.options.max_attempts {
                return Err(Error::Transport(format!(
                    "{} records were still refused after {attempt} attempts",
                    failed.len()
                )));
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            pending = failed;
        }
        stored
            .into_iter()
            .map(|s| s.ok_or_else(|| Error::Format("a record got no answer".into())))
            .collect()
    }

    /// Full jitter: a random pause up to the exponential bound.
    fn backoff(&self, attempt: u32) -> Duration {
        let bound = self
            .options
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.options.max_backoff);
        let mut bytes = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
        bound.mul_f64(fraction)
    }

    /// One PutRecords call (retried as is after a lost answer: its idempotency key
    /// makes the retry store nothing twice); per record, where it went or `None`.
    async fn send(
        &self,
        outgoing: &[Outgoing],
        call: &[usize],
    ) -> Result<Vec<Option<(String, String)>>, Error> {
        let body = json!({
            "StreamName": self.stream,
            "Records": call.iter().map(|i| json!({
                "PartitionKey": outgoing[*i].partition_key,
                "Data": BASE64.encode(&outgoing[*i].data),
            })).collect::<Vec<_>>(),
        });
        let key = idempotency_key();
        let mut headers = Vec::new();
        if self.options.idempotency_keys {
            headers.push(("x-sluice-idempotency-key", key.as_str()));
        }
        let mut last = None;
        for _ in 0..3 {
            match self
                .client
                .call("kinesis", "Kinesis_20131202.PutRecords", &body, &headers)
                .await
            {
                Ok(answer) => return Ok(results(&answer, call.len())),
                // The answer was lost: the same request again, under the same key.
                Err(Error::Transport(e)) => last = Some(Error::Transport(e)),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }
}

fn results(answer: &Value, n: usize) -> Vec<Option<(String, String)>> {
    let records = answer["Records"].as_array().cloned().unwrap_or_default();
    (0..n)
        .map(|i| {
            let r = records.get(i)?;
            if r.get("ErrorCode").is_some_and(|c| !c.is_null()) {
                return None;
            }
            Some((
                r["ShardId"].as_str()?.to_string(),
                r["SequenceNumber"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// 32 random hex characters.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Packs user records into aggregates of at most `AGGREGATE_BYTES_MAX` (a record too
/// big for one goes alone, unaggregated).
fn aggregate(records: &[(String, Vec<u8>)]) -> Vec<Outgoing> {
    fn flush(
        out: &mut Vec<Outgoing>,
        aggregator: &mut kpl::Aggregator,
        users: &mut Vec<(usize, Option<u64>)>,
    ) {
        if aggregator.is_empty() {
            return;
        }
        let key = aggregator.partition_key().unwrap_or("a").to_string();
        out.push(Outgoing {
            partition_key: key,
            data: aggregator.finish(),
            users: std::mem::take(users),
        });
    }
    let mut out = Vec::new();
    let mut aggregator = kpl::Aggregator::new();
    let mut users = Vec::new();
    for (i, (key, data)) in records.iter().enumerate() {
        if aggregator.size_with(key, data) > AGGREGATE_BYTES_MAX {
            flush(&mut out, &mut aggregator, &mut users);
            if aggregator.size_with(key, data) > AGGREGATE_BYTES_MAX {
                out.push(Outgoing {
                    partition_key: key.clone(),
                    data: data.clone(),
                    users: vec![(i, None)],
                });
                continue;
            }
        }
        users.push((i, Some(aggregator.len() as u64)));
        aggregator.add(key, data);
    }
    flush(&mut out, &mut aggregator, &mut users);
    out
}

/// The records of `pending`, packed into calls within PutRecords' limits.
fn calls(outgoing: &[Outgoing], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut calls = Vec::new();
    let mut call = Vec::new();
    let mut bytes = 0;
    for &i in pending {
        let size = outgoing[i].data.len() + outgoing[i].partition_key.len();
        if !call.is_empty()
            && (call.len() == RECORDS_PER_CALL_MAX || bytes + size > BYTES_PER_CALL_MAX)
        {
            calls.push(std::mem::take(&mut call));
            bytes = 0;
        }
        call.push(i);
        bytes += size;
    }
    if !call.is_empty() {
        calls.push(call);
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_keep_to_the_put_records_limits() {
        let outgoing: Vec<Outgoing> = (0..1_200)
            .map(|i| Outgoing {
                partition_key: "k".into(),
                data: vec![0; if i < 10 { 900 * 1024 } else { 10 }],
                users: vec![(i, None)],
            })
            .collect();
        let pending: Vec<usize> = (0..outgoing.len()).collect();
        let packed = calls(&outgoing, &pending);
        for call in &packed {
            assert!(call.len() <= RECORDS_PER_CALL_MAX);
            let bytes: usize = call.iter().map(|i| outgoing[*i].data.len() + 1).sum();
            assert!(bytes <= BYTES_PER_CALL_MAX);
        }
        assert_eq!(packed.concat(), pending, "in order, each once");
    }

    #[test]
    fn aggregates_stay_small_and_name_each_user_record() {
        let records: Vec<(String, Vec<u8>)> = (0..300)
            .map(|i| (format!("key-{}", i % 7), vec![b'x'; 500]))
            .collect();
        let out = aggregate(&records);
        assert!(out.len() > 1);
        let mut seen = Vec::new();
        for o in &out {
            assert!(o.data.len() <= AGGREGATE_BYTES_MAX);
            let users = kpl::deaggregate(&o.data).unwrap();
            assert_eq!(users.len(), o.users.len());
            for ((index, sub), user) in o.users.iter().zip(users) {
                assert_eq!(user.partition_key, records[*index].0);
                seen.push((*index, sub.unwrap()));
            }
        }
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..300).collect::<Vec<_>>()
        );
    }
}
