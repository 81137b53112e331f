//! Records in and out: PutRecord(s) routed by partition key through the shard limits
//! to the group-commit writer, GetShardIterator, GetRecords, and the pieces
//! SubscribeToShard shares with them.

use std::sync::Arc;

use catalog::chunks::ReadTarget;
use catalog::streams::shard_id;
use catalog::{Shard, Stream};
use edge::{Caller, Resource};
use protocol::arn::StreamArn;
use protocol::hash::HashKey;
use protocol::model::*;
use protocol::wire::{Blob, Timestamp};
use protocol::{ApiError, ErrorCode, SequenceNumber, limits, validate};
use storage::commit::PendingRecord;
use storage::reader;

use crate::iterator::ShardPosition;
use crate::monitoring::ShardMetrics;
use crate::state::*;

/// The largest record (data and partition key) `stream` takes, in bytes.
pub(crate) fn stream_record_bytes_max(stream: &Stream) -> usize {
    let kib = stream.max_record_size_kib.clamp(
        limits::MAX_RECORD_SIZE_KIB_MIN,
        limits::MAX_RECORD_SIZE_KIB_MAX,
    );
    kib as usize * 1024
}

/// Checks one record's members and picks its shard.
pub(crate) fn route_record(
    stream: &Stream,
    data: Option<Blob>,
    partition_key: Option<String>,
    explicit_hash_key: Option<&str>,
    member_prefix: &str,
) -> Result<PendingRecord, ApiError> {
    let member = |m: &str| format!("{member_prefix}{m}");
    let data = validate::required(data, &member("data"))?.0;
    let partition_key = validate::required(partition_key, &member("partitionKey"))?;
    let max = stream_record_bytes_max(stream);
    validate::data_within(&data, &member("data"), max)?;
    validate::partition_key(&partition_key, &member("partitionKey"))?;
    if data.len() + partition_key.len() > max {
        return Err(ApiError::invalid_argument(format!(
            "The record's data and partition key together are {} bytes; the limit is {max} bytes.",
            data.len() + partition_key.len(),
        )));
    }
    let hash_key = match explicit_hash_key {
        Some(text) => HashKey::parse_explicit(text)?,
        None => HashKey::of_partition_key(&partition_key),
    };
    // AUTO distribution spreads records over the shards whatever their keys say (a key
    // still has to be valid): a uniformly random hash key lands on each open shard in
    // proportion to its range, as the even layout of an on-demand stream wants.
    let hash_key = if stream.record_distribution == AUTO_DISTRIBUTION {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ApiError::internal())?;
        HashKey(u128::from_be_bytes(bytes))
    } else {
        hash_key
    };
    let shard = stream.route(hash_key).ok_or_else(|| {
        // INVARIANT: open shards cover the key space; a miss means the catalog changed
        // under a cached stream, so the caller may retry.
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The stream's shards are changing; retry the request.",
        )
    })?;
    Ok(PendingRecord {
        shard_ordinal: shard.ordinal,
        hash_key,
        partition_key,
        data,
    })
}

/// How many times a record whose shard closed under it is routed again.
pub(crate) const REROUTES_MAX: usize = 4;

/// Each record's shard and sequence number, or why it was not written.
pub(crate) type Appended = Vec<Result<(u64, SequenceNumber), ApiError>>;

