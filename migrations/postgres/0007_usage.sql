-- Metering for billing. `usage_intervals` is a ledger of what was provisioned and when:
-- one row per shard from the moment it opens to the moment it closes (or its stream is
-- deleted), and one per stream retention setting. `usage_counters` holds what is counted
-- per hour (PUT payload units, KMS requests), added in the same transaction that
-- acknowledges the work. Neither is ever rewritten except to close an open interval.

CREATE TABLE usage_intervals (
    account_id TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    -- 'shard' or 'retention'
    kind TEXT NOT NULL,
    -- the shard's ordinal for 'shard'; -1 for 'retention'
    shard_ordinal BIGINT NOT NULL,
    -- the retention period for 'retention'; 0 for 'shard'
    retention_hours BIGINT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT
);
CREATE INDEX usage_intervals_by_account ON usage_intervals (account_id, opened_at_ms);
CREATE INDEX usage_intervals_open ON usage_intervals (stream_id, closed_at_ms);

CREATE TABLE usage_counters (
    account_id TEXT NOT NULL,
    -- '' for what belongs to no stream (KMS requests)
    stream_name TEXT NOT NULL,
    -- the start of the UTC hour counted
    hour_ms BIGINT NOT NULL,
    metric TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (account_id, stream_name, hour_ms, metric)
);
