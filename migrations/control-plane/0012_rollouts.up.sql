-- Fleet rollouts (issue 14, lib/fleet/rollout*): `tenancy fleet deploy` deploys the new and changed
-- stacks of a fleet plan in waves (platform stacks, canary tenants, then cumulative percentages),
-- each wave's stacks as BullMQ jobs that any `tenancy worker` takes; `tenancy fleet status` reads
-- these rows; `tenancy fleet resume` continues a stopped or interrupted rollout from them without
-- redoing applied stacks.
--
-- rollouts          one per `fleet deploy`. status: running (a coordinator is, or was until it
--                   died, working on it), stopped (a wave's failures exceeded max_failures, or an
--                   operator stopped it), finished (every stack applied). At most one rollout runs
--                   at a time (partial unique index): two would race for the same stacks.
--   waves           the plan: [{"index":0,"name":"canary","size":1}, …] as assigned at creation
--   artifacts       where the stacks' synthesized artifacts were put (s3://bucket/prefix/ or a
--                   directory), so a worker needs neither the registry nor the synthesis
-- rollout_stacks    one per stack to deploy, with everything its worker needs and the apply
--                   records: content/file hash, components, library version (copied into
--                   applied_stacks when it is applied), the artifact's key, status, attempts.
--   status          pending (its wave has not started) → queued (a job is in the queue) →
--                   applying (a worker has it) → applied | failed. A resume puts failed and
--                   interrupted stacks back to pending.
--   round           how many times the stack was queued: the BullMQ job id includes it, so a
--                   resumed stack gets a new job while a duplicate add of a live one is ignored.
--
-- Privileges: the runtime role (tenancy_control_plane: CLI, worker) reads and writes rows by 0004's
-- default privileges; it needs no DELETE or TRUNCATE: a rollout's record is history.
CREATE TABLE tenancy.rollouts (
  id               uuid PRIMARY KEY,
  status           text NOT NULL CHECK (status IN ('running', 'stopped', 'finished')),
  waves            jsonb NOT NULL CHECK (jsonb_typeof(waves) = 'array'),
  parallel         integer NOT NULL CHECK (parallel BETWEEN 1 AND 10000),
  max_failures     text NOT NULL CHECK (max_failures ~ '^[0-9]+(\.[0-9]+)?%?$'),
  artifacts        text NOT NULL CHECK (length(artifacts) BETWEEN 1 AND 2000),
  outdir           text NOT NULL,
  library_version  text NOT NULL CHECK (length(library_version) BETWEEN 1 AND 100),
  stop_reason      text,
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
CREATE UNIQUE INDEX rollouts_one_running ON tenancy.rollouts ((true)) WHERE status = 'running';

CREATE TABLE tenancy.rollout_stacks (
  rollout_id       uuid NOT NULL REFERENCES tenancy.rollouts (id),
  stack            text NOT NULL CHECK (stack ~ '^[a-z0-9][a-z0-9-]{0,127}$'),
  kind             text NOT NULL CHECK (kind IN ('tenant', 'platform')),
  tenant_id        uuid,
  wave             integer NOT NULL CHECK (wave >= 0),
  change           text NOT NULL CHECK (change IN ('new', 'changed')),
  reasons          text[] NOT NULL DEFAULT '{}',
  content_hash     text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  file_hash        text NOT NULL CHECK (file_hash ~ '^[0-9a-f]{64}$'),
  components       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(components) = 'object'),
  library_version  text NOT NULL CHECK (length(library_version) BETWEEN 1 AND 100),
  fleet_tenants    integer NOT NULL DEFAULT 0 CHECK (fleet_tenants >= 0),
  artifact_key     text NOT NULL CHECK (length(artifact_key) BETWEEN 1 AND 1024),
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'queued', 'applying', 'applied', 'failed')),
  round            integer NOT NULL DEFAULT 0 CHECK (round >= 0),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  worker           text,
  error            text,
  started_at       timestamptz,
  finished_at      timestamptz,
  PRIMARY KEY (rollout_id, stack),
  CHECK (kind = 'platform' OR tenant_id IS NOT NULL)
);
CREATE INDEX rollout_stacks_wave ON tenancy.rollout_stacks (rollout_id, wave, status);

REVOKE ALL ON tenancy.rollouts, tenancy.rollout_stacks FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON tenancy.rollouts, tenancy.rollout_stacks TO tenancy_control_plane;
REVOKE DELETE, TRUNCATE ON tenancy.rollouts, tenancy.rollout_stacks FROM tenancy_control_plane;
