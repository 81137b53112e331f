//! Every limit in one place, with the values AWS documents for Kinesis Data Streams.

/// Largest data blob of one record, and of data plus partition key together, unless the
/// stream says more (MaxRecordSizeInKiB)...
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// ...which it may, from 1024 up to 10240 KiB.
pub const MAX_RECORD_SIZE_KIB_MIN: i64 = 1024;
pub const MAX_RECORD_SIZE_KIB_MAX: i64 = 10240;
/// The largest record any stream takes.
pub const RECORD_BYTES_CEILING: usize = MAX_RECORD_SIZE_KIB_MAX as usize * 1024;
/// Partition keys are 1..=256 Unicode characters.
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
/// One PutRecords call carries at most 500 records...
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// ...and at most 10 MiB of data and partition keys (AWS's limit since records may be
/// 10 MiB).
pub const PUT_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Stream names are 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub const STREAM_NAME_CHARS_MAX: usize = 128;
/// GetRecords returns at most this many records per call, and at most this many bytes.
pub const GET_RECORDS_LIMIT_MAX: i64 = 10_000;
pub const GET_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Shard iterators live five minutes.
pub const SHARD_ITERATOR_TTL_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// Shard iterators are strings of at most 512 characters.
pub const SHARD_ITERATOR_CHARS_MAX: usize = 512;
/// Retention is 24 hours by default, and between 24 hours and 365 days.
pub const RETENTION_HOURS_DEFAULT: i64 = 24;
pub const RETENTION_HOURS_MIN: i64 = 24;
pub const RETENTION_HOURS_MAX: i64 = 8760;
/// Open shards per account (AWS's default quota in most regions).
pub const ACCOUNT_SHARDS_MAX_DEFAULT: i64 = 200;
/// On-demand streams per account (AWS's default quota); provisioned streams are
/// bounded by the shard limit, each having at least one shard.
pub const ACCOUNT_ON_DEMAND_STREAMS_MAX_DEFAULT: i64 = 50;
/// Shards of a new on-demand stream.
pub const ON_DEMAND_INITIAL_SHARDS: i64 = 4;
/// Tags: 50 per stream (the per-call bounds are in `constraints.rs`), keys 1..=128,
/// values 0..=256.
pub const TAGS_PER_STREAM_MAX: usize = 50;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// ListStreams, ListShards, DescribeStream and ListTagsForStream page sizes.
pub const LIST_STREAMS_LIMIT_MAX: i64 = 10_000;
pub const LIST_STREAMS_LIMIT_DEFAULT: i64 = 100;
pub const LIST_SHARDS_MAX_RESULTS_MAX: i64 = 10_000;
pub const LIST_SHARDS_MAX_RESULTS_DEFAULT: i64 = 1_000;
pub const DESCRIBE_STREAM_LIMIT_MAX: i64 = 10_000;
pub const DESCRIBE_STREAM_LIMIT_DEFAULT: i64 = 100;
pub const LIST_TAGS_LIMIT_MAX: i64 = 50;
/// Largest request body accepted: a full PutRecords in JSON is 10 MiB of data as base64
/// (4/3 of it) plus per-record framing.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

// The limits that relate must agree.
const _: () = assert!(RECORD_BYTES_MAX <= PUT_RECORDS_BYTES_MAX);
const _: () = assert!(PUT_RECORDS_BYTES_MAX * 4 / 3 + 512 * 1024 < REQUEST_BODY_BYTES_MAX);
const _: () = assert!(RECORD_BYTES_CEILING <= GET_RECORDS_BYTES_MAX);
const _: () = assert!(RECORD_BYTES_CEILING <= PUT_RECORDS_BYTES_MAX);
const _: () = assert!(RETENTION_HOURS_MIN <= RETENTION_HOURS_DEFAULT);
const _: () = assert!(RETENTION_HOURS_DEFAULT <= RETENTION_HOURS_MAX);
/// Shards of one stream, open at once: UpdateShardCount scales to at most this many.
pub const STREAM_SHARDS_MAX: i64 = 10_000;
/// Enhanced fan-out consumers registered to one stream at once.
pub const CONSUMERS_PER_STREAM_MAX: i64 = 20;
/// ListStreamConsumers pages hold at most this many (and 100 by default).
pub const LIST_CONSUMERS_MAX_RESULTS_MAX: i64 = 10_000;
pub const LIST_CONSUMERS_MAX_RESULTS_DEFAULT: i64 = 100;
/// A SubscribeToShard subscription lasts five minutes.
pub const SUBSCRIPTION_MS: u64 = 5 * 60 * 1000;
/// UpdateShardCount calls per stream in any rolling 24 hours.
pub const UPDATE_SHARD_COUNT_PER_DAY: i64 = 10;
