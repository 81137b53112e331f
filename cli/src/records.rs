//! `sluice put` and `sluice get`: records from the command line, optionally sealed on
//! the client (`put --encrypt KEY`, `get --decrypt`) so that the server only ever sees
//! ciphertext.
//!
//! Client-side envelope, version 1 (docs/encryption-formats.md; integers big-endian):
//!
//! ```text
//! offset   bytes  field
//! 0        4      magic "SLCE"
//! 4        1      version, 1
//! 5        2      n, length of the wrapped data key
//! 7        n      the data key as KMS GenerateDataKey returned it (a ciphertext blob
//!                 naming its master key and version), encryption context
//!                 {"sluice:stream": STREAM}
//! 7+n      12     nonce, random per record
//! 19+n     m      AES-256-GCM ciphertext of the record's data
//! 19+n+m   16     tag
//! ```
//!
//! The associated data is bytes 0..7+n, then the stream name and the partition key,
//! each preceded by its length (u32): a record moved to another stream or another
//! partition key does not open. One `put` asks KMS for one data key and seals each of
//! its records under it with a fresh nonce (a run seals far fewer than 2^32 records);
//! `get --decrypt` asks KMS to unwrap each distinct data key once.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use envelope::{DataKey, DataKeyId};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

use crate::admin::ConnectArgs;
use crate::client::tls_connector;
use crate::sigv4::Signer;

const MAGIC: &[u8; 4] = b"SLCE";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 7;
/// The encryption-context key that binds a wrapped data key to its stream.
const CONTEXT_STREAM: &str = "sluice:stream";
/// Distinct data keys `get --decrypt` keeps unwrapped at once.
const OPENED_KEYS_MAX: usize = 1_024;
/// Records one `get` prints at most unless told otherwise.
const GET_RECORDS_DEFAULT: usize = 10_000;
/// GetRecords calls that return nothing before `get` decides a shard is read.
const EMPTY_READS_MAX: usize = 2;

#[derive(clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The stream to write to.
    #[arg(long)]
    stream: String,
    /// The partition key of every record.
    #[arg(long, default_value = "sluice-cli")]
    partition_key: String,
    /// Seal each record on the client under a data key from this KMS key (key id,
    /// key ARN, alias or alias ARN); the server sees only ciphertext.
    #[arg(long, value_name = "KEY")]
    encrypt: Option<String>,
    /// The records' data; without any, one record per line of stdin.
    data: Vec<String>,
}

#[derive(clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The stream to read, every shard from its oldest record.
    #[arg(long)]
    stream: String,
    /// Open records sealed by `put --encrypt` (a record that is not sealed is an error).
    #[arg(long)]
    decrypt: bool,
    /// Records to print at most.
    #[arg(long, default_value_t = GET_RECORDS_DEFAULT)]
    limit: usize,
}

/// A signed AWS JSON 1.1 client for one endpoint.
struct AwsClient {
    connect: ConnectArgs,
    signer: Signer,
}

impl AwsClient {
    fn new(connect: ConnectArgs) -> anyhow::Result<Self> {
        let signer = Signer::from_credentials_file(
            &connect.credentials,
            connect.region.clone(),
            connect.endpoint.clone(),
        )?;
        Ok(AwsClient { connect, signer })
    }

    /// One `POST /` with `X-Amz-Target: target`, signed for `service`.
    async fn call(&self, service: &str, target: &str, body: Value) -> anyhow::Result<Value> {
        let connect = &self.connect;
        let addr = tokio::net::lookup_host(&connect.endpoint)
            .await
            .with_context(|| format!("resolving {}", connect.endpoint))?
            .next()
            .with_context(|| format!("{} resolves to no address", connect.endpoint))?;
        let host = connect.endpoint.split(':').next().unwrap_or("localhost");
        let body = Bytes::from(body.to_string());
        let content_type = "application/x-amz-json-1.1";
        let (amz_date, authorization) = self.signer.sign_request(
            "POST",
            "/",
            "",
            service,
            &[("content-type", content_type), ("x-amz-target", target)],
            &body,
            protocol::clock::now_utc(&protocol::clock::SystemClock),
        );
        let mut sender = crate::client::connect(&tls_connector(&connect.ca)?, addr, host).await?;
        let request = Request::builder()
            .method("POST")
            .uri("/")
            .header("host", &connect.endpoint)
            .header("content-type", content_type)
            .header("x-amz-target", target)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let kind = value["__type"].as_str().unwrap_or("Error");
            let message = value["message"].as_str().unwrap_or("");
            bail!("{target}: {status}: {kind}: {message}");
        }
        Ok(value)
    }

    async fn kinesis(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call("kinesis", &format!("Kinesis_20131202.{operation}"), body)
            .await
    }

    async fn kms(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call("kms", &format!("TrentService.{operation}"), body)
            .await
    }
}

