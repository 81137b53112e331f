-- SQS queue keys (migration 0026): the data keys that seal messages of queues with a
-- KmsMasterKeyId, each stored only wrapped under a version of that KMS key. A message
-- names the data key it is sealed under (NULL: sealed under the root key, as queues
-- with SQS-managed encryption are). Keys are of an account, not of a queue: a message
-- keeps its key when it moves to a dead-letter queue and back.
CREATE TABLE sqs_data_keys (
    data_key_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    -- the queue whose sender made it (for the record; a key opens wherever its
    -- messages are)
    queue_id BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    master_key_version BIGINT NOT NULL,
    key_wrapped BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX sqs_data_keys_by_age ON sqs_data_keys (created_at_ms);
ALTER TABLE sqs_messages ADD COLUMN data_key_id BIGINT;
