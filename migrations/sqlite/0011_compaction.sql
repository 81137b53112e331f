-- Compaction: where a chunk's bytes sit. placement 0: in a flush's segment, as the
-- group-commit writer left it, beside chunks of other shards; 1: rewritten by
-- compaction into an object that holds one shard only, large enough to stay; 2:
-- rewritten likewise but small, so a later pass may merge it with the chunks after it.
-- The partial index finds what compaction still has to do without scanning the rest.
ALTER TABLE chunks ADD COLUMN placement BIGINT NOT NULL DEFAULT 0;
CREATE INDEX chunks_to_compact ON chunks (last_arrival_ms) WHERE placement <> 1;
