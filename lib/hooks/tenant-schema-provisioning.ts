import type { ClientBase } from 'pg';
import { scramSha256Verifier } from '../db/scram';
import { lockWithin, prepareLock } from '../db/platform-locks';
import { quoteIdent, quoteLiteral, tenantSqlNames } from '../db/sql';
import type { DatabaseRoleLimits } from '../plans';

/** A tenant's schema and login role in a database: bridge (the shared bridge cluster) or silo (its own). */
export interface TenantSchemaProvisioning {
  readonly slug: string;
  /**
   * The tenant's id (a UUID), recorded on its schema and role (`COMMENT … 'tenancy:tenant-id=<id>'`):
   * an existing schema or role recorded for another tenant, or for none, is refused, never adopted.
   */
  readonly tenantId: string;
  /** Password of the tenant's login role (from its Secrets Manager secret; never logged). */
  readonly password: string;
  /** The database: the bridge cluster's tenants database, or the silo tenant's own. */
  readonly database: string;
  /** The role's connection limit and timeouts (lib/plans.ts `databaseRole` of the tenant's plan). */
  readonly limits: DatabaseRoleLimits;
  /**
   * Adopt a schema or role that carries no tenant id at all (created by a version before
   * attribution) and record this tenant's id on it. Only for a tenant the control plane already
   * knows as provisioned (active or suspended), never for a new one. @default false
   */
  readonly adoptUnattributed?: boolean;
  /** Longest wait for the provisioning lock and for any lock a statement needs. @default 30000 */
  readonly lockTimeoutMs?: number;
}

/** The comment that attributes a schema or role to a tenant. */
export const attributionOf = (tenantId: string): string => `tenancy:tenant-id=${tenantId}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const positiveInt = (name: string, n: number): number => {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got ${n})`);
  return n;
};

/**
 * The statements that provision a tenant's schema, idempotently: the schema `tenant_<slug>`
 * (owned by the master user, who runs the migrations), the login role `tenant_<slug>_app` with
 * data privileges only on that schema and search_path pinned to it, and `public` locked down
 * (CVE-2018-1058: no role may create objects in a schema others resolve names in). Run as the
 * cluster's master user, in one transaction.
 *
 * The role gets the plan's connection limit and timeouts, and CONNECT on its database only: PUBLIC
 * loses CONNECT and TEMPORARY on every other database the master user owns (e.g. `postgres`), so a
 * tenant cannot keep objects (a large object) where its erasure would not look.
 */
