-- Idempotent puts: a PutRecord(s) carrying X-Sluice-Idempotency-Key is claimed here
-- before it runs and answered from here when retried within the window. The request
-- hash binds the key to one operation, principal, content type and body.
CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_sha256 BYTEA NOT NULL,
    -- NULL while the first request runs
    response BYTEA,
    claimed_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms);
