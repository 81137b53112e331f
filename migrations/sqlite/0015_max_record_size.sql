-- UpdateMaxRecordSize / CreateStream's MaxRecordSizeInKiB: the largest record (data and
-- partition key) a stream takes, 1024 to 10240 KiB.
ALTER TABLE streams ADD COLUMN max_record_size_kib BIGINT NOT NULL DEFAULT 1024;
