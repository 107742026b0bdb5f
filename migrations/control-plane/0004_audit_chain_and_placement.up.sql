-- The audit log belongs to nobody who runs the tool, every entry is chained to the one before it,
-- and a tenant's placement holds no secret-like key at any depth.
--
-- Roles (cluster-wide; created once, kept by the down migration because other databases may use them):
--   tenancy_audit_owner    NOLOGIN. Owns tenancy.audit_log, its chain head, the chaining trigger
--                          function and the schema tenancy (a schema owner may drop any table in it).
--   tenancy_control_plane  NOLOGIN. What the CLI, worker and hooks need: read and write the control
--                          plane's tables, only SELECT and INSERT (of actor, action, tenant_id,
--                          details) on the audit log. Grant it to the login role they use.
-- The role applying this migration (the RDS master user: CREATEROLE, not superuser) makes itself a
-- member of tenancy_audit_owner only to hand the objects over, and leaves again at the end. It
-- keeps SELECT and INSERT on the log (it runs later migrations, and a CLI may still use it).
-- README "The audit log": on PostgreSQL 15 a CREATEROLE role can grant itself any non-superuser
-- role again, so the privilege boundary holds for roles without CREATEROLE; what a CREATEROLE or
-- superuser role changes is detected by the hash chain (`tenancy audit log --verify`).

DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname IN ('tenancy_audit_owner', 'tenancy_control_plane') LOOP
    IF r.rolcanlogin OR r.rolsuper THEN
      RAISE EXCEPTION 'role % exists and can log in or is a superuser; it must be NOLOGIN NOSUPERUSER', r.rolname;
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_audit_owner') THEN
    CREATE ROLE tenancy_audit_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_control_plane') THEN
    CREATE ROLE tenancy_control_plane NOLOGIN;
  END IF;
END $$;

-- Membership is needed to give objects to the role (ALTER … OWNER TO); revoked at the end.
GRANT tenancy_audit_owner TO CURRENT_USER;

-- ---------------------------------------------------------------------------------------------
-- The hash chain: seq is the position in the chain (commit order), prev_hash the hash of the
-- entry before it (64 zeros for the first), hash = sha256(prev_hash || the entry as a JSON array).
-- ---------------------------------------------------------------------------------------------

-- The entry's digest. lib/control-plane/audit-chain.ts recomputes it with the same expression
-- (independently of this function) when verifying.
CREATE FUNCTION tenancy.audit_log_digest(prev_hash text, seq bigint, id bigint, at timestamptz, actor text, action text, tenant_id uuid, details jsonb)
  RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT encode(sha256(convert_to(prev_hash || jsonb_build_array(seq, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor, action, tenant_id, details)::text, 'UTF8')), 'hex')
$$;

-- The newest link: one row. Extending the chain locks it until commit, so concurrent writers
-- chain one after the other (a waiting READ COMMITTED writer re-reads the row after the wait).
CREATE TABLE tenancy.audit_log_head (
  one   boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq   bigint NOT NULL,
  hash  text NOT NULL
);

ALTER TABLE tenancy.audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;

-- Chain the entries written so far, in id order (ADD COLUMN holds an exclusive lock: no writer meanwhile).
ALTER TABLE tenancy.audit_log DISABLE TRIGGER audit_log_no_update_delete;
DO $$
DECLARE
  r record;
  prev text := repeat('0', 64);
  n bigint := 0;
BEGIN
  FOR r IN SELECT id, at, actor, action, tenant_id, details FROM tenancy.audit_log ORDER BY id LOOP
    n := n + 1;
    UPDATE tenancy.audit_log
       SET seq = n, prev_hash = prev, hash = tenancy.audit_log_digest(prev, n, r.id, r.at, r.actor, r.action, r.tenant_id, r.details)
     WHERE id = r.id
     RETURNING hash INTO prev;
  END LOOP;
  INSERT INTO tenancy.audit_log_head (seq, hash) VALUES (n, prev);
END $$;
ALTER TABLE tenancy.audit_log ENABLE TRIGGER audit_log_no_update_delete;
ALTER TABLE tenancy.audit_log
  ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL,
  ADD CONSTRAINT audit_log_seq_key UNIQUE (seq);

