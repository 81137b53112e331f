-- The audit trail's tamper evidence and retention. Every appended batch of rows is
-- hashed into a chain (each batch's hash covers the previous one's and its rows), and
-- each batch and the chain's head carry a MAC under a key sealed by the root key, so
-- an edited, deleted or inserted row, or a rewritten batch, shows in `sluice audit
-- verify`. Retention removes whole batches from the oldest end; the chain then starts
-- at the last removed batch's hash (`pruned_*`). Rows from before the chain began
-- count as pruned: the chain covers what is written from now on.

CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head_batch BIGINT NOT NULL,
    head_hash BLOB NOT NULL,
    pruned_batch BIGINT NOT NULL,
    pruned_through_id BIGINT NOT NULL,
    pruned_hash BLOB NOT NULL,
    -- NULL until the first batch is appended
    mac BLOB
);
INSERT INTO audit_chain (id, head_batch, head_hash, pruned_batch, pruned_through_id, pruned_hash, mac)
    SELECT 1, 0, zeroblob(32), 0, COALESCE(MAX(id), 0), zeroblob(32), NULL FROM audit_log;

CREATE TABLE audit_batches (
    batch_id BIGINT PRIMARY KEY,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    last_at_ms BIGINT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL
);

-- Rows may go only once retention has moved the chain's start past them.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.id > (SELECT pruned_through_id FROM audit_chain WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Whether a tenant's allowed data events (PutRecord, GetRecords, ...) are audited.
CREATE TABLE audit_settings (
    account_id TEXT PRIMARY KEY,
    data_events BIGINT NOT NULL
);
