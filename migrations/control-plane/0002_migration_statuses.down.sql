DROP INDEX IF EXISTS tenancy.migration_runs_started_at;
DELETE FROM tenancy.tenant_migrations WHERE kind = 'control-plane';
UPDATE tenancy.tenant_migrations SET status = 'failed' WHERE status = 'edited';
ALTER TABLE tenancy.tenant_migrations DROP CONSTRAINT tenant_migrations_status_check;
ALTER TABLE tenancy.tenant_migrations ADD CONSTRAINT tenant_migrations_status_check
  CHECK (status IN ('applied', 'up-to-date', 'failed', 'skipped-locked', 'pending'));
ALTER TABLE tenancy.tenant_migrations DROP CONSTRAINT tenant_migrations_kind_check;
ALTER TABLE tenancy.tenant_migrations ADD CONSTRAINT tenant_migrations_kind_check
  CHECK (kind IN ('silo', 'bridge', 'pool'));