-- Runs as the owner (SECURITY DEFINER): writers cannot read or move the head themselves. Whatever
-- a writer puts in seq, prev_hash, hash or at is replaced (they hold no INSERT on those columns either).
CREATE FUNCTION tenancy.audit_log_chain() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  head record;
BEGIN
  SELECT h.seq, h.hash INTO head FROM tenancy.audit_log_head h FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenancy.audit_log_head is empty: the audit chain is broken' USING ERRCODE = 'data_corrupted';
  END IF;
  NEW.at := now();
  NEW.seq := head.seq + 1;
  NEW.prev_hash := head.hash;
  NEW.hash := tenancy.audit_log_digest(NEW.prev_hash, NEW.seq, NEW.id, NEW.at, NEW.actor, NEW.action, NEW.tenant_id, NEW.details);
  UPDATE tenancy.audit_log_head SET seq = NEW.seq, hash = NEW.hash;
  RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON tenancy.audit_log FOR EACH ROW EXECUTE FUNCTION tenancy.audit_log_chain();

-- ---------------------------------------------------------------------------------------------
-- Ownership and privileges
-- ---------------------------------------------------------------------------------------------

-- The schema first: the new owner of a table or function needs CREATE on its schema.
ALTER SCHEMA tenancy OWNER TO tenancy_audit_owner;
ALTER TABLE tenancy.audit_log OWNER TO tenancy_audit_owner;
ALTER TABLE tenancy.audit_log_head OWNER TO tenancy_audit_owner;
ALTER FUNCTION tenancy.audit_log_digest(text, bigint, bigint, timestamptz, text, text, uuid, jsonb) OWNER TO tenancy_audit_owner;
ALTER FUNCTION tenancy.audit_log_chain() OWNER TO tenancy_audit_owner;
ALTER FUNCTION tenancy.audit_log_is_append_only() OWNER TO tenancy_audit_owner;
REVOKE ALL ON FUNCTION tenancy.audit_log_chain() FROM PUBLIC;

-- The migrating role keeps using the schema (later migrations, the runner's state table).
GRANT USAGE, CREATE ON SCHEMA tenancy TO CURRENT_USER;
GRANT USAGE ON SCHEMA tenancy TO tenancy_control_plane;

-- The log: read it and append to it. The identity sequence (owned by the table) needs no grant.
REVOKE ALL ON tenancy.audit_log, tenancy.audit_log_head FROM PUBLIC;
GRANT SELECT, INSERT (actor, action, tenant_id, details) ON tenancy.audit_log TO CURRENT_USER, tenancy_control_plane;
GRANT SELECT ON tenancy.audit_log_head TO CURRENT_USER, tenancy_control_plane;

-- The rest of the control plane, for the runtime role (and tables later migrations add).
GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenants, tenancy.migration_runs, tenancy.tenant_migrations, tenancy.hook_runs,
  tenancy.lifecycle_jobs, tenancy.lifecycle_steps, tenancy.outbox, tenancy.registry_entries, tenancy.tenant_domains TO tenancy_control_plane;
GRANT USAGE ON SEQUENCE tenancy.hook_runs_id_seq, tenancy.outbox_id_seq TO tenancy_control_plane;
-- The runner's state, read-only: a worker starting with an up-to-date control plane checks it and moves on.
DO $$
BEGIN
  IF to_regclass('tenancy.schema_migrations') IS NOT NULL THEN
    GRANT SELECT ON tenancy.schema_migrations TO tenancy_control_plane;
  END IF;
END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA tenancy GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tenancy_control_plane;
ALTER DEFAULT PRIVILEGES IN SCHEMA tenancy GRANT USAGE ON SEQUENCES TO tenancy_control_plane;

REVOKE tenancy_audit_owner FROM CURRENT_USER;
DO $$
BEGIN
  IF pg_has_role(current_user, 'tenancy_audit_owner', 'USAGE') AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION '% is still a member of tenancy_audit_owner (through another grant); revoke it', current_user;
  END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Placement: no secret-like key at any depth, in any case (password, passwd, secret, token, api
-- key, private key, credential, …). References to a secret (keys ending in ref or arn, such as
-- secret_ref) are what a placement holds instead.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION tenancy.placement_secret_keys(placement jsonb) RETURNS text[]
  LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
    FROM jsonb_path_query(placement, 'lax $.** ? (@.type() == "object").keyvalue().key') AS j(key),
         LATERAL (SELECT j.key #>> '{}' AS k) AS named
   WHERE lower(regexp_replace(k, '[^a-zA-Z0-9]', '', 'g')) ~ '(passw|passwd|pwd|passphrase|secret|token|apikey|privatekey|credential|accesskey|sessionkey|clientkey|signingkey|encryptionkey|connectionstring|dsn)'
     AND lower(regexp_replace(k, '[^a-zA-Z0-9]', '', 'g')) !~ '(ref|arn)$'
$$;
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_placement_check;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_placement_no_secrets CHECK (cardinality(tenancy.placement_secret_keys(placement)) = 0);
