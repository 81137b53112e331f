-- Per-shard write budgets shared by every data-plane process: for each (stream, shard,
-- budget, one-second window) how much of the rate processes have leased so far.
-- `granted` is the last lease's size, kept so that the lease's one statement can return
-- it. (A single `sluice serve` on SQLite keeps its limits in memory by default; this
-- table serves processes that share a SQLite file with --shared-throughput-limits.)
CREATE TABLE shard_write_budgets (
    stream_id BIGINT NOT NULL,
    shard_ordinal BIGINT NOT NULL,
    budget TEXT NOT NULL CHECK (budget IN ('write_records', 'write_bytes')),
    window_s BIGINT NOT NULL,
    used BIGINT NOT NULL,
    granted BIGINT NOT NULL,
    PRIMARY KEY (stream_id, shard_ordinal, budget, window_s)
);
CREATE INDEX shard_write_budgets_by_window ON shard_write_budgets (window_s);
