DROP TABLE IF EXISTS tenancy.audit_log;
DROP FUNCTION IF EXISTS tenancy.audit_log_is_append_only();
DROP TABLE IF EXISTS tenancy.hook_runs;
DROP TABLE IF EXISTS tenancy.tenant_migrations;
DROP TABLE IF EXISTS tenancy.migration_runs;
DROP TABLE IF EXISTS tenancy.tenants;
