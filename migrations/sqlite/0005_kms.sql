-- KMS master keys: per tenant (account), with versions of key material and aliases.
-- Key material is stored only sealed under the root key, its associated data naming
-- the account, key id and version (see control_plane::masterkeys), so material copied
-- onto another row does not open. Rotation adds a version; older versions stay to
-- decrypt what they sealed. When a key's deletion date passes, the server's sweep
-- deletes its versions, aliases and row in one transaction: crypto-shredding.
--
-- key_state: Enabled, Disabled or PendingDeletion. key_manager: CUSTOMER, or AWS for
-- the service's own keys (alias/aws/...). Booleans are 0/1 integers, which both
-- dialects read alike through sqlx's Any driver.

CREATE TABLE kms_keys (
    key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    description TEXT NOT NULL,
    key_state TEXT NOT NULL,
    key_manager TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    deletion_date_ms BIGINT,
    pending_window_days BIGINT,
    rotation_enabled BIGINT NOT NULL DEFAULT 0,
    rotation_period_days BIGINT NOT NULL DEFAULT 365,
    next_rotation_ms BIGINT,
    current_version BIGINT NOT NULL,
    on_demand_rotations BIGINT NOT NULL DEFAULT 0,
    last_rotation_ms BIGINT
);
CREATE INDEX kms_keys_by_account ON kms_keys (account_id, key_id);
CREATE INDEX kms_keys_by_deletion ON kms_keys (deletion_date_ms);

CREATE TABLE kms_key_versions (
    key_id TEXT NOT NULL REFERENCES kms_keys(key_id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    material_sealed BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);

CREATE TABLE kms_aliases (
    account_id TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES kms_keys(key_id) ON DELETE CASCADE,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, alias_name)
);
CREATE INDEX kms_aliases_by_key ON kms_aliases (key_id);

-- Streams under tenant keys. A stream's data keys are wrapped under a version of its
-- master key: the key StartStreamEncryption named (streams.master_key_id, with the
-- KeyId as the caller gave it in streams.key_id), or, when none is named, the
-- account's default key `alias/aws/kinesis`, made on first use. A data key row names
-- the master key and version it is wrapped under; rows that name none are wrapped
-- under the root key (written before master keys existed).
ALTER TABLE streams ADD COLUMN master_key_id TEXT;
ALTER TABLE data_keys ADD COLUMN master_key_id TEXT;
ALTER TABLE data_keys ADD COLUMN master_key_version BIGINT;
