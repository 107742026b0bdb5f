-- Pool migrations run once against the pool database, search_path = pool. Every table with a
-- tenant_id column gets row-level security enforced by the runner after each run (enabled and
-- forced, a fail-closed policy with USING and WITH CHECK, an index led by tenant_id): a new table
-- cannot be forgotten. Lead primary keys and indexes with tenant_id.
CREATE TABLE projects (
  tenant_id   uuid NOT NULL,
  id          uuid NOT NULL,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE TABLE tasks (
  tenant_id   uuid NOT NULL,
  id          uuid NOT NULL,
  project_id  uuid NOT NULL,
  title       text NOT NULL,
  done        boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_project ON tasks (tenant_id, project_id, created_at);
