-- Kinesis queues (CreateQueue, ReceiveQueueRecords, ...): a queue delivers the records
-- of its streams one by one, with visibility timeouts and built-in dead letters. Per
-- shard a cursor says which records were handed out; a record handed out and not yet
-- acknowledged has a row (in flight, visible again, or dead).
CREATE TABLE kinesis_queues (
    queue_id BIGINT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    visibility_timeout_s BIGINT NOT NULL,
    -- 1: BUILT_IN dead-letter handling after max_receive_count receives; 0: NONE
    dead_letter BIGINT NOT NULL,
    max_receive_count BIGINT NOT NULL,
    UNIQUE (account_id, queue_name)
);

CREATE TABLE kinesis_queue_streams (
    queue_id BIGINT NOT NULL REFERENCES kinesis_queues(queue_id) ON DELETE CASCADE,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    start_type TEXT NOT NULL,
    start_timestamp_ms BIGINT,
    PRIMARY KEY (queue_id, stream_id)
);

CREATE TABLE kinesis_queue_tags (
    queue_id BIGINT NOT NULL REFERENCES kinesis_queues(queue_id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (queue_id, tag_key)
);

CREATE TABLE kinesis_queue_cursors (
    queue_id BIGINT NOT NULL REFERENCES kinesis_queues(queue_id) ON DELETE CASCADE,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    -- The counter of the next record of the shard to hand out.
    next_counter BIGINT NOT NULL,
    PRIMARY KEY (queue_id, stream_id, shard_ordinal)
);

CREATE TABLE kinesis_queue_records (
    queue_id BIGINT NOT NULL REFERENCES kinesis_queues(queue_id) ON DELETE CASCADE,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    receive_count BIGINT NOT NULL,
    first_receive_ms BIGINT NOT NULL,
    visible_at_ms BIGINT NOT NULL,
    -- 1 once it became a dead-letter record
    dead BIGINT NOT NULL,
    PRIMARY KEY (queue_id, stream_id, shard_ordinal, counter)
);
CREATE INDEX kinesis_queue_records_visible ON kinesis_queue_records (queue_id, dead, visible_at_ms);
