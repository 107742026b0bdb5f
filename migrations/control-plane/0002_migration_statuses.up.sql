-- The migration runner records every kind of target (the control plane migrates itself too) and
-- every status it reports, including "edited" (an applied migration's file changed since).
ALTER TABLE tenancy.tenant_migrations DROP CONSTRAINT tenant_migrations_kind_check;
ALTER TABLE tenancy.tenant_migrations ADD CONSTRAINT tenant_migrations_kind_check
  CHECK (kind IN ('silo', 'bridge', 'pool', 'control-plane'));
ALTER TABLE tenancy.tenant_migrations DROP CONSTRAINT tenant_migrations_status_check;
ALTER TABLE tenancy.tenant_migrations ADD CONSTRAINT tenant_migrations_status_check
  CHECK (status IN ('applied', 'up-to-date', 'failed', 'skipped-locked', 'pending', 'edited'));
CREATE INDEX migration_runs_started_at ON tenancy.migration_runs (started_at DESC);
