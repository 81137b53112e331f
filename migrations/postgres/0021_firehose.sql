-- Firehose (migration 0021). A DirectPut delivery stream buffers its records in a
-- stream of its own, which the Firehose service owns: Kinesis's APIs never list it,
-- its shards count against no Kinesis limit and bill no shard-hours (what it takes in
-- bills as Firehose ingestion). A KinesisStreamAsSource delivery stream reads a
-- tenant's stream. Either way, per shard, a position says what was delivered.
ALTER TABLE streams ADD COLUMN owner TEXT;

CREATE TABLE delivery_streams (
    delivery_stream_id BIGINT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- DirectPut or KinesisStreamAsSource
    stream_type TEXT NOT NULL,
    -- the stream its records are read from: its own buffer, or the source stream
    stream_id BIGINT NOT NULL,
    -- the destination's version (UpdateDestination's CurrentDeliveryStreamVersionId)
    version_id BIGINT NOT NULL,
    -- source and destination as the API gave them (JSON; it names connections, never
    -- holds their secrets)
    config TEXT NOT NULL,
    -- server-side encryption: ENABLED or DISABLED, with the key it uses
    encryption_status TEXT NOT NULL,
    encryption_key_type TEXT,
    encryption_key_arn TEXT,
    -- the process delivering it, until when (a delivery is fenced by it)
    lease_owner TEXT,
    lease_until_ms BIGINT NOT NULL,
    -- the name of the buffer being delivered, while one is: after a crash the same
    -- records go to the same object again, so a restart repeats no buffer
    pending_object TEXT,
    UNIQUE (account_id, name)
);

CREATE TABLE delivery_stream_tags (
    delivery_stream_id BIGINT NOT NULL REFERENCES delivery_streams(delivery_stream_id) ON DELETE CASCADE,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (delivery_stream_id, tag_key)
);

CREATE TABLE delivery_positions (
    delivery_stream_id BIGINT NOT NULL REFERENCES delivery_streams(delivery_stream_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    -- the counter of the shard's next record to deliver
    next_counter BIGINT NOT NULL,
    -- while a buffer is being delivered: where its records of this shard end
    pending_until BIGINT,
    PRIMARY KEY (delivery_stream_id, shard_ordinal)
);

-- Where a tenant's destinations are and how to sign in to them: a RoleARN
-- arn:aws:iam::ACCOUNT:role/NAME in a destination names one. Its secrets are sealed.
CREATE TABLE connections (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON: endpoints and key ids, never a secret
    settings TEXT NOT NULL,
    secrets_sealed BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
