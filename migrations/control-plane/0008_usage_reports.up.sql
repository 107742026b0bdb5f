-- Usage reports (issue 13, lib/metering): every window of a tenant's usage reported to Stripe as a
-- meter event — API calls per closed UTC hour, storage per closed UTC day, active seats per closed
-- calendar month. One row per (tenant, dimension, window), keyed by the meter event identifier
-- `<tenant id>:<dimension>:<window>`: a rerun or a second reporter finds the row and never sends a
-- reported window again; a row written before a crash is sent again with the same identifier and
-- the same recorded value, which Stripe dedupes (it keeps identifiers for at least 24 hours; a row
-- whose first send is older than that is not sent again automatically: `unconfirmed`).
--
-- status  pending      recorded, not (known to be) sent
--         reported     Stripe accepted the event (or had it already)
--         failed       measuring or sending failed (error); the next run tries again
--         unconfirmed  sent more than Stripe's dedupe window ago without an answer: a person checks
--                      the meter's event summaries before sending it again (README "Metering")
--
-- Privileges: created by the migrating role, so tenancy_control_plane (the CLI and the worker) has
-- SELECT, INSERT, UPDATE, DELETE by 0004's default privileges; it needs no DELETE or TRUNCATE: a
-- report is evidence of what was billed, so those are taken back.

CREATE TABLE tenancy.usage_reports (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id           uuid NOT NULL REFERENCES tenancy.tenants (id),
  dimension           text NOT NULL CHECK (dimension ~ '^[a-z][a-z0-9_]{0,39}$'),
  window_start        timestamptz NOT NULL,
  window_end          timestamptz NOT NULL,
  -- What was (or will be) sent: the meter event's name, value and customer. NULL value: not measured yet (failed).
  event_name          text NOT NULL CHECK (length(event_name) BETWEEN 1 AND 100),
  value               numeric CHECK (value >= 0),
  stripe_customer_id  text NOT NULL,
  identifier          text NOT NULL UNIQUE CHECK (length(identifier) <= 100),
  status              text NOT NULL CHECK (status IN ('pending', 'reported', 'failed', 'unconfirmed')),
  error               text,
  attempts            integer NOT NULL DEFAULT 0,
  first_sent_at       timestamptz,
  reported_at         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (window_end > window_start),
  CHECK (status <> 'reported' OR (value IS NOT NULL AND reported_at IS NOT NULL)),
  UNIQUE (tenant_id, dimension, window_start)
);
CREATE INDEX usage_reports_tenant ON tenancy.usage_reports (tenant_id, window_start DESC);
CREATE INDEX usage_reports_open ON tenancy.usage_reports (status) WHERE status <> 'reported';

REVOKE ALL ON tenancy.usage_reports FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON tenancy.usage_reports TO tenancy_control_plane;
REVOKE DELETE, TRUNCATE ON tenancy.usage_reports FROM tenancy_control_plane;
GRANT USAGE ON SEQUENCE tenancy.usage_reports_id_seq TO tenancy_control_plane;
