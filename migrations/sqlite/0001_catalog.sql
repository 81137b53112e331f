-- The catalog: accounts, streams, shards, tags, the log's chunk index and server secrets.
-- Hash keys are 128-bit, so they are stored as decimal text; sequence counters are
-- per-shard 63-bit integers (see protocol::sequence).

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    open_shard_count BIGINT NOT NULL DEFAULT 0,
    on_demand_stream_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE streams (
    stream_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    stream_name TEXT NOT NULL,
    status TEXT NOT NULL,
    stream_mode TEXT NOT NULL,
    retention_hours BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    encryption_type TEXT NOT NULL DEFAULT 'NONE',
    key_id TEXT,
    UNIQUE (account_id, stream_name)
);

CREATE TABLE shards (
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    hash_key_start TEXT NOT NULL,
    hash_key_end TEXT NOT NULL,
    parent_ordinal BIGINT,
    adjacent_parent_ordinal BIGINT,
    created_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    -- the counter the next record of this shard gets; starts at 1
    next_sequence BIGINT NOT NULL,
    PRIMARY KEY (stream_id, shard_ordinal)
);

CREATE TABLE stream_tags (
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (stream_id, tag_key)
);

-- One row per chunk: the records first_sequence..=last_sequence of one shard, stored at
-- (object_key, byte_offset, byte_length) in the object store.
CREATE TABLE chunks (
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    first_sequence BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL,
    first_arrival_ms BIGINT NOT NULL,
    last_arrival_ms BIGINT NOT NULL,
    object_key TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    byte_length BIGINT NOT NULL,
    data_key_id BIGINT,
    PRIMARY KEY (stream_id, shard_ordinal, first_sequence)
);
CREATE INDEX chunks_by_last_sequence ON chunks (stream_id, shard_ordinal, last_sequence);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
