-- SQS message move tasks (migration 0025): where a dead-lettered message came from,
-- and the tasks that move messages from a dead-letter queue back.
ALTER TABLE sqs_messages ADD COLUMN dead_letter_source_id BIGINT;

CREATE TABLE sqs_move_tasks (
    task_handle TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    source_queue_id BIGINT NOT NULL,
    source_arn TEXT NOT NULL,
    -- NULL: each message back to the queue it was dead-lettered from
    destination_arn TEXT,
    destination_queue_id BIGINT,
    max_per_second BIGINT,
    -- RUNNING, CANCELLING, CANCELLED, COMPLETED or FAILED
    status TEXT NOT NULL,
    moved BIGINT NOT NULL,
    to_move BIGINT NOT NULL,
    failure_reason TEXT,
    started_at_ms BIGINT NOT NULL,
    -- the mover's heartbeat: a RUNNING task not heard from for a minute has failed
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX sqs_move_tasks_by_source ON sqs_move_tasks (source_queue_id, started_at_ms);
