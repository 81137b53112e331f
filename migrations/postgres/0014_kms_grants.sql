-- KMS grants (CreateGrant): each lets its grantee use one key for the listed operations,
-- optionally only under an encryption context. The authorizer turns every grant of a
-- tenant into a Cedar permit beside the tenant's policies.
-- operations: the grant's operations, comma-separated, in KMS's names.
-- constraint_kind: NULL, 'subset' (EncryptionContextSubset) or 'equals'
--   (EncryptionContextEquals); constraint_pairs: its pairs as a JSON object.
CREATE TABLE kms_grants (
    account_id TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES kms_keys(key_id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    grantee TEXT NOT NULL,
    retiring TEXT,
    operations TEXT NOT NULL,
    constraint_kind TEXT,
    constraint_pairs TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, grant_id)
);
CREATE INDEX kms_grants_by_key ON kms_grants (account_id, key_id);
CREATE INDEX kms_grants_by_retiring ON kms_grants (account_id, retiring);

-- Changes to a tenant's grants: with the count of policy versions, the tenant's policy
-- generation, so that every process reloads a tenant's permits when its grants change.
CREATE TABLE grant_changes (
    account_id TEXT NOT NULL PRIMARY KEY,
    changes BIGINT NOT NULL
);

-- Keys of every KMS kind: key_spec and key_usage as KMS names them (SYMMETRIC_DEFAULT /
-- ENCRYPT_DECRYPT for every key made before). An asymmetric key's material is its
-- private key in PKCS #8; an HMAC key's, its secret; either sealed like any material.
ALTER TABLE kms_keys ADD COLUMN key_spec TEXT NOT NULL DEFAULT 'SYMMETRIC_DEFAULT';
ALTER TABLE kms_keys ADD COLUMN key_usage TEXT NOT NULL DEFAULT 'ENCRYPT_DECRYPT';
-- How a version after the first came: 'AUTOMATIC' or 'ON_DEMAND' (ListKeyRotations).
ALTER TABLE kms_key_versions ADD COLUMN rotation_type TEXT;

-- GetKeyLastUsage: the last successful cryptographic operation with each key, and since
-- when that is tracked (a key's creation, or this migration for older keys).
ALTER TABLE kms_keys ADD COLUMN usage_tracked_from_ms BIGINT;
UPDATE kms_keys SET usage_tracked_from_ms = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT);
ALTER TABLE kms_keys ADD COLUMN last_used_operation TEXT;
ALTER TABLE kms_keys ADD COLUMN last_used_at_ms BIGINT;
ALTER TABLE kms_keys ADD COLUMN last_used_request_id TEXT;

-- Imported key material (CreateKey with Origin EXTERNAL): origin is AWS_KMS or
-- EXTERNAL; an EXTERNAL key is PendingImport until ImportKeyMaterial gives it material,
-- which may expire (material_expires_ms) and must be the same material on re-import
-- (material_fingerprint, SHA-256 over the key id and the material, never the material).
ALTER TABLE kms_keys ADD COLUMN origin TEXT NOT NULL DEFAULT 'AWS_KMS';
ALTER TABLE kms_keys ADD COLUMN material_expires_ms BIGINT;
ALTER TABLE kms_keys ADD COLUMN material_fingerprint TEXT;

-- GetParametersForImport's wrapping keys: each RSA private key sealed under the root
-- key, usable by ImportKeyMaterial with its token until valid_to_ms.
CREATE TABLE kms_import_tokens (
    token TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES kms_keys(key_id) ON DELETE CASCADE,
    wrapping_algorithm TEXT NOT NULL,
    wrapping_key_sealed BYTEA NOT NULL,
    valid_to_ms BIGINT NOT NULL
);
CREATE INDEX kms_import_tokens_by_key ON kms_import_tokens (key_id);
