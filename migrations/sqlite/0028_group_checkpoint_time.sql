-- The arrival second of the record a consumer group's checkpoint names, when the member
-- named it by its sequence number: the number is written back exactly as the member
-- gave it (a sequence number carries its record's arrival second).
ALTER TABLE consumer_group_shards ADD COLUMN checkpoint_time_s BIGINT;
