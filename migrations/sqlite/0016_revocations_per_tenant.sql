-- A revocation belongs to the tenant that made it: one tenant naming another's token id
-- neither revokes that token nor keeps its owner from revoking it.
CREATE TABLE revoked_tokens_by_tenant (
    token_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, token_id)
);
INSERT INTO revoked_tokens_by_tenant (token_id, account_id, expires_at_ms, revoked_at_ms)
    SELECT token_id, account_id, expires_at_ms, revoked_at_ms FROM revoked_tokens;
DROP TABLE revoked_tokens;
ALTER TABLE revoked_tokens_by_tenant RENAME TO revoked_tokens;
