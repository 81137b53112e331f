//! The member constraints of botocore's current Kinesis model, per input (`Checked`),
//! checked together by `checks::Checks` before an operation runs. Constraints that need
//! state (a stream's retention, a shard that exists) stay with the operations.

use crate::checks::{Checked, Checks, is_decimal};
use crate::limits;
use crate::model::*;

const NAME_MAX: usize = limits::STREAM_NAME_CHARS_MAX;
const ITERATOR_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];
/// Hash keys are 0..2^128-1: at most 39 decimal digits.
const HASH_KEY_DIGITS: usize = 39;
/// Sequence numbers: at most 129 decimal digits, as the model's pattern says.
const SEQUENCE_DIGITS: usize = 129;
/// Tags one AddTagsToStream or RemoveTagsFromStream call takes: 10, as Kinesis has
/// long answered (the current model allows larger maps); a stream holds 50 at most.
const TAGS_PER_ADD_MAX: usize = 10;
const TAG_KEYS_PER_REMOVE_MAX: usize = 10;
/// Tags CreateStream takes, as the current model bounds them.
const TAGS_PER_CREATE_MAX: usize = 200;

fn stream_name(c: &mut Checks, name: &Option<String>) {
    c.name(name.as_deref(), "streamName", NAME_MAX);
}

fn decimal(c: &mut Checks, value: &Option<String>, member: &str, digits: usize) {
    if let Some(v) = value {
        c.pattern(
            Some(v),
            member,
            is_decimal(v, digits),
            &format!("0|([1-9]\\d{{0,{}}})", digits - 1),
        );
    }
}

impl Checked for CreateStreamInput {
    fn check(&self, c: &mut Checks) {
        c.required(&self.stream_name, "streamName");
        stream_name(c, &self.stream_name);
        c.range(self.shard_count, "shardCount", 1, i64::MAX);
        c.map(
            self.tags.as_ref(),
            "tags",
            (1, TAGS_PER_CREATE_MAX),
            limits::TAG_KEY_CHARS_MAX,
            limits::TAG_VALUE_CHARS_MAX,
        );
    }
}

impl Checked for AddTagsToStreamInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.tags, "tags");
        c.map(
            self.tags.as_ref(),
            "tags",
            (1, TAGS_PER_ADD_MAX),
            limits::TAG_KEY_CHARS_MAX,
            limits::TAG_VALUE_CHARS_MAX,
        );
    }
}

impl Checked for RemoveTagsFromStreamInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.tag_keys, "tagKeys");
        c.count(
            self.tag_keys.as_deref(),
            "tagKeys",
            1,
            TAG_KEYS_PER_REMOVE_MAX,
        );
        if let Some(keys) = &self.tag_keys
            && keys
                .iter()
                .any(|k| k.is_empty() || k.chars().count() > limits::TAG_KEY_CHARS_MAX)
        {
            c.fail(
                Some(&crate::checks::list(keys)),
                "tagKeys",
                "Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]",
            );
        }
    }
}

impl Checked for ListTagsForStreamInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.length(
            self.exclusive_start_tag_key.as_deref(),
            "exclusiveStartTagKey",
            1,
            limits::TAG_KEY_CHARS_MAX,
        );
        c.range(self.limit, "limit", 1, limits::LIST_TAGS_LIMIT_MAX);
    }
}

impl Checked for RetentionInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.retention_period_hours, "retentionPeriodHours");
    }
}

impl Checked for DescribeStreamInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.range(self.limit, "limit", 1, limits::DESCRIBE_STREAM_LIMIT_MAX);
        c.name(
            self.exclusive_start_shard_id.as_deref(),
            "exclusiveStartShardId",
            NAME_MAX,
        );
    }
}

impl Checked for ListStreamsInput {
    fn check(&self, c: &mut Checks) {
        c.range(self.limit, "limit", 1, limits::LIST_STREAMS_LIMIT_MAX);
        c.name(
            self.exclusive_start_stream_name.as_deref(),
            "exclusiveStartStreamName",
            NAME_MAX,
        );
        c.length(self.next_token.as_deref(), "nextToken", 1, 1_048_576);
    }
}

