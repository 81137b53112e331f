-- A revocation belongs to the tenant that made it: one tenant naming another's token id
-- neither revokes that token nor keeps its owner from revoking it.
ALTER TABLE revoked_tokens DROP CONSTRAINT revoked_tokens_pkey;
ALTER TABLE revoked_tokens ADD PRIMARY KEY (account_id, token_id);
