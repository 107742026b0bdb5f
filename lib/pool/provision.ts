import { createHash } from 'node:crypto';
import { lockWithin, prepareLock } from '../db/platform-locks';
import type { ClientBase } from 'pg';
import { quoteIdent, quoteLiteral } from '../db/sql';
import { assertCustomSetting, DEFAULT_TENANT_SETTING, SQL_NAME_PATTERN } from '../runtime/tenant-context';
import { enforceSharedReadOnly } from './coverage';

/**
 * The pool database (see docs/DATA-PLANE.md, "Roles"): tables in schema `pool`, owned by a
 * NOLOGIN owner role; the application logs in as an app role that is not a superuser, not the
 * owner (nor a member of it), has no BYPASSRLS and only DML grants. Every table with a
 * `tenant_id` column has row-level security enabled and forced, the fail-closed policy
 * `tenant_isolation`, and an index led by tenant_id.
 */

/** Anything that runs SQL: a pg.Client or a checked-out pg.PoolClient. */
export type SqlClient = Pick<ClientBase, 'query'>;

export const POOL_DEFAULTS = {
  schema: 'pool',
  ownerRole: 'pool_owner',
  appRole: 'pool_app',
  tenantColumn: 'tenant_id',
  policyName: 'tenant_isolation',
} as const;

/** Privileges the app role gets on pool tables: DML only (no TRUNCATE, which ignores RLS; no REFERENCES, TRIGGER). */
export const APP_TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

export class PoolProvisioningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolProvisioningError';
  }
}

/**
 * The policy expression: the row's tenant_id must equal the transaction's tenant setting. With
 * no setting (missing or ''), the right side is NULL, so nothing matches and every write fails
 * its WITH CHECK.
 */
export function tenantPolicyExpression(setting: string = DEFAULT_TENANT_SETTING, column: string = POOL_DEFAULTS.tenantColumn): string {
  assertCustomSetting(setting, 'tenant policy');
  return `${quoteIdent(column)} = nullif(current_setting(${quoteLiteral(setting)}, true), '')::uuid`;
}

/**
 * A policy expression reduced to compare what PostgreSQL stored (pg_get_expr deparses it with
 * casts and parentheses) with {@link tenantPolicyExpression}: lowercase, without `::text`
 * casts, parentheses, identifier quotes and whitespace.
 */