/// Appends routed records; a record whose shard a reshard closed between routing and
/// commit is routed again over the stream's shards as the catalog has them now (the
/// child that holds its hash key) and appended again. Results are in input order.
pub(crate) async fn append_routed(
    state: &Kinesis,
    caller: &Caller,
    stream: &Stream,
    records: Vec<PendingRecord>,
) -> Result<Appended, ApiError> {
    let account = caller.account_id.as_str();
    let mut results: Vec<Option<Result<(u64, SequenceNumber), ApiError>>> =
        (0..records.len()).map(|_| None).collect();
    let mut pending: Vec<(usize, PendingRecord)> = records.into_iter().enumerate().collect();
    let mut current: Option<Arc<Stream>> = None;
    for _ in 0..=REROUTES_MAX {
        if pending.is_empty() {
            break;
        }
        let (stream_id, name) = match &current {
            Some(s) => (s.id, s.name.as_str()),
            None => (stream.id, stream.name.as_str()),
        };
        let (places, batch): (Vec<usize>, Vec<PendingRecord>) = pending.into_iter().unzip();
        let shards: Vec<u64> = batch.iter().map(|r| r.shard_ordinal).collect();
        let answers = state
            .committer
            .append(stream_id, name, account, batch)
            .await?;
        pending = Vec::new();
        let routed_by = current.as_deref().unwrap_or(stream);
        for ((place, shard), answer) in places.into_iter().zip(shards).zip(answers) {
            match answer {
                Ok(appended) => {
                    // INVARIANT: a record is written to a shard of the stream it was
                    // routed over, and a shard's creation time never changes.
                    let created_ms = routed_by.shard(shard).map_or(0, |s| s.created_at_ms);
                    let seq = SequenceNumber::record(
                        shard,
                        appended.counter(),
                        created_ms,
                        appended.arrival_ms(),
                    );
                    results[place] = Some(Ok((shard, seq)))
                }
                Err(storage::commit::AppendError::Refused(e)) => results[place] = Some(Err(e)),
                // Handed back by the writer, unacknowledged.
                Err(storage::commit::AppendError::ShardClosed(record)) => {
                    pending.push((place, *record))
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        state.streams.forget(account, &stream.name);
        let fresh = state
            .streams
            .get(&state.catalog, account, &stream.name)
            .await?;
        if fresh.id != stream.id {
            return Err(ApiError::stream_not_found(&stream.name, account));
        }
        writable(&fresh)?;
        for (_, record) in pending.iter_mut() {
            record.shard_ordinal = fresh
                .route(record.hash_key)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ServiceUnavailable,
                        "The stream's shards are changing; retry the request.",
                    )
                })?
                .ordinal;
        }
        current = Some(fresh);
    }
    for (place, _) in pending {
        results[place] = Some(Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The stream's shards are changing; retry the request.",
        )));
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every record gets an outcome"))
        .collect())
}

pub(crate) async fn put_record(
    state: &Kinesis,
    caller: &Caller,
    input: PutRecordInput,
) -> Result<PutRecordOutput, ApiError> {
    let name = state
        .stream_name(caller, "kinesis:PutRecord", input.stream())
        .await?;
    if let Some(ordering) = &input.sequence_number_for_ordering {
        SequenceNumber::check_pattern(ordering, "sequenceNumberForOrdering")?;
    }
    let stream = state
        .streams
        .get(&state.catalog, caller.account_id.as_str(), &name)
        .await?;
    writable(&stream)?;
    // Any number of Sluice's will do: the shard's commit order already puts the record
    // after every record acknowledged before it.
    if let Some(ordering) = &input.sequence_number_for_ordering
        && !SequenceNumber::orders(ordering)
    {
        return Err(ApiError::invalid_argument(format!(
            "ExclusiveMinimumSequenceNumber {ordering} used in PutRecord on stream {} under account {} is invalid.",
            stream.name, stream.account_id
        )));
    }
    state
        .keyring
        .check_stream_key(&stream.account_id, stream.master_key_id.as_deref())
        .await?;
    let record = route_record(
        &stream,
        input.data,
        input.partition_key,
        input.explicit_hash_key.as_deref(),
        "",
    )?;
    let shard = record.shard_ordinal;
    let bytes = (record.data.len() + record.partition_key.len()) as u64;
    if !state
        .throttle
        .admit_write(stream.id, shard, bytes)
        .await
        .map_err(api)?
    {
        ShardMetrics::of(&stream, shard).count("WriteProvisionedThroughputExceeded", 1);
        return Err(crate::throttle::exceeded(
            &stream.name,
            &caller.account_id,
            shard,
        ));
    }
    let mut results = append_routed(state, caller, &stream, vec![record]).await?;
    let (shard, sequence_number) = results.pop().expect("one result per record")?;
    ShardMetrics::of(&stream, shard).traffic(true, 1, bytes);
    Ok(PutRecordOutput {
        shard_id: shard_id(shard),
        sequence_number: sequence_number.to_string(),
        encryption_type: ENCRYPTION_TYPE.to_string(),
    })
}

