-- What each stack last deployed (issue 14, lib/fleet): one row per stack, written after every
-- successful apply — the onboarding deploy step, `tenancy post-apply` after a hand-run
-- `cdktf deploy`, fleet rollouts — and marked destroyed when offboarding destroys the stack.
-- `tenancy fleet plan` reads it in one query and compares it with the synthesized stacks: new,
-- changed (with the reason: registry entry, chart, platform.yaml, construct code), unchanged,
-- removed, without running Terraform.
--
-- content_hash  SHA-256 of the stack's normalized synthesized JSON (cdktf metadata `//` keys and
--               the backend block left out, keys sorted: lib/fleet/stack-hash.ts)
-- components    per-component hashes of what the stack was built from, {registry, chart, platform,
--               construct}: the reasons a changed stack changed
-- file_hash     SHA-256 of the applied cdk.tf.json's bytes: a plan skips parsing a byte-identical
--               file (10,000 unchanged stacks: read and hashed, not parsed)
-- fleet_tenants tenant stacks of the registry the stack was synthesized from (a plan refuses an
--               output synthesized for a selection)
-- tenant_id     the tenant of a tenant stack (no foreign key: the apply is recorded before the
--               post-apply hooks register the tenant); NULL for platform stacks
--
-- Privileges: the runtime role (tenancy_control_plane: CLI, worker) reads and writes rows by 0004's
-- default privileges; it needs no DELETE or TRUNCATE: a destroyed stack is marked, never forgotten,
-- so a live stack can never silently turn "new" again.
CREATE TABLE tenancy.applied_stacks (
  stack            text PRIMARY KEY CHECK (stack ~ '^[a-z0-9][a-z0-9-]{0,127}$'),
  kind             text NOT NULL CHECK (kind IN ('tenant', 'platform')),
  tenant_id        uuid,
  content_hash     text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  components       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(components) = 'object'),
  library_version  text NOT NULL CHECK (length(library_version) BETWEEN 1 AND 100),
  fleet_tenants    integer NOT NULL DEFAULT 0 CHECK (fleet_tenants >= 0),
  file_hash        text NOT NULL CHECK (file_hash ~ '^[0-9a-f]{64}$'),
  applied_by       text NOT NULL,
  applied_at       timestamptz NOT NULL DEFAULT now(),
  destroyed_at     timestamptz,
  CHECK (kind = 'platform' OR tenant_id IS NOT NULL)
);
CREATE INDEX applied_stacks_tenant ON tenancy.applied_stacks (tenant_id);

REVOKE ALL ON tenancy.applied_stacks FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON tenancy.applied_stacks TO tenancy_control_plane;
REVOKE DELETE, TRUNCATE ON tenancy.applied_stacks FROM tenancy_control_plane;
