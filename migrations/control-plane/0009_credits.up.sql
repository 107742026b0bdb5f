-- Prepaid credits (issue 13, lib/billing/credits): a ledger of grants and debits per tenant, the
-- balance it adds up to, and the low-credit notices (one per grant at most).
--
-- credit_entries   append-only: every grant (a paid Stripe Checkout session or invoice, or a manual
--                  grant) and every debit, with who, why and the balance it left. A Stripe object
--                  is granted once (UNIQUE stripe_object_id): a replayed webhook adds nothing.
-- credit_accounts  one row per tenant that was ever granted credits: the balance, kept equal to
--                  the sum of the tenant's entries by writing both in one transaction (one
--                  statement on the debit hot path; a derived SUM would grow with every debit),
--                  and the last grant (its entry and amount: the 20% low-credit threshold).
--                  CHECK (balance >= 0) is the last line against an overdraft.
-- credit_low_notices  the low-credit notification of a grant: its primary key is the grant, so a
--                  second one for the same grant cannot exist. Written in the debit's transaction
--                  with the outbox event tenant.credits.low; the mail is sent after commit and its
--                  delivery (sent, attempts, last error) recorded here.
--
-- Privileges: the tables are created by the migrating role, so tenancy_control_plane gets SELECT,
-- INSERT, UPDATE, DELETE by 0004's default privileges; this migration takes back what the runtime
-- needs not: UPDATE and DELETE of entries (append-only, as the audit log), DELETE of accounts and
-- notices, UPDATE of a notice except its mail delivery columns. A trigger refuses UPDATE, DELETE and
-- TRUNCATE of entries to every role (the owner could drop the trigger: README "Prepaid credits").

CREATE TABLE tenancy.credit_entries (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id         uuid NOT NULL REFERENCES tenancy.tenants (id),
  kind              text NOT NULL CHECK (kind IN ('grant', 'debit')),
  -- Credit units, always positive: the kind says in which direction.
  amount            bigint NOT NULL CHECK (amount > 0),
  balance_after     bigint NOT NULL CHECK (balance_after >= 0),
  reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
  actor             text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  -- The paid Checkout session (cs_…) or invoice (in_…) a grant comes from; never on a debit.
  stripe_object_id  text UNIQUE CHECK (stripe_object_id ~ '^[A-Za-z0-9_]{1,255}$'),
  created_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (kind = 'grant' OR stripe_object_id IS NULL)
);
CREATE INDEX credit_entries_tenant ON tenancy.credit_entries (tenant_id, id);

CREATE TABLE tenancy.credit_accounts (
  tenant_id            uuid PRIMARY KEY REFERENCES tenancy.tenants (id),
  balance              bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  -- Created by the tenant's first grant, in its transaction (so NULL and 0 only until it commits).
  last_grant_entry_id  bigint REFERENCES tenancy.credit_entries (id),
  last_grant_amount    bigint NOT NULL DEFAULT 0 CHECK (last_grant_amount >= 0),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenancy.credit_low_notices (
  grant_entry_id      bigint PRIMARY KEY REFERENCES tenancy.credit_entries (id),
  tenant_id           uuid NOT NULL REFERENCES tenancy.tenants (id),
  -- The debit that took the balance to 20% of the grant or below, and what it left.
  debit_entry_id      bigint NOT NULL UNIQUE REFERENCES tenancy.credit_entries (id),
  balance             bigint NOT NULL,
  grant_amount        bigint NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  mail_sent_at        timestamptz,
  mail_attempts       integer NOT NULL DEFAULT 0,
  mail_error          text,
  -- A sender holds the notice until then (two senders never send one mail at the same time).
  mail_claimed_until  timestamptz
);
CREATE INDEX credit_low_notices_unsent ON tenancy.credit_low_notices (created_at) WHERE mail_sent_at IS NULL;

CREATE FUNCTION tenancy.credit_entries_are_append_only() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'tenancy.credit_entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER credit_entries_no_update_delete BEFORE UPDATE OR DELETE ON tenancy.credit_entries
  FOR EACH ROW EXECUTE FUNCTION tenancy.credit_entries_are_append_only();
CREATE TRIGGER credit_entries_no_truncate BEFORE TRUNCATE ON tenancy.credit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION tenancy.credit_entries_are_append_only();

REVOKE ALL ON tenancy.credit_entries, tenancy.credit_accounts, tenancy.credit_low_notices FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.credit_entries FROM tenancy_control_plane;
REVOKE DELETE, TRUNCATE ON tenancy.credit_accounts FROM tenancy_control_plane;
REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.credit_low_notices FROM tenancy_control_plane;
GRANT SELECT, INSERT ON tenancy.credit_entries, tenancy.credit_low_notices TO tenancy_control_plane;
GRANT SELECT, INSERT, UPDATE ON tenancy.credit_accounts TO tenancy_control_plane;
GRANT UPDATE (mail_sent_at, mail_attempts, mail_error, mail_claimed_until) ON tenancy.credit_low_notices TO tenancy_control_plane;