pub(crate) async fn put_records(
    state: &Kinesis,
    caller: &Caller,
    input: PutRecordsInput,
) -> Result<PutRecordsOutput, ApiError> {
    let entries = validate::required(input.records, "records")?;
    if entries.is_empty() {
        return Err(ApiError::validation(
            "[]",
            "records",
            "Member must have length greater than or equal to 1",
        ));
    }
    if entries.len() > limits::PUT_RECORDS_COUNT_MAX {
        return Err(ApiError::validation(
            format!("{} records", entries.len()),
            "records",
            "Member must have length less than or equal to 500",
        ));
    }
    let name = state
        .stream_name(
            caller,
            "kinesis:PutRecords",
            StreamRef {
                stream_name: input.stream_name.as_deref(),
                stream_arn: input.stream_arn.as_deref(),
            },
        )
        .await?;
    let total: usize = entries
        .iter()
        .map(|e| {
            e.data.as_ref().map_or(0, |d| d.0.len())
                + e.partition_key.as_ref().map_or(0, String::len)
        })
        .sum();
    if total > limits::PUT_RECORDS_BYTES_MAX {
        return Err(ApiError::invalid_argument(format!(
            "Records size exceeds 10 MB limit: the request carries {total} bytes of data and partition keys."
        )));
    }
    let stream = state
        .streams
        .get(&state.catalog, caller.account_id.as_str(), &name)
        .await?;
    writable(&stream)?;
    state
        .keyring
        .check_stream_key(&stream.account_id, stream.master_key_id.as_deref())
        .await?;
    let mut records = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        records.push(route_record(
            &stream,
            entry.data,
            entry.partition_key,
            entry.explicit_hash_key.as_deref(),
            &format!("records.{}.member.", i + 1),
        )?);
    }
    let shards: Vec<u64> = records.iter().map(|r| r.shard_ordinal).collect();
    let sizes: Vec<u64> = records
        .iter()
        .map(|r| (r.data.len() + r.partition_key.len()) as u64)
        .collect();
    // Records over their shard's limit fail alone, with Kinesis's per-record error;
    // the rest are appended.
    let mut admitted = Vec::with_capacity(records.len());
    for r in &records {
        let bytes = (r.data.len() + r.partition_key.len()) as u64;
        admitted.push(
            state
                .throttle
                .admit_write(stream.id, r.shard_ordinal, bytes)
                .await
                .map_err(api)?,
        );
    }
    let to_append: Vec<PendingRecord> = records
        .into_iter()
        .zip(&admitted)
        .filter_map(|(r, &ok)| ok.then_some(r))
        .collect();
    let mut appended = if to_append.is_empty() {
        Vec::new()
    } else {
        append_routed(state, caller, &stream, to_append).await?
    }
    .into_iter();
    let results: Vec<Result<(u64, SequenceNumber), ApiError>> = admitted
        .iter()
        .zip(&shards)
        .map(|(&ok, &shard)| {
            if ok {
                appended.next().expect("one result per appended record")
            } else {
                ShardMetrics::of(&stream, shard).count("WriteProvisionedThroughputExceeded", 1);
                Err(crate::throttle::exceeded(
                    &stream.name,
                    &caller.account_id,
                    shard,
                ))
            }
        })
        .collect();
    for (result, size) in results.iter().zip(&sizes) {
        if let Ok((shard, _)) = result {
            ShardMetrics::of(&stream, *shard).traffic(true, 1, *size);
        }
    }
    if let Some(Err(e)) = results.first()
        && e.code == ErrorCode::ResourceNotFound
    {
        return Err(e.clone());
    }
    // Nothing written because the server could not write at all (its storage is full,
    // say): the whole call is retryable, as SDKs retry a 503, rather than per-record
    // failures Kinesis does not define.
    if let Some(Err(e)) = results.first()
        && e.code == ErrorCode::ServiceUnavailable
        && results
            .iter()
            .all(|r| matches!(r, Err(e) if e.code == ErrorCode::ServiceUnavailable))
    {
        return Err(e.clone());
    }
    let mut failed = 0;
    let out = results
        .into_iter()
        .zip(shards)
        .map(|(result, _)| match result {
            Ok((shard, seq)) => PutRecordsResultEntry {
                sequence_number: Some(seq.to_string()),
                shard_id: Some(shard_id(shard)),
                error_code: None,
                error_message: None,
            },
            Err(e) => {
                failed += 1;
                PutRecordsResultEntry {
                    sequence_number: None,
                    shard_id: None,
                    error_code: Some(e.code.type_name().to_string()),
                    error_message: Some(if e.code == ErrorCode::InternalFailure {
                        "Internal service failure.".to_string()
                    } else {
                        e.message
                    }),
                }
            }
        })
        .collect();
    Ok(PutRecordsOutput {
        failed_record_count: failed,
        records: out,
        encryption_type: ENCRYPTION_TYPE.to_string(),
    })
}

