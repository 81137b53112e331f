-- The audit trail's tamper evidence and retention: see the SQLite migration of the
-- same number for the design.

CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head_batch BIGINT NOT NULL,
    head_hash BYTEA NOT NULL,
    pruned_batch BIGINT NOT NULL,
    pruned_through_id BIGINT NOT NULL,
    pruned_hash BYTEA NOT NULL,
    mac BYTEA
);
INSERT INTO audit_chain (id, head_batch, head_hash, pruned_batch, pruned_through_id, pruned_hash, mac)
    SELECT 1, 0, decode(repeat('00', 32), 'hex'), 0, COALESCE(MAX(id), 0),
           decode(repeat('00', 32), 'hex'), NULL FROM audit_log;

CREATE TABLE audit_batches (
    batch_id BIGINT PRIMARY KEY,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    last_at_ms BIGINT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    mac BYTEA NOT NULL
);

-- Rows may go only once retention has moved the chain's start past them; UPDATE and
-- TRUNCATE never.
DROP TRIGGER audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE FUNCTION audit_log_prune_only() RETURNS trigger AS $$
BEGIN
    IF OLD.id > (SELECT pruned_through_id FROM audit_chain WHERE id = 1) THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_prune_only();

CREATE TABLE audit_settings (
    account_id TEXT PRIMARY KEY,
    data_events BIGINT NOT NULL
);
