-- Bearer tokens: the Ed25519 keys that sign them (private halves sealed under the root
-- key, the key id as associated data) and the ids of revoked tokens until they expire.

CREATE TABLE token_signing_keys (
    kid TEXT PRIMARY KEY,
    private_sealed BYTEA NOT NULL,
    public_key BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- new tokens are signed with the newest key; a key verifies until this time
    verify_until_ms BIGINT NOT NULL
);

CREATE TABLE revoked_tokens (
    token_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NOT NULL
);