pub(crate) async fn get_shard_iterator(
    state: &Kinesis,
    caller: &Caller,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, ApiError> {
    let shard_id_text = validate::required(input.shard_id.clone(), "shardId")?;
    validate::shard_id(&shard_id_text, "shardId")?;
    let kind = validate::required(input.shard_iterator_type.clone(), "shardIteratorType")?;
    // As Kinesis: the shard id resolves first ("shardId-5", "5" and "any-5" all name
    // shard 5), and a stream that does not exist has no such shard either.
    let name_for_errors = input
        .stream_name
        .clone()
        .or_else(|| {
            input
                .stream_arn
                .as_deref()
                .and_then(|a| StreamArn::parse(a).ok())
                .map(|a| a.stream_name)
        })
        .unwrap_or_default();
    let ordinal = resolve_shard_id(&shard_id_text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Could not find shard {shard_id_text} in stream {name_for_errors} under account {}.",
                caller.account_id
            ),
        )
    })?;
    let missing_shard = |stream: &str| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Shard {} in stream {stream} under account {} does not exist",
                shard_id(ordinal),
                caller.account_id
            ),
        )
    };
    let starting = start_kind_and_sequence(
        &kind,
        input.starting_sequence_number.as_deref(),
        "shardIteratorType",
        "startingSequenceNumber",
    )?;
    let stream = match state
        .load(caller, "kinesis:GetShardIterator", input.stream())
        .await
    {
        Err(e) if e.code == ErrorCode::ResourceNotFound => {
            return Err(missing_shard(&name_for_errors));
        }
        other => other?,
    };
    writable(&stream)?;
    let shard = stream
        .shard(ordinal)
        .ok_or_else(|| missing_shard(&stream.name))?;
    let next_counter =
        start_counter(state, &stream, shard, &kind, starting, input.timestamp).await?;
    let position = ShardPosition {
        stream_id: stream.id,
        shard_ordinal: shard.ordinal,
        next_counter,
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: state.iterators.issue(
            caller.account_id.as_str(),
            &position,
            &stream.name,
            state.clock.now_ms(),
        ),
    })
}

/// A shard id as Kinesis reads it: the digits after the first hyphen (or the whole id
/// when it has none), at most 2^31 - 1; `None` when they are not that.
pub(crate) fn resolve_shard_id(text: &str) -> Option<u64> {
    let digits = match text.split('-').nth(1) {
        Some(after) if !after.is_empty() => after,
        _ => text,
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|&n| n <= i32::MAX as u64)
}

/// The position kinds GetShardIterator and SubscribeToShard take.
pub(crate) const START_KINDS: [&str; 5] = [
    "AFTER_SEQUENCE_NUMBER",
    "AT_SEQUENCE_NUMBER",
    "AT_TIMESTAMP",
    "TRIM_HORIZON",
    "LATEST",
];

/// Checks a start position's kind and its sequence number (which only the
/// *_SEQUENCE_NUMBER kinds take), naming the members as the operation does.
pub(crate) fn start_kind_and_sequence<'a>(
    kind: &str,
    starting: Option<&'a str>,
    kind_member: &str,
    sequence_member: &str,
) -> Result<Option<&'a str>, ApiError> {
    if !START_KINDS.contains(&kind) {
        return Err(ApiError::validation(
            kind,
            kind_member,
            "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]",
        ));
    }
    if let Some(text) = starting {
        SequenceNumber::check_pattern(text, sequence_member)?;
    }
    let takes_sequence = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
    // AWS's words, as the public emulator suites recorded them.
    const EITHER: &str = "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber.";
    if starting.is_some() && !takes_sequence {
        return Err(ApiError::invalid_argument(format!(
            "{EITHER} Request specified {kind} and also a StartingSequenceNumber."
        )));
    }
    if starting.is_none() && takes_sequence {
        return Err(ApiError::invalid_argument(format!(
            "{EITHER} Request specified {kind} and no StartingSequenceNumber."
        )));
    }
    Ok(starting)
}

