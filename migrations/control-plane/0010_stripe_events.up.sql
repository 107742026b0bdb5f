-- Stripe webhooks (lib/billing/webhooks, issue 13).
--
-- stripe_events: every Stripe event id the webhook endpoint accepted, once. The handler inserts the
-- id first, in the transaction that applies the event (ON CONFLICT DO NOTHING): a replayed or
-- duplicated delivery — concurrently too, the second insert waits on the first's key — finds the
-- id and changes nothing; an event whose handling failed rolls back with its id, so Stripe's retry
-- applies it. The runtime role may insert, read and fill in tenant_id and outcome (in that same
-- transaction), never change the id or delete it: a recorded event stays recorded.
CREATE TABLE tenancy.stripe_events (
  id          text PRIMARY KEY CHECK (id ~ '^evt_[A-Za-z0-9_]{1,255}$'),
  type        text NOT NULL,
  -- The event's `created` (Stripe's clock) and when this endpoint received it.
  created     timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  livemode    boolean NOT NULL,
  tenant_id   uuid REFERENCES tenancy.tenants (id) ON DELETE SET NULL,
  -- What handling it did (applied, ignored and why), for operators.
  outcome     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX stripe_events_tenant ON tenancy.stripe_events (tenant_id, received_at);

-- tenant_billing: the tenant's subscription as Stripe last reported it (re-fetched on every event,
-- so the row is Stripe's current state whatever order events arrived in), and the dunning clock:
-- past_due_since / grace_until while a payment is failing, suspended_at when the grace period
-- ran out and billing suspended the tenant (only such a suspension is lifted by a payment).
CREATE TABLE tenancy.tenant_billing (
  tenant_id            uuid PRIMARY KEY REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
  subscription_id      text,
  subscription_status  text,
  -- The plan of the subscription's price by the plan/price mapping ('free' when it ended); NULL
  -- when the price maps to no plan (stripe_price says which).
  stripe_plan          text,
  stripe_price         text,
  past_due_since       timestamptz,
  grace_until          timestamptz,
  suspended_at         timestamptz,
  last_event_id        text,
  synced_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((past_due_since IS NULL) = (grace_until IS NULL))
);
CREATE INDEX tenant_billing_grace ON tenancy.tenant_billing (grace_until) WHERE grace_until IS NOT NULL;

REVOKE ALL ON tenancy.stripe_events, tenancy.tenant_billing FROM PUBLIC;
-- 0004's default privileges gave the runtime role DELETE and UPDATE on new tables; events are write-once.
REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.stripe_events FROM tenancy_control_plane;
GRANT SELECT, INSERT ON tenancy.stripe_events TO tenancy_control_plane;
GRANT UPDATE (outcome, tenant_id) ON tenancy.stripe_events TO tenancy_control_plane;
REVOKE TRUNCATE ON tenancy.tenant_billing FROM tenancy_control_plane;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenant_billing TO tenancy_control_plane;
