-- Identity: tenants are accounts; principals (users and roles) belong to one; access
-- keys belong to a principal. A secret is stored only sealed under the root key
-- (AES-256-GCM, the access key id as associated data).

ALTER TABLE accounts ADD COLUMN tenant_name TEXT;
ALTER TABLE accounts ADD COLUMN created_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN disabled_at_ms BIGINT;
CREATE UNIQUE INDEX accounts_by_tenant_name ON accounts (tenant_name);

CREATE TABLE principals (
    principal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    kind TEXT NOT NULL,
    principal_name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    disabled_at_ms BIGINT,
    UNIQUE (account_id, kind, principal_name)
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    principal_id BIGINT NOT NULL REFERENCES principals(principal_id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX access_keys_by_principal ON access_keys (principal_id);