fn blob(value: &Value, member: &str) -> anyhow::Result<Vec<u8>> {
    let text = value[member]
        .as_str()
        .with_context(|| format!("the answer has no {member}"))?;
    BASE64
        .decode(text)
        .with_context(|| format!("{member} is not base64"))
}

fn associated_data(header: &[u8], stream: &str, partition_key: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    for part in [stream, partition_key] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn data_key(bytes: &[u8]) -> anyhow::Result<DataKey> {
    DataKey::from_bytes(DataKeyId::new(1).expect("nonzero"), bytes)
        .map_err(|e| anyhow::anyhow!("KMS returned an unusable data key: {e}"))
}

/// Seals `data` in an envelope around `wrapped` (the KMS blob of `key`).
fn seal_record(
    key: &DataKey,
    wrapped: &[u8],
    stream: &str,
    partition_key: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_BYTES + wrapped.len());
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
    header.extend_from_slice(wrapped);
    let aad = associated_data(&header, stream, partition_key);
    let mut out = header;
    envelope::seal_into(key, &aad, data, &mut out);
    out
}

/// The wrapped data key an envelope carries, and where its sealed part starts.
/// Whether `record` starts as a client-side envelope does.
fn is_envelope(record: &[u8]) -> bool {
    record.len() >= MAGIC.len() && &record[..MAGIC.len()] == MAGIC
}

fn parse_envelope(record: &[u8]) -> anyhow::Result<(&[u8], usize)> {
    if record.len() < HEADER_BYTES || &record[..4] != MAGIC {
        bail!("the record is not a sluice client-side envelope");
    }
    if record[4] != VERSION {
        bail!(
            "envelope version {} is not one this client reads",
            record[4]
        );
    }
    let n = usize::from(u16::from_be_bytes([record[5], record[6]]));
    let end = HEADER_BYTES + n;
    if record.len() < end + envelope::SEAL_OVERHEAD_BYTES {
        bail!("the envelope is truncated");
    }
    Ok((&record[HEADER_BYTES..end], end))
}

/// The next line of `input` without its newline, read to at most a record's size;
/// `None` at the end.
fn next_line(input: &mut impl BufRead) -> anyhow::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let limit = protocol::limits::RECORD_BYTES_MAX as u64 + 1;
    let read = input
        .by_ref()
        .take(limit)
        .read_until(b'\n', &mut line)
        .context("reading records from stdin")?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() as u64 == limit {
        bail!(
            "a line of stdin is longer than a record may be ({} bytes)",
            protocol::limits::RECORD_BYTES_MAX
        );
    }
    Ok(Some(line))
}

pub async fn put(args: PutArgs) -> anyhow::Result<()> {
    // Records are read one at a time, so a long stdin is never held in memory at once.
    let mut stdin = std::io::stdin().lock();
    let mut from_args = args.data.iter().map(|d| d.as_bytes().to_vec());
    let use_stdin = args.data.is_empty();
    let mut next_record = move || -> anyhow::Result<Option<Vec<u8>>> {
        if use_stdin {
            next_line(&mut stdin)
        } else {
            Ok(from_args.next())
        }
    };
    let client = AwsClient::new(args.connect)?;
    let sealer = match &args.encrypt {
        None => None,
        Some(key_id) => {
            let out = client
                .kms(
                    "GenerateDataKey",
                    json!({
                        "KeyId": key_id,
                        "KeySpec": "AES_256",
                        "EncryptionContext": {CONTEXT_STREAM: args.stream},
                    }),
                )
                .await?;
            let plaintext = zeroize::Zeroizing::new(blob(&out, "Plaintext")?);
            Some((data_key(&plaintext)?, blob(&out, "CiphertextBlob")?))
        }
    };
    while let Some(record) = next_record()? {
        let payload = match &sealer {
            Some((key, wrapped)) => {
                seal_record(key, wrapped, &args.stream, &args.partition_key, &record)
            }
            None => record,
        };
        let out = client
            .kinesis(
                "PutRecord",
                json!({
                    "StreamName": args.stream,
                    "PartitionKey": args.partition_key,
                    "Data": BASE64.encode(&payload),
                }),
            )
            .await?;
        println!(
            "{}",
            json!({"ShardId": out["ShardId"], "SequenceNumber": out["SequenceNumber"]})
        );
    }
    Ok(())
}

pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = AwsClient::new(args.connect)?;
    let shards = client
        .kinesis("ListShards", json!({"StreamName": args.stream}))
        .await?;
    let shard_ids: Vec<String> = shards["Shards"]
        .as_array()
        .context("ListShards answered no Shards")?
        .iter()
        .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
        .collect();
    let mut opened: HashMap<Vec<u8>, DataKey> = HashMap::new();
    let mut printed = 0usize;
    for shard_id in shard_ids {
        let it = client
            .kinesis(
                "GetShardIterator",
                json!({"StreamName": args.stream, "ShardId": shard_id,
                       "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await?;
        let mut iterator = it["ShardIterator"].as_str().map(str::to_string);
        let mut empty_reads = 0;
        while let Some(current) = iterator.take() {
            if printed >= args.limit {
                return Ok(());
            }
            let out = client
                .kinesis("GetRecords", json!({"ShardIterator": current}))
                .await?;
            let records = out["Records"].as_array().cloned().unwrap_or_default();
            // A shard is read once a page comes back empty at the tip (or a few come
            // back empty whatever the tip says).
            if records.is_empty() {
                empty_reads += 1;
                let caught_up = out["MillisBehindLatest"].as_i64() == Some(0);
                if caught_up || empty_reads >= EMPTY_READS_MAX {
                    break;
                }
            }
            for record in records {
                if printed >= args.limit {
                    return Ok(());
                }
                let partition_key = record["PartitionKey"].as_str().unwrap_or("");
                let stored = blob(&record, "Data")?;
                // A record that is no envelope at all (MAGIC) was not written by `put
                // --encrypt`: it is printed as stored and marked so. One that claims to be
                // an envelope and does not open stays an error.
                let plain = args.decrypt && !is_envelope(&stored);
                if plain {
                    eprintln!(
                        "sluice: record {} is not client-side encrypted; printed as stored",
                        record["SequenceNumber"]
                    );
                }
                let data = if args.decrypt && !plain {
                    let (wrapped, sealed_at) = parse_envelope(&stored)?;
                    if !opened.contains_key(wrapped) {
                        if opened.len() >= OPENED_KEYS_MAX {
                            opened.clear();
                        }
                        let out = client
                            .kms(
                                "Decrypt",
                                json!({
                                    "CiphertextBlob": BASE64.encode(wrapped),
                                    "EncryptionContext": {CONTEXT_STREAM: args.stream},
                                }),
                            )
                            .await?;
                        let plaintext = zeroize::Zeroizing::new(blob(&out, "Plaintext")?);
                        opened.insert(wrapped.to_vec(), data_key(&plaintext)?);
                    }
                    let key = &opened[wrapped];
                    let aad = associated_data(&stored[..sealed_at], &args.stream, partition_key);
                    envelope::open(key, &aad, &stored[sealed_at..]).map_err(|_| {
                        anyhow::anyhow!(
                            "record {} does not open: altered, or moved from another stream or partition key",
                            record["SequenceNumber"]
                        )
                    })?
                } else {
                    stored
                };
                let mut line = json!({
                    "ShardId": shard_id,
                    "SequenceNumber": record["SequenceNumber"],
                    "PartitionKey": partition_key,
                    "Data": BASE64.encode(&data),
                });
                if args.decrypt {
                    line["Decrypted"] = json!(!plain);
                }
                println!("{line}");
                printed += 1;
            }
            iterator = out["NextShardIterator"].as_str().map(str::to_string);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_open_only_where_they_were_sealed() {
        let key = data_key(&[3u8; 32]).unwrap();
        let wrapped = vec![9u8; 150];
        let sealed = seal_record(&key, &wrapped, "orders", "p1", b"card 4111");
        assert!(!sealed.windows(9).any(|w| w == b"card 4111"));
        let (found, at) = parse_envelope(&sealed).unwrap();
        assert_eq!(found, &wrapped[..]);
        let open = |stream: &str, pk: &str, bytes: &[u8]| {
            envelope::open(
                &key,
                &associated_data(&bytes[..at], stream, pk),
                &bytes[at..],
            )
        };
        assert_eq!(open("orders", "p1", &sealed).unwrap(), b"card 4111");
        assert!(open("orders", "p2", &sealed).is_err());
        assert!(open("other", "p1", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            let opened = parse_envelope(&bad).and_then(|(_, at2)| {
                envelope::open(
                    &key,
                    &associated_data(&bad[..at2], "orders", "p1"),
                    &bad[at2..],
                )
                .map_err(anyhow::Error::from)
            });
            assert!(opened.is_err(), "byte {i}");
        }
        assert!(parse_envelope(b"plain text record").is_err());
    }

    #[test]
    fn stdin_lines_are_records_of_bounded_size() {
        let mut input = std::io::Cursor::new(b"one\ntwo\n\nlast".to_vec());
        let mut lines = Vec::new();
        while let Some(line) = next_line(&mut input).unwrap() {
            lines.push(line);
        }
        assert_eq!(
            lines,
            vec![b"one".to_vec(), b"two".to_vec(), vec![], b"last".to_vec()]
        );
        let long = vec![b'x'; protocol::limits::RECORD_BYTES_MAX + 10];
        assert!(next_line(&mut std::io::Cursor::new(long)).is_err());
        let exact = vec![b'x'; protocol::limits::RECORD_BYTES_MAX];
        assert_eq!(
            next_line(&mut std::io::Cursor::new(exact))
                .unwrap()
                .unwrap()
                .len(),
            protocol::limits::RECORD_BYTES_MAX
        );
    }
}
