-- Tenant-authored Cedar policies, every version kept (a deletion is a version with no
-- body), and the audit trail of authorization decisions, which nothing may change.

CREATE TABLE policy_versions (
    account_id TEXT NOT NULL,
    -- a tenant's own name, or `stream/<name>` / `principal/<kind>/<name>` for a
    -- policy attached to one stream or one principal
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT,
    created_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (account_id, name, version)
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    principal_account TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_account TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL,
    -- JSON array of the ids of the policies that decided
    policies TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    tls_version TEXT NOT NULL
);
CREATE INDEX audit_log_principal_account ON audit_log (principal_account, id);
CREATE INDEX audit_log_resource_account ON audit_log (resource_account, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
