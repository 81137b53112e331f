-- Consumer groups (Sluice's own API): a group of a stream has members that heartbeat;
-- each shard of the stream has a row per group with its lease (owner, fencing
-- counter), a rebalance's request to give the lease up, and the group's checkpoint.
CREATE TABLE consumer_groups (
    group_id BIGINT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    -- TRIM_HORIZON or AT_TIMESTAMP: where a shard with no checkpoint is read from
    -- (a LATEST group is stored as checkpoints at the shards' tips when it was made).
    start_type TEXT NOT NULL,
    start_timestamp_ms BIGINT,
    lease_timeout_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Advances with every change of the group's leases (and serializes changes).
    generation BIGINT NOT NULL,
    UNIQUE (stream_id, group_name)
);

CREATE TABLE consumer_group_members (
    group_id BIGINT NOT NULL REFERENCES consumer_groups(group_id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_name TEXT NOT NULL,
    joined_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);

CREATE TABLE consumer_group_shards (
    group_id BIGINT NOT NULL REFERENCES consumer_groups(group_id) ON DELETE CASCADE,
    shard_ordinal BIGINT NOT NULL,
    -- The member holding the lease; NULL: free.
    owner TEXT,
    -- Advances each time the lease is given to a member; a checkpoint must name it.
    lease_counter BIGINT NOT NULL,
    -- Set when a rebalance asked the owner to give the lease up.
    releasing_since_ms BIGINT,
    -- The shard counter of the last record processed; NULL: none yet.
    checkpoint_counter BIGINT,
    -- The last user record processed inside an aggregated record; NULL: all of it.
    checkpoint_sub BIGINT,
    -- 1 once the shard was read to its end (SHARD_END).
    finished BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, shard_ordinal)
);