/// The counter of the first record a read from this start position returns.
pub(crate) async fn start_counter(
    state: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    kind: &str,
    starting: Option<&str>,
    timestamp: Option<Timestamp>,
) -> Result<u64, ApiError> {
    let sequence = |kind: &str| {
        let text = starting.ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "StartingSequenceNumber is required for ShardIteratorType {kind}."
            ))
        })?;
        // AWS's words for a number that is not one, and for one of another shard.
        let invalid = || {
            ApiError::invalid_argument(format!(
                "StartingSequenceNumber {text} used in GetShardIterator on shard {} in stream {} under account {} is invalid.",
                shard.shard_id(),
                stream.name,
                stream.account_id
            ))
        };
        let seq = SequenceNumber::decode(text).ok_or_else(invalid)?;
        if seq.shard_ordinal() != shard.ordinal {
            return Err(ApiError::invalid_argument(format!(
                "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                seq.encoded_shard_id(),
                shard.shard_id()
            )));
        }
        // A closed shard's ending number follows all its records.
        if !shard.is_open() && seq.counter() == protocol::sequence::END_COUNTER {
            return Ok(None);
        }
        if seq.counter() >= shard.next_sequence {
            return Err(invalid());
        }
        Ok(Some(seq.counter()))
    };
    Ok(match kind {
        "TRIM_HORIZON" => 0,
        "LATEST" => shard.next_sequence,
        "AT_SEQUENCE_NUMBER" => sequence("AT_SEQUENCE_NUMBER")?.unwrap_or(shard.next_sequence),
        "AFTER_SEQUENCE_NUMBER" => {
            sequence("AFTER_SEQUENCE_NUMBER")?.map_or(shard.next_sequence, |c| c + 1)
        }
        "AT_TIMESTAMP" => {
            let at = timestamp.ok_or_else(|| {
                ApiError::invalid_argument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                )
            })?;
            let now = state.clock.now_ms();
            if at.epoch_ms > now {
                return Err(ApiError::invalid_argument(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {}, currentTimestampInMillis: {now}",
                    at.epoch_ms
                )));
            }
            first_counter_at(state, stream, shard, at.epoch_ms).await?
        }
        _ => unreachable!("checked against START_KINDS"),
    })
}

/// The counter of the first record that arrived at or after `at_ms`, or the shard's
/// tip when none has.
pub(crate) async fn first_counter_at(
    state: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    at_ms: i64,
) -> Result<u64, ApiError> {
    state
        .catalog
        .first_counter_at(stream.id, shard.ordinal, at_ms)
        .await
        .map_err(api)
}

