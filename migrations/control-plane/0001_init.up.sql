-- The control plane: the registry of tenants as deployed, their migration state, hook runs and
-- an append-only audit log. Lives in schema "tenancy" of the control-plane database.
CREATE SCHEMA IF NOT EXISTS tenancy;

CREATE TABLE tenancy.tenants (
  id                      uuid PRIMARY KEY,
  slug                    text NOT NULL UNIQUE CHECK (slug ~ '^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,29}$'),
  model                   text NOT NULL CHECK (model IN ('silo', 'bridge', 'pool')),
  plan                    text NOT NULL,
  status                  text NOT NULL,
  region                  text NOT NULL,
  -- Where the tenant's data lives: host, port, database, schema, role and a reference to the
  -- secret holding its credentials (a Secrets Manager ARN). Never a password.
  placement               jsonb NOT NULL DEFAULT '{}'::jsonb
                          CHECK (NOT (placement ? 'password')),
  stripe_customer_id      text UNIQUE,
  stripe_subscription_id  text UNIQUE,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

-- One row per migration run of the fleet (or of one tenant).
CREATE TABLE tenancy.migration_runs (
  id           uuid PRIMARY KEY,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  direction    text NOT NULL CHECK (direction IN ('up', 'down')),
  dry_run      boolean NOT NULL,
  actor        text NOT NULL,
  summary      jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The latest migration status of every target (a silo database, a bridge schema, the pool).
CREATE TABLE tenancy.tenant_migrations (
  target      text PRIMARY KEY,
  tenant_id   uuid REFERENCES tenancy.tenants (id) ON DELETE SET NULL,
  kind        text NOT NULL CHECK (kind IN ('silo', 'bridge', 'pool')),
  version     integer NOT NULL DEFAULT 0,
  status      text NOT NULL CHECK (status IN ('applied', 'up-to-date', 'failed', 'skipped-locked', 'pending')),
  error       text,
  run_id      uuid REFERENCES tenancy.migration_runs (id),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every run of a post-apply hook for a tenant; input_hash makes reruns with the same input a no-op.
CREATE TABLE tenancy.hook_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
  hook         text NOT NULL,
  input_hash   text NOT NULL,
  status       text NOT NULL CHECK (status IN ('succeeded', 'failed')),
  result       jsonb NOT NULL DEFAULT '{}'::jsonb,
  error        text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hook_runs_tenant_hook ON tenancy.hook_runs (tenant_id, hook, finished_at DESC);

-- Append-only audit log (SOC 2 CC6/CC7 evidence): who did what, when, to which tenant.
CREATE TABLE tenancy.audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  action     text NOT NULL,
  tenant_id  uuid,
  details    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant_at ON tenancy.audit_log (tenant_id, at);

CREATE FUNCTION tenancy.audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'tenancy.audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON tenancy.audit_log
  FOR EACH ROW EXECUTE FUNCTION tenancy.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON tenancy.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION tenancy.audit_log_is_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.audit_log FROM PUBLIC;
