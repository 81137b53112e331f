-- SQS (migration 0023): queues and their messages. A message's body and attributes
-- are sealed before they get here; what is in the clear is what receiving needs:
-- when the message is visible again, when it expires, how often it was received, and
-- the token of its latest receive (a receipt handle names it).
CREATE TABLE sqs_queues (
    queue_id BIGINT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON: the settable attributes as given (defaults are applied when read)
    attributes TEXT NOT NULL,
    -- JSON: tag key -> value
    tags TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- the last PurgeQueue (0: never): messages sent before it are gone, and another
    -- purge waits 60 s
    purged_at_ms BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE sqs_messages (
    queue_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at_ms BIGINT NOT NULL,
    -- received only at or after this (delay, visibility timeout)
    visible_at_ms BIGINT NOT NULL,
    -- gone after this (the queue's retention when it was sent)
    expires_at_ms BIGINT NOT NULL,
    receive_count BIGINT NOT NULL,
    first_received_at_ms BIGINT,
    -- the latest receive's token; a receipt handle carries it
    receipt_token TEXT,
    sealed BLOB NOT NULL,
    md5_of_body TEXT NOT NULL,
    md5_of_attributes TEXT,
    sender_id TEXT NOT NULL,
    PRIMARY KEY (queue_id, message_id)
);
CREATE INDEX sqs_messages_by_visibility ON sqs_messages (queue_id, visible_at_ms, sent_at_ms);
