-- Back to 0003: the migrating role owns the log and the schema again, no chain, the shallow
-- placement CHECK. The roles tenancy_audit_owner and tenancy_control_plane are kept (cluster-wide:
-- other control-plane databases may use them); their privileges here are revoked.
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_placement_no_secrets;
DROP FUNCTION tenancy.placement_secret_keys(jsonb);
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_placement_check CHECK (NOT (placement ? 'password'));

GRANT tenancy_audit_owner TO CURRENT_USER;
ALTER DEFAULT PRIVILEGES IN SCHEMA tenancy REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM tenancy_control_plane;
ALTER DEFAULT PRIVILEGES IN SCHEMA tenancy REVOKE USAGE ON SEQUENCES FROM tenancy_control_plane;
REVOKE ALL ON ALL TABLES IN SCHEMA tenancy FROM tenancy_control_plane;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA tenancy FROM tenancy_control_plane;
REVOKE ALL ON SCHEMA tenancy FROM tenancy_control_plane;

DROP TRIGGER audit_log_chain ON tenancy.audit_log;
DROP FUNCTION tenancy.audit_log_chain();
DROP TABLE tenancy.audit_log_head;
DROP FUNCTION tenancy.audit_log_digest(text, bigint, bigint, timestamptz, text, text, uuid, jsonb);
ALTER TABLE tenancy.audit_log DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;

ALTER TABLE tenancy.audit_log OWNER TO CURRENT_USER;
ALTER FUNCTION tenancy.audit_log_is_append_only() OWNER TO CURRENT_USER;
ALTER SCHEMA tenancy OWNER TO CURRENT_USER;
REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.audit_log FROM PUBLIC;
REVOKE tenancy_audit_owner FROM CURRENT_USER;