export function tenantSchemaProvisioningSql(p: TenantSchemaProvisioning): string[] {
  const { schema, role } = tenantSqlNames(p.slug);
  const s = quoteIdent(schema);
  const r = quoteIdent(role);
  const db = quoteIdent(p.database);
  if (typeof p.tenantId !== 'string' || !UUID.test(p.tenantId)) throw new Error(`provisioning tenant ${p.slug}: tenant id ${JSON.stringify(p.tenantId)} is not a UUID`);
  const mark = quoteLiteral(attributionOf(p.tenantId));
  const limits = {
    connectionLimit: positiveInt('connectionLimit', p.limits.connectionLimit),
    statementTimeoutMs: positiveInt('statementTimeoutMs', p.limits.statementTimeoutMs),
    lockTimeoutMs: positiveInt('lockTimeoutMs', p.limits.lockTimeoutMs),
    idleInTransactionSessionTimeoutMs: positiveInt('idleInTransactionSessionTimeoutMs', p.limits.idleInTransactionSessionTimeoutMs),
  };
  const adopt = p.adoptUnattributed === true;
  // An existing object is this tenant's only when it carries this tenant's id (or, when adopting,
  // none at all): a leftover of another tenant (a slug reused after an unfinished erasure, a name
  // that normalizes to an old slug) is refused before anything changes.
  const attributed = (what: string, comment: string, name: string) => `
       c := ${comment};
       IF c IS DISTINCT FROM ${mark} AND NOT (c IS NULL AND ${adopt ? 'true' : 'false'}) THEN
         RAISE EXCEPTION '% % already exists and is not attributed to tenant % (it carries %); refusing to adopt it', ${quoteLiteral(what)}, ${quoteLiteral(name)}, ${quoteLiteral(p.tenantId)}, coalesce(quote_literal(c), 'no tenant id')
           USING ERRCODE = 'TNADO', HINT = 'erase it, or attribute it explicitly with COMMENT ON ' || ${quoteLiteral(what.toUpperCase())} || ' … IS ' || quote_literal(${mark});
       END IF;`;
  return [
    `DO $$ DECLARE c text; BEGIN
       IF EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN${attributed('role', `(SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = ${quoteLiteral(role)})`, role)}
       END IF;
       IF EXISTS (SELECT FROM pg_namespace WHERE nspname = ${quoteLiteral(schema)}) THEN${attributed('schema', `(SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = ${quoteLiteral(schema)})`, schema)}
       END IF;
     END $$`,
    // The role, then the schema, owned by the master user: the tenant can neither drop it nor
    // change its privileges.
    // Role attributes are the defaults (no SUPERUSER, REPLICATION, BYPASSRLS: only a superuser
    // could grant those, and RDS's master user is not one); an existing role that has any of them
    // was changed by hand and is refused rather than trusted.
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN
         CREATE ROLE ${r} LOGIN NOCREATEDB NOCREATEROLE NOINHERIT;
       END IF;
       IF EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)} AND (rolsuper OR rolbypassrls OR rolreplication)) THEN
         RAISE EXCEPTION 'role % is a superuser or has BYPASSRLS or REPLICATION; refusing to provision it', ${quoteLiteral(role)};
       END IF;
     END $$`,
    // A SCRAM verifier, not the password: the server (and its statement log) never sees it.
    `ALTER ROLE ${r} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${quoteLiteral(scramSha256Verifier(p.password))}`,
    `ALTER ROLE ${r} SET search_path = ${s}`,
    // The plan's share of the cluster: re-applied on every run, so a plan change takes effect.
    `ALTER ROLE ${r} CONNECTION LIMIT ${limits.connectionLimit}`,
    `ALTER ROLE ${r} SET statement_timeout = '${limits.statementTimeoutMs}ms'`,
    `ALTER ROLE ${r} SET lock_timeout = '${limits.lockTimeoutMs}ms'`,
    `ALTER ROLE ${r} SET idle_in_transaction_session_timeout = '${limits.idleInTransactionSessionTimeoutMs}ms'`,
    `COMMENT ON ROLE ${r} IS ${mark}`,
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `COMMENT ON SCHEMA ${s} IS ${mark}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    // Data access only: migrations run as the master user, who owns the tables.
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
    // CVE-2018-1058: nobody creates in public; the database is not open to every role.
    `REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
    `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${db} TO ${r}`,
    // No tenant role reaches another database of the cluster that the master user controls.
    `DO $$ DECLARE d text; BEGIN
       FOR d IN SELECT datname FROM pg_database WHERE datallowconn AND datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND datname <> current_database() ORDER BY datname LOOP
         EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', d);
       END LOOP;
     END $$`,
  ];
}

/** The platform lock that serializes provisioning in one database. */
export const PROVISIONING_LOCK = 'provision';
export const PROVISIONING_LOCK_TIMEOUT_MS = 30_000;

/** Provisions a tenant's schema and role in one transaction on `admin` (the master user of the tenant's database). */
export async function provisionTenantSchema(admin: ClientBase, p: TenantSchemaProvisioning): Promise<void> {
  const statements = tenantSchemaProvisioningSql(p);
  const lockTimeoutMs = p.lockTimeoutMs ?? PROVISIONING_LOCK_TIMEOUT_MS;
  try {
    await prepareLock(admin, PROVISIONING_LOCK);
  } catch (e) {
    throw new Error(`provisioning tenant ${p.slug} in database ${p.database} failed: ${redact(e, p.password)}`);
  }
  await admin.query('BEGIN');
  try {
    // Concurrent provisioning of two tenants races on REVOKE/GRANT of the database and public
    // schema: serialized by a platform lock no tenant role can take (lib/db/platform-locks.ts), and
    // every wait is bounded (lock_timeout), so a held lock fails the run clearly instead of hanging it.
    await lockWithin(admin, PROVISIONING_LOCK, lockTimeoutMs);
    await admin.query(`SET LOCAL statement_timeout = '${Math.max(1, Math.trunc(lockTimeoutMs)) * 2}ms'`);
    for (const sql of statements) await admin.query(sql);
    await admin.query('COMMIT');
  } catch (e) {
    await admin.query('ROLLBACK').catch(() => undefined);
    throw new Error(`provisioning tenant ${p.slug} in database ${p.database} failed: ${redact(e, p.password)}`);
  }
}

/** The error message with the password removed, in case PostgreSQL echoes a statement. */
export function redact(e: unknown, secret: string): string {
  const message = e instanceof Error ? e.message : String(e);
  return secret ? message.split(secret).join('***') : message;
}