impl Checked for ListShardsInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.length(self.next_token.as_deref(), "nextToken", 1, 1_048_576);
        c.name(
            self.exclusive_start_shard_id.as_deref(),
            "exclusiveStartShardId",
            NAME_MAX,
        );
        c.range(
            self.max_results,
            "maxResults",
            1,
            limits::LIST_SHARDS_MAX_RESULTS_MAX,
        );
    }
}

impl Checked for PutRecordInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.data, "data");
        c.required(&self.partition_key, "partitionKey");
        c.length(
            self.partition_key.as_deref(),
            "partitionKey",
            1,
            limits::PARTITION_KEY_CHARS_MAX,
        );
        decimal(
            c,
            &self.explicit_hash_key,
            "explicitHashKey",
            HASH_KEY_DIGITS,
        );
        decimal(
            c,
            &self.sequence_number_for_ordering,
            "sequenceNumberForOrdering",
            SEQUENCE_DIGITS,
        );
    }
}

impl Checked for PutRecordsInput {
    fn check(&self, c: &mut Checks) {
        c.required(&self.records, "records");
        if let Some(records) = &self.records {
            let n = records.len();
            if n == 0 {
                c.fail(
                    Some("[]"),
                    "records",
                    "Member must have length greater than or equal to 1",
                );
            } else if n > limits::PUT_RECORDS_COUNT_MAX {
                c.fail(
                    Some(&format!("{n} records")),
                    "records",
                    "Member must have length less than or equal to 500",
                );
            }
            // Each entry's members, in order (the message lists the first ten failures).
            for (i, r) in records.iter().enumerate() {
                let member = |m: &str| format!("records.{}.member.{m}", i + 1);
                c.required(&r.data, &member("data"));
                c.required(&r.partition_key, &member("partitionKey"));
                c.length(
                    r.partition_key.as_deref(),
                    &member("partitionKey"),
                    1,
                    limits::PARTITION_KEY_CHARS_MAX,
                );
                decimal(
                    c,
                    &r.explicit_hash_key,
                    &member("explicitHashKey"),
                    HASH_KEY_DIGITS,
                );
            }
        }
        stream_name(c, &self.stream_name);
    }
}

impl Checked for GetShardIteratorInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.shard_id, "shardId");
        c.name(self.shard_id.as_deref(), "shardId", NAME_MAX);
        c.required(&self.shard_iterator_type, "shardIteratorType");
        c.one_of(
            self.shard_iterator_type.as_deref(),
            "shardIteratorType",
            &ITERATOR_TYPES,
        );
        decimal(
            c,
            &self.starting_sequence_number,
            "startingSequenceNumber",
            SEQUENCE_DIGITS,
        );
    }
}

impl Checked for GetRecordsInput {
    fn check(&self, c: &mut Checks) {
        c.required(&self.shard_iterator, "shardIterator");
        c.length(
            self.shard_iterator.as_deref(),
            "shardIterator",
            1,
            limits::SHARD_ITERATOR_CHARS_MAX,
        );
        c.range(self.limit, "limit", 1, limits::GET_RECORDS_LIMIT_MAX);
    }
}

impl Checked for SplitShardInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.shard_to_split, "shardToSplit");
        c.name(self.shard_to_split.as_deref(), "shardToSplit", NAME_MAX);
        c.required(&self.new_starting_hash_key, "newStartingHashKey");
        decimal(
            c,
            &self.new_starting_hash_key,
            "newStartingHashKey",
            HASH_KEY_DIGITS,
        );
    }
}

impl Checked for MergeShardsInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.shard_to_merge, "shardToMerge");
        c.name(self.shard_to_merge.as_deref(), "shardToMerge", NAME_MAX);
        c.required(&self.adjacent_shard_to_merge, "adjacentShardToMerge");
        c.name(
            self.adjacent_shard_to_merge.as_deref(),
            "adjacentShardToMerge",
            NAME_MAX,
        );
    }
}

impl Checked for DeleteStreamInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
    }
}

impl Checked for StreamOnlyInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
    }
}

impl Checked for UpdateShardCountInput {
    fn check(&self, c: &mut Checks) {
        stream_name(c, &self.stream_name);
        c.required(&self.target_shard_count, "targetShardCount");
        c.range(self.target_shard_count, "targetShardCount", 1, i64::MAX);
        c.required(&self.scaling_type, "scalingType");
        c.one_of(
            self.scaling_type.as_deref(),
            "scalingType",
            &["UNIFORM_SCALING"],
        );
    }
}
