-- SQS FIFO receive attempts (migration 0027): what a ReceiveMessage with a
-- ReceiveRequestAttemptId handed out, so a retry with the same id within five minutes
-- gets the same messages under the same receipt handles.
CREATE TABLE sqs_receive_attempts (
    queue_id BIGINT NOT NULL,
    attempt_id TEXT NOT NULL,
    -- JSON: [[message id, receipt token], ...] in the order they were handed out
    messages TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, attempt_id)
);
