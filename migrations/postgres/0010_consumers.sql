-- Enhanced fan-out consumers: registered per stream (at most 20), each with its own
-- read throughput through SubscribeToShard. A consumer is CREATING until
-- active_at_ms, then ACTIVE; deregistering deletes it. Its consumer-shard-hours are
-- metered as 'consumer' intervals in usage_intervals (shard_ordinal holds its id).
CREATE TABLE stream_consumers (
    consumer_id BIGINT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    consumer_name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    active_at_ms BIGINT NOT NULL,
    UNIQUE (stream_id, consumer_name)
);
