-- Data keys: the per-stream AES-256-GCM keys that seal chunks at rest. A key is stored
-- only wrapped under the root key, with associated data that binds it to its own id
-- and stream (see control_plane::datakeys). Deleting a stream deletes its keys, which
-- makes any bytes of it left in the object store unreadable.
--
-- Rotation: a writer process seals under a key it made itself and moves to a new one
-- after a few minutes or a bounded number of seals (kms::RotationPolicy); its use
-- count lives in that process only, which is why a key is never shared by writers.
-- created_at_ms tells a key's age; retired_at_ms is set when its writer rotated away
-- from it (NULL: in use, or its writer stopped without saying so).

CREATE TABLE data_keys (
    data_key_id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id BIGINT NOT NULL REFERENCES streams(stream_id) ON DELETE CASCADE,
    key_wrapped BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    retired_at_ms BIGINT
);
CREATE INDEX data_keys_by_stream ON data_keys (stream_id, data_key_id);
