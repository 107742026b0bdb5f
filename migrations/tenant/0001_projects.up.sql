-- Tenant migrations run with search_path set to the tenant's schema (bridge: tenant_<slug> on the
-- bridge cluster; silo: tenant_<slug> in the tenant's own database). Use unqualified names.
CREATE TABLE projects (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
