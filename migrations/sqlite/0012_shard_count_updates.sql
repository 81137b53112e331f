-- UpdateShardCount calls per stream, for Kinesis's limit of 10 in any rolling 24 hours.
-- Rows older than a day are deleted by the next call on the same stream.
CREATE TABLE shard_count_updates (
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    at_ms BIGINT NOT NULL
);
CREATE INDEX shard_count_updates_by_stream ON shard_count_updates (stream_id, at_ms);
