-- Tenant lifecycle (onboarding and offboarding, lib/onboarding and lib/offboarding): one job per
-- tenant and kind, the steps each job has completed (a retry resumes after the last one; a
-- finished job is a no-op), an outbox of domain events, the registry entries when the registry
-- source is the database, and the domains claimed by onboarding (unique across concurrent requests).

CREATE TABLE tenancy.lifecycle_jobs (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenancy.tenants (id),
  kind        text NOT NULL CHECK (kind IN ('onboard', 'offboard')),
  status      text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  -- What the job needs besides the registry entry (never a secret).
  request     jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- An idempotency key given by the caller: resubmitting the same key returns the same job.
  request_key text UNIQUE,
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  UNIQUE (tenant_id, kind)
);

CREATE TABLE tenancy.lifecycle_steps (
  job_id      uuid NOT NULL REFERENCES tenancy.lifecycle_jobs (id) ON DELETE CASCADE,
  step        text NOT NULL,
  -- Position of the step in its job, for display.
  position    integer NOT NULL,
  result      jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, step)
);

-- Transactional outbox: written in the same transaction as the state change it announces;
-- a relay publishes unpublished rows and sets published_at.
CREATE TABLE tenancy.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_type      text NOT NULL,
  tenant_id       uuid NOT NULL,
  -- One event per fact (e.g. "tenant.created:<tenant id>"): a retried step cannot emit it twice.
  idempotency_key text NOT NULL UNIQUE,
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  published_at    timestamptz
);
CREATE INDEX outbox_unpublished ON tenancy.outbox (id) WHERE published_at IS NULL;

-- The registry when its source is the control-plane database instead of tenants/*.yaml: the
-- entry as it would be written in YAML (validated by the same schema and rules on every load).
CREATE TABLE tenancy.registry_entries (
  slug        text PRIMARY KEY CHECK (slug ~ '^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,29}$'),
  id          uuid NOT NULL UNIQUE,
  entry       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Domains claimed by onboarding requests (<subdomain>.<baseDomain> and custom domains): two
-- concurrent requests cannot both take one. Kept after offboarding, like the registry entry
-- (an offboarded tenant's slug and domains are never reused).
CREATE TABLE tenancy.tenant_domains (
  domain      text PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenancy.tenants (id),
  created_at  timestamptz NOT NULL DEFAULT now()
);
