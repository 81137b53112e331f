-- SQS FIFO queues (migration 0024): a message's group, deduplication id and sequence
-- number; the deduplication ids seen in the last five minutes.
ALTER TABLE sqs_messages ADD COLUMN group_id TEXT;
ALTER TABLE sqs_messages ADD COLUMN dedup_id TEXT;
ALTER TABLE sqs_messages ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
-- the next sequence number a FIFO queue gives
ALTER TABLE sqs_queues ADD COLUMN next_seq BIGINT NOT NULL DEFAULT 1;

CREATE TABLE sqs_dedup (
    queue_id BIGINT NOT NULL,
    -- the message group with DeduplicationScope messageGroup, else ''
    scope_key TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, scope_key, dedup_id)
);