export function normalizePolicyExpression(expression: string | null | undefined): string {
  if (!expression) return '';
  return expression.toLowerCase().replace(/::text\b/g, '').replace(/[\s()"]/g, '');
}

export interface EnforcePoolRlsOptions {
  /** @default "app.tenant_id" */
  readonly tenantSetting?: string;
}

export interface EnforcedTable {
  readonly table: string;
  /** What had to change: RLS enabled, forced, the policy (re)created, an index created. */
  readonly changes: readonly string[];
  /** The index led by tenant_id (existing or created). */
  readonly tenantIndex: string;
}

interface TenantTableRow {
  oid: number;
  relname: string;
  relrowsecurity: boolean;
  relforcerowsecurity: boolean;
  attnum: number;
}

interface PolicyRow {
  polname: string;
  polpermissive: boolean;
  polcmd: string;
  public_only: boolean;
  qual: string | null;
  with_check: string | null;
}

/**
 * Enforces RLS on every table of `schema` with a `tenant_id` column (ordinary and partitioned
 * tables, partitions included): ENABLE and FORCE row level security, the policy
 * `tenant_isolation` FOR ALL TO PUBLIC with `USING` and `WITH CHECK` both
 * {@link tenantPolicyExpression} ((re)created unless it is exactly that), and an index led by
 * tenant_id when there is none. Only what differs is changed, so a rerun takes no locks. Tables
 * declared shared lose every write privilege of roles other than the owner.
 *
 * Must run as the tables' owner (or a role that may act as it: a member, or a superuser), in the
 * caller's transaction (the migration runner calls it before COMMIT). Refuses (throws
 * PoolProvisioningError, so the transaction rolls back) a table with another PERMISSIVE policy:
 * permissive policies are OR-ed, so any other one widens what a tenant sees. RESTRICTIVE
 * policies are left alone.
 */
export async function enforcePoolRls(client: SqlClient, schema: string = POOL_DEFAULTS.schema, options: EnforcePoolRlsOptions = {}): Promise<EnforcedTable[]> {
  const expression = tenantPolicyExpression(options.tenantSetting);
  const expected = normalizePolicyExpression(expression);
  const { rows: tables } = await client.query<TenantTableRow>(
    `SELECT c.oid::int AS oid, c.relname, c.relrowsecurity, c.relforcerowsecurity, a.attnum::int AS attnum
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
      ORDER BY c.relname`,
    [schema, POOL_DEFAULTS.tenantColumn],
  );
  const results: EnforcedTable[] = [];
  for (const t of tables) {
    const table = `${quoteIdent(schema)}.${quoteIdent(t.relname)}`;
    const changes: string[] = [];
    if (!t.relrowsecurity) {
      await client.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      changes.push('rls enabled');
    }
    if (!t.relforcerowsecurity) {
      await client.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      changes.push('rls forced');
    }

    const { rows: policies } = await client.query<PolicyRow>(
      `SELECT polname, polpermissive, polcmd::text AS polcmd, polroles = '{0}'::oid[] AS public_only,
              pg_get_expr(polqual, polrelid) AS qual, pg_get_expr(polwithcheck, polrelid) AS with_check
         FROM pg_policy WHERE polrelid = $1 ORDER BY polname`,
      [t.oid],
    );
    const widening = policies.filter((p) => p.polpermissive && p.polname !== POOL_DEFAULTS.policyName);
    if (widening.length > 0) {
      throw new PoolProvisioningError(
        `${schema}.${t.relname}: permissive polic${widening.length > 1 ? 'ies' : 'y'} ${widening.map((p) => p.polname).join(', ')} would widen tenant isolation (permissive policies are OR-ed); make ${widening.length > 1 ? 'them' : 'it'} RESTRICTIVE or drop ${widening.length > 1 ? 'them' : 'it'}`,
      );
    }
    const current = policies.find((p) => p.polname === POOL_DEFAULTS.policyName);
    const exact = current !== undefined && current.polpermissive && current.polcmd === '*' && current.public_only
      && normalizePolicyExpression(current.qual) === expected && normalizePolicyExpression(current.with_check) === expected;
    if (!exact) {
      const policy = quoteIdent(POOL_DEFAULTS.policyName);
      if (current) await client.query(`DROP POLICY ${policy} ON ${table}`);
      await client.query(`CREATE POLICY ${policy} ON ${table} AS PERMISSIVE FOR ALL TO PUBLIC USING (${expression}) WITH CHECK (${expression})`);
      changes.push(current ? 'policy replaced' : 'policy created');
    }

    const { rows: indexes } = await client.query<{ name: string }>(
      `SELECT ic.relname AS name
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = $1 AND i.indkey[0] = $2 AND i.indisvalid AND i.indpred IS NULL
        ORDER BY i.indisprimary DESC, ic.relname
        LIMIT 1`,
      [t.oid, t.attnum],
    );
    let tenantIndex = indexes[0]?.name;
    if (!tenantIndex) {
      tenantIndex = await freeIndexName(client, schema, t.relname);
      await client.query(`CREATE INDEX ${quoteIdent(tenantIndex)} ON ${table} (${quoteIdent(POOL_DEFAULTS.tenantColumn)})`);
      changes.push(`index ${tenantIndex} created`);
    }
    results.push({ table: t.relname, changes, tenantIndex });
  }
  // Tables declared shared (lib/pool/coverage.ts) are read-only for everyone but the owner.
  await enforceSharedReadOnly(client, schema);
  return results;
}

/** `<table>_tenant_id_idx`, shortened with a hash when too long, suffixed when taken. */
async function freeIndexName(client: SqlClient, schema: string, table: string): Promise<string> {
  let base = `${table}_tenant_id_idx`;
  if (Buffer.byteLength(base, 'utf8') > 60) base = `t${createHash('sha256').update(table).digest('hex').slice(0, 16)}_tenant_id_idx`;
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}${i}`;
    const { rows } = await client.query('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [schema, name]);
    if (rows.length === 0) return name;
  }
}

export interface ProvisionPoolOptions {
  /** @default "pool" */
  readonly schema?: string;
  /** NOLOGIN role that owns the schema and the tables. @default "pool_owner" */
  readonly ownerRole?: string;
  /** The application's login role. @default "pool_app" */
  readonly appRole?: string;
  /**
   * The app role's password: preferably a SCRAM verifier (lib/db/scram.ts), so the server never
   * sees the password; a plain password is hashed by the server. Left unchanged when omitted.
   */
  readonly appPassword?: string;
  /** @default "app.tenant_id" */
  readonly tenantSetting?: string;
}

export interface ProvisionPoolResult {
  readonly schema: string;
  readonly ownerRole: string;
  readonly appRole: string;
  /** What this run changed (empty on a rerun with nothing to do, apart from re-applied grants). */
  readonly changes: readonly string[];
  readonly tables: readonly EnforcedTable[];
}

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolbypassrls: boolean;
  rolcanlogin: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
}

/**
 * Creates or converges the pool database's roles, schema and grants, then enforces RLS on the
 * tables already there. Idempotent; runs in its own transaction on `admin` (a superuser, or the
 * RDS master user: a CREATEROLE role that owns the database), serialised by a platform lock.
 *
 * - owner role: NOLOGIN, NOSUPERUSER, NOBYPASSRLS; owns schema `pool` (and, through the
 *   migrations run as it, the tables);
 * - app role: LOGIN, NOSUPERUSER, NOBYPASSRLS, NOCREATEDB, NOCREATEROLE, not a member of the
 *   owner; USAGE on the schema, SELECT/INSERT/UPDATE/DELETE on its tables and USAGE on its
 *   sequences (today's and, through default privileges, future ones), nothing else;
 *   `search_path` = pool, pg_temp in this database;
 * - PUBLIC and the app role: no TEMPORARY on the database (no temp table can shadow a pool table
 *   for the next user of a server connection), no privileges on schema `pool`, no CREATE on schema
 *   public (CVE-2018-1058).
 */
/** Longest wait for the pool's provisioning lock. */
const POOL_PROVISIONING_LOCK_TIMEOUT_MS = 30_000;

export async function provisionPool(admin: ClientBase, options: ProvisionPoolOptions = {}): Promise<ProvisionPoolResult> {
  const schema = options.schema ?? POOL_DEFAULTS.schema;
  const ownerRole = options.ownerRole ?? POOL_DEFAULTS.ownerRole;
  const appRole = options.appRole ?? POOL_DEFAULTS.appRole;
  for (const [what, name] of [['schema', schema], ['ownerRole', ownerRole], ['appRole', appRole]] as const) {
    if (!SQL_NAME_PATTERN.test(name) || name.startsWith('pg_')) throw new PoolProvisioningError(`provisionPool: ${what} ${JSON.stringify(name)} must be a lowercase SQL identifier`);
  }
  if (ownerRole === appRole) throw new PoolProvisioningError('provisionPool: the app role must not be the owner role');
  tenantPolicyExpression(options.tenantSetting);

  const S = quoteIdent(schema);
  const owner = quoteIdent(ownerRole);
  const app = quoteIdent(appRole);
  const changes: string[] = [];
  const run = (sql: string) => admin.query(sql);

  // A platform lock, not an advisory one: the pool's application role could hold a predictable
  // advisory key for ever (lib/db/platform-locks.ts); the wait is bounded.
  const lock = `provision-pool:${schema}`;
  await prepareLock(admin, lock);
  await run('BEGIN');
  try {
    await lockWithin(admin, lock, POOL_PROVISIONING_LOCK_TIMEOUT_MS);
    const { rows: me } = await admin.query<{ user: string; superuser: boolean; database: string }>(
      'SELECT current_user AS user, rolsuper AS superuser, current_database() AS database FROM pg_roles WHERE rolname = current_user',
    );
    const roles = async (): Promise<Map<string, RoleRow>> => {
      const { rows } = await admin.query<RoleRow>(
        'SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = ANY($1)',
        [[ownerRole, appRole]],
      );
      return new Map(rows.map((r) => [r.rolname, r]));
    };
    const existing = await roles();

    // Owner: NOLOGIN; never superuser or BYPASSRLS (FORCE must bind it). Only wrong attributes are
    // altered: naming an attribute in ALTER ROLE can need superuser even when it changes nothing.
    const o = existing.get(ownerRole);
    if (!o) {
      await run(`CREATE ROLE ${owner} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION`);
      changes.push(`role ${ownerRole} created`);
    } else {
      const fix = [o.rolcanlogin && 'NOLOGIN', o.rolsuper && 'NOSUPERUSER', o.rolbypassrls && 'NOBYPASSRLS'].filter(Boolean);
      if (fix.length) {
        await run(`ALTER ROLE ${owner} ${fix.join(' ')}`);
        changes.push(`role ${ownerRole}: ${fix.join(' ')}`);
      }
    }

    const a = existing.get(appRole);
    const password = options.appPassword === undefined ? '' : ` PASSWORD ${quoteLiteral(options.appPassword)}`;
    if (!a) {
      await run(`CREATE ROLE ${app} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION${password}`);
      changes.push(`role ${appRole} created`);
    } else {
      const fix = [!a.rolcanlogin && 'LOGIN', a.rolsuper && 'NOSUPERUSER', a.rolbypassrls && 'NOBYPASSRLS', a.rolcreatedb && 'NOCREATEDB', a.rolcreaterole && 'NOCREATEROLE', a.rolreplication && 'NOREPLICATION'].filter(Boolean);
      if (fix.length) {
        await run(`ALTER ROLE ${app} ${fix.join(' ')}`);
        changes.push(`role ${appRole}: ${fix.join(' ')}`);
      }
      if (password) {
        await run(`ALTER ROLE ${app}${password}`);
        changes.push(`role ${appRole}: password set`);
      }
    }

    // The app role must not be able to act as the owner (ALTER TABLE … DISABLE ROW LEVEL SECURITY).
    const { rows: memberships } = await admin.query<{ via: string }>(
      `SELECT r.rolname AS via FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1) AND r.rolname = $2`,
      [appRole, ownerRole],
    );
    if (memberships.length > 0) {
      await run(`REVOKE ${owner} FROM ${app}`);
      changes.push(`role ${appRole}: membership in ${ownerRole} revoked`);
    }
    const { rows: indirect } = await admin.query<{ member: boolean }>("SELECT pg_has_role($1, $2, 'MEMBER') AS member", [appRole, ownerRole]);
    if (indirect[0]?.member) throw new PoolProvisioningError(`provisionPool: ${appRole} is a member of ${ownerRole} through another role; revoke that membership`);

    // The provisioning role acts as the owner (schema ownership, default privileges).
    if (!me[0].superuser) {
      const { rows } = await admin.query<{ member: boolean }>("SELECT pg_has_role(current_user, $1, 'MEMBER') AS member", [ownerRole]);
      if (!rows[0].member) {
        await run(`GRANT ${owner} TO CURRENT_USER`);
        changes.push(`role ${me[0].user}: granted ${ownerRole}`);
      }
    }

    const { rows: schemas } = await admin.query<{ owner: string }>(
      'SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1',
      [schema],
    );
    if (schemas.length === 0) {
      await run(`CREATE SCHEMA ${S} AUTHORIZATION ${owner}`);
      changes.push(`schema ${schema} created`);
    } else if (schemas[0].owner !== ownerRole) {
      await run(`ALTER SCHEMA ${S} OWNER TO ${owner}`);
      changes.push(`schema ${schema}: owner ${schemas[0].owner} -> ${ownerRole}`);
    }

    // Grants are re-applied from scratch on every run, so anything extra (TRUNCATE, CREATE) goes.
    await run(`REVOKE ALL ON SCHEMA ${S} FROM PUBLIC`);
    await run(`REVOKE ALL ON SCHEMA ${S} FROM ${app}`);
    await run(`GRANT USAGE ON SCHEMA ${S} TO ${app}`);
    await run(`REVOKE ALL ON ALL TABLES IN SCHEMA ${S} FROM ${app}`);
    await run(`GRANT ${APP_TABLE_PRIVILEGES.join(', ')} ON ALL TABLES IN SCHEMA ${S} TO ${app}`);
    await run(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${S} FROM ${app}`);
    await run(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${S} TO ${app}`);
    await run(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${S} GRANT ${APP_TABLE_PRIVILEGES.join(', ')} ON TABLES TO ${app}`);
    await run(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${S} GRANT USAGE ON SEQUENCES TO ${app}`);
    await run('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await run(`GRANT CONNECT ON DATABASE ${quoteIdent(me[0].database)} TO ${app}`);
    // No temporary objects: a TEMP table named like a pool table would shadow it for whoever gets
    // the session next (PgBouncer hands server connections from tenant to tenant). pg_temp is also
    // placed last explicitly (by default it is searched first).
    await run(`REVOKE TEMPORARY ON DATABASE ${quoteIdent(me[0].database)} FROM PUBLIC`);
    await run(`REVOKE TEMPORARY ON DATABASE ${quoteIdent(me[0].database)} FROM ${app}`);
    await run(`ALTER ROLE ${app} IN DATABASE ${quoteIdent(me[0].database)} SET search_path TO ${S}, pg_temp`);

    const tables = await enforcePoolRls(admin, schema, { tenantSetting: options.tenantSetting });
    for (const t of tables) for (const c of t.changes) changes.push(`${schema}.${t.table}: ${c}`);
    await run('COMMIT');
    return { schema, ownerRole, appRole, changes, tables };
  } catch (e) {
    await run('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