pub(crate) async fn get_records(
    state: &Kinesis,
    caller: &Caller,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput, ApiError> {
    let iterator = validate::required(input.shard_iterator, "shardIterator")?;
    let limit = input.limit.unwrap_or(limits::GET_RECORDS_LIMIT_MAX);
    validate::int_range(limit, "limit", 1, limits::GET_RECORDS_LIMIT_MAX)?;
    if let Some(arn) = &input.stream_arn {
        StreamArn::parse(arn)?;
    }
    let now = state.clock.now_ms();
    let (position, issued_for) =
        state
            .iterators
            .open(caller.account_id.as_str(), &iterator, now)?;
    // The shard's row is read before its records: once it says closed, every record
    // the shard will ever hold is committed, so a read that reaches the end of its
    // chunks has read the shard to its end.
    let target = state
        .catalog
        .read_target(
            caller.account_id.as_str(),
            position.stream_id,
            position.shard_ordinal,
        )
        .await
        .map_err(api)?;
    let Some(target) = target else {
        // AWS names the shard and the stream; an iterator of the earlier version has no
        // name to give.
        let account = caller.account_id.as_str();
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            match issued_for {
                Some(name) => format!(
                    "Shard {} in stream {name} under account {account} does not exist",
                    shard_id(position.shard_ordinal)
                ),
                None => format!(
                    "The stream this shard iterator belongs to no longer exists under account {account}."
                ),
            },
        ));
    };
    let ReadTarget {
        retention_hours,
        stream_name,
        master_key_id,
        shard_closed: closed,
        shard_created_ms,
        shard_level_metrics,
        on_demand,
    } = target;
    let shard_metrics = ShardMetrics::new(
        &caller.account_id,
        &stream_name,
        &shard_level_metrics,
        position.shard_ordinal,
    );
    let stream_arn = state.arn(caller, &stream_name);
    state
        .authz
        .authorize(
            caller,
            "kinesis:GetRecords",
            Resource::Stream {
                account: &caller.account_id,
                arn: &stream_arn,
                name: &stream_name,
            },
        )
        .await?;
    state
        .keyring
        .check_stream_key(&caller.account_id, master_key_id.as_deref())
        .await?;
    if !state
        .throttle
        .admit_read(position.stream_id, position.shard_ordinal)
    {
        shard_metrics.count("ReadProvisionedThroughputExceeded", 1);
        return Err(crate::throttle::exceeded(
            &stream_name,
            &caller.account_id,
            position.shard_ordinal,
        ));
    }
    let read = reader::read_shard(
        &state.catalog,
        &state.store,
        &state.keyring,
        caller.account_id.as_str(),
        position.stream_id,
        position.shard_ordinal,
        position.next_counter,
        limit as usize,
        limits::GET_RECORDS_BYTES_MAX,
        now - retention_hours * 3_600_000,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, source = ?std::error::Error::source(&e), "shard read failed");
        crate::state::read_error(&e)
    })?;
    // A closed shard read to its end: no next iterator, and the shards its records
    // continue in.
    let child_shards = if closed && read.at_tip {
        Some(child_shards(state, position.stream_id, position.shard_ordinal).await?)
    } else {
        None
    };
    let millis_behind_latest = match (read.at_tip, read.records.last()) {
        (true, _) | (false, None) => 0,
        (false, Some(last)) => (now - last.record.arrival_ms).max(0),
    };
    let next = ShardPosition {
        next_counter: read.next_counter,
        ..position
    };
    state.throttle.charge_read(
        position.stream_id,
        position.shard_ordinal,
        read.records
            .iter()
            .map(|r| (r.record.data.len() + r.record.partition_key.len()) as u64)
            .sum(),
    );
    let bytes_out: u64 = read
        .records
        .iter()
        .map(|r| r.record.data.len() as u64)
        .sum();
    storage::traffic::stream_traffic(
        storage::traffic::Direction::Out,
        &caller.account_id,
        &stream_name,
        read.records.len() as u64,
        bytes_out,
    );
    shard_metrics.traffic(false, read.records.len() as u64, bytes_out);
    shard_metrics.iterator_age(millis_behind_latest);
    // An ON_DEMAND stream bills what is read; a failed meter write is logged, and the
    // records are returned all the same.
    if on_demand
        && bytes_out > 0
        && let Err(e) = state
            .catalog
            .meter_count_now(
                caller.account_id.as_str(),
                &stream_name,
                catalog::billing::Metric::OnDemandEgressGib,
                bytes_out,
                now,
            )
            .await
    {
        tracing::error!(error = %e, "metering an on-demand read failed");
    }
    Ok(GetRecordsOutput {
        records: records_out(position.shard_ordinal, shard_created_ms, read.records),
        next_shard_iterator: child_shards.is_none().then(|| {
            state
                .iterators
                .issue(caller.account_id.as_str(), &next, &stream_name, now)
        }),
        millis_behind_latest,
        child_shards,
    })
}

/// A shard's records as GetRecords and SubscribeToShard return them.
pub(crate) fn records_out(
    ordinal: u64,
    shard_created_ms: i64,
    records: Vec<reader::ShardRecord>,
) -> Vec<RecordOut> {
    records
        .into_iter()
        .map(|r| RecordOut {
            sequence_number: SequenceNumber::record(
                ordinal,
                r.counter,
                shard_created_ms,
                r.record.arrival_ms,
            )
            .to_string(),
            approximate_arrival_timestamp: Timestamp {
                epoch_ms: r.record.arrival_ms,
            },
            data: Blob(r.record.data),
            partition_key: r.record.partition_key,
            encryption_type: ENCRYPTION_TYPE,
        })
        .collect()
}

/// The shards that name `ordinal` as parent or adjacent parent, with both parents.
pub(crate) async fn child_shards(
    state: &Kinesis,
    stream_id: i64,
    ordinal: u64,
) -> Result<Vec<ChildShard>, ApiError> {
    Ok(state
        .catalog
        .child_shards(stream_id, ordinal)
        .await
        .map_err(api)?
        .into_iter()
        .map(|child| ChildShard {
            shard_id: child.shard_id,
            parent_shards: child.parent_shard_ids,
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: child.hash_key_start,
                ending_hash_key: child.hash_key_end,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::resolve_shard_id;

    #[test]
    fn shard_ids_resolve_as_kinesis_reads_them() {
        for (text, want) in [
            ("shardId-000000000001", Some(1)),
            ("shardId-1", Some(1)),
            ("1", Some(1)),
            ("anything-00002147483647", Some(2_147_483_647)),
            ("-7", Some(7)),
            ("2147483648", None),
            ("shardId-002147483648", None),
            ("ABKLFD8", None),
            ("2.14E4", None),
            ("shardId-", None),
            ("a-b-3", None),
        ] {
            assert_eq!(resolve_shard_id(text), want, "{text}");
        }
    }
}
