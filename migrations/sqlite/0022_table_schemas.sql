-- Tables a tenant describes for Firehose's record format conversion: the columns a
-- delivery stream's SchemaConfiguration (DatabaseName, TableName) converts records to.
CREATE TABLE table_schemas (
    account_id TEXT NOT NULL,
    database_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    -- JSON: [{"name": ..., "type": <a Hive type>}, ...]
    columns TEXT NOT NULL,
    -- 1 when made, one more on every replacement
    version BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, database_name, table_name)
);
