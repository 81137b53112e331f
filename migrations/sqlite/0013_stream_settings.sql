-- Kinesis's newer stream and account settings.
-- shard_level_metrics: EnableEnhancedMonitoring's metric names, comma-separated in the
--   documented order ('' = none), which turn on the per-shard Prometheus series.
-- record_distribution: USER_PARTITION_KEY (records go where their key hashes) or AUTO
--   (an on-demand stream spreads records over its shards whatever their keys).
ALTER TABLE streams ADD COLUMN shard_level_metrics TEXT NOT NULL DEFAULT '';
ALTER TABLE streams ADD COLUMN record_distribution TEXT NOT NULL DEFAULT 'USER_PARTITION_KEY';
-- warm_throughput_mibps: UpdateStreamWarmThroughput's target for an on-demand stream
--   (0 = none): the stream keeps at least enough shards to take it.
ALTER TABLE streams ADD COLUMN warm_throughput_mibps BIGINT NOT NULL DEFAULT 0;

-- Tags on enhanced fan-out consumers (TagResource by consumer ARN); a stream's own tags
-- are in stream_tags.
CREATE TABLE consumer_tags (
    consumer_id BIGINT NOT NULL REFERENCES stream_consumers(consumer_id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (consumer_id, tag_key)
);

-- The account's minimum throughput billing commitment (UpdateAccountSettings): enabled
-- from commitment_started_at_ms; a disable asked for before the 24-hour minimum ends is
-- recorded as commitment_ends_at_ms in the future, and enabling again clears it.
CREATE TABLE account_settings (
    account_id TEXT NOT NULL PRIMARY KEY,
    commitment_started_at_ms BIGINT,
    commitment_ends_at_ms BIGINT
);

-- Tags on KMS keys (CreateKey's Tags, TagResource); gone with their key.
CREATE TABLE kms_key_tags (
    key_id TEXT NOT NULL REFERENCES kms_keys(key_id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
