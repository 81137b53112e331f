-- Asynchronous stream states: a stream in CREATING, UPDATING or DELETING leaves that
-- state at status_until_ms (to ACTIVE, or gone), moved there by the server's sweep.
ALTER TABLE streams ADD COLUMN status_until_ms BIGINT;
CREATE INDEX streams_in_transition ON streams (status, status_until_ms);
