import type { ClientBase } from 'pg';
import { DEFAULT_TENANT_SETTING } from '../runtime/tenant-context';
import { poolRelations, SHARED_TABLE_MARKER, SHARED_TABLE_WRITE_PRIVILEGES, type Coverage, type RelationKind } from './coverage';
import { normalizePolicyExpression, POOL_DEFAULTS, tenantPolicyExpression } from './provision';

/**
 * The RLS audit of the pool database: every relation of the schema (tables, partitions, views,
 * materialized views, foreign tables, sequences) and how it is covered (lib/pool/coverage.ts:
 * tenant table or declared shared; anything else is a problem); for every table with a
 * `tenant_id` column, whether tenant isolation holds for the application role; for every shared
 * table, that the app role can only read it; warnings for what leaks without breaking isolation
 * (UNIQUE without tenant_id, serial/identity columns, sequences). As PostgreSQL's catalogs say,
 * not as the migrations intended. The report is JSON-serialisable evidence (SOC 2 CC6.1): when, which
 * database, audited as whom, for which role, what was found.
 */

export interface RlsAuditOptions {
  /** The role the application logs in as. */
  readonly appRole: string;
  /** @default "pool" */
  readonly schema?: string;
  /** The setting the policy must read. @default "app.tenant_id" */
  readonly tenantSetting?: string;
  /** Where the database is, for the report (never a password). */
  readonly endpoint?: { readonly host?: string; readonly port?: number };
}

export interface PolicyAudit {
  readonly name: string;
  readonly permissive: boolean;
  /** ALL, SELECT, INSERT, UPDATE or DELETE. */
  readonly command: string;
  readonly roles: readonly string[];
  readonly using: string | null;
  readonly withCheck: string | null;
  /** The policy applies to the app role (PUBLIC, the role itself, or a role it belongs to). */
  readonly appliesToAppRole: boolean;
}

export interface TableAudit {
  /** `schema.table`. */
  readonly table: string;
  readonly owner: string;
  readonly rlsEnabled: boolean;
  readonly rlsForced: boolean;
  readonly policies: readonly PolicyAudit[];
  /** The first valid, non-partial index whose first column is tenant_id (primary key first), or null. */
  readonly tenantIndex: { readonly name: string; readonly definition: string } | null;
  /** Why the app role could get around the policies on this table (empty when it cannot). */
  readonly appRoleBypass: readonly string[];
  /** The app role's privileges on the table. */
  readonly appRolePrivileges: readonly string[];
  readonly problems: readonly string[];
}

export interface ViewAudit {
  /** `schema.view`. */
  readonly view: string;
  readonly kind: 'view' | 'materialized view';
  readonly owner: string;
  readonly securityInvoker: boolean;
  /** Tenant tables it reads, directly or through other views. */
  readonly over: readonly string[];
  readonly problems: readonly string[];
}

/** One relation of the pool schema, as the coverage rule classifies it. */
export interface RelationAudit {
  /** `schema.name`. */
  readonly relation: string;
  readonly kind: RelationKind;
  readonly partitionOf: string | null;
  readonly coverage: Coverage;
  /** For a shared relation: the write privileges the app role holds on it (must be none). */
  readonly appRoleWrites: readonly string[];
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
}

export interface RlsAuditReport {
  readonly report: 'tenancy rls audit';
  readonly formatVersion: 2;
  readonly generatedAt: string;
  readonly database: { readonly name: string; readonly host?: string; readonly port?: number; readonly serverVersion: string };
  readonly auditedAs: string;
  readonly schema: string;
  readonly tenantColumn: string;
  readonly expectedPolicy: string;
  readonly appRole: {
    readonly name: string;
    readonly exists: boolean;
    readonly superuser: boolean;
    readonly bypassRls: boolean;
    readonly memberOf: readonly string[];
  };
  /** Every relation of the schema and its coverage (the inventory). */
  readonly relations: readonly RelationAudit[];
  /** The tenant tables (with tenant_id), in detail. */
  readonly tables: readonly TableAudit[];
  readonly views: readonly ViewAudit[];
  /** Every problem, prefixed with its relation: any makes the audit fail. */
  readonly problems: readonly string[];
  /** What reveals something about other tenants without breaking row isolation: reported, the audit does not fail. */
  readonly warnings: readonly string[];
  readonly ok: boolean;
}

/** Bad input (the schema or the role does not exist): the CLI exits 2. */
export class RlsAuditUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RlsAuditUsageError';
  }
}

const COMMANDS: Readonly<Record<string, string>> = { '*': 'ALL', r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE' };
const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;

/** Reads the catalogs of the database `client` is connected to; read-only (any role that can read pg_catalog). */
export async function auditRls(client: Pick<ClientBase, 'query'>, options: RlsAuditOptions): Promise<RlsAuditReport> {
  const schema = options.schema ?? POOL_DEFAULTS.schema;
  const column = POOL_DEFAULTS.tenantColumn;
  const expectedPolicy = tenantPolicyExpression(options.tenantSetting ?? DEFAULT_TENANT_SETTING);
  const expected = normalizePolicyExpression(expectedPolicy);

  const { rows: [meta] } = await client.query<{ database: string; user: string; version: string; now: Date; schema_exists: boolean }>(
    `SELECT current_database() AS database, current_user AS user, current_setting('server_version') AS version, now() AS now,
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists`,
    [schema],
  );
  if (!meta.schema_exists) throw new RlsAuditUsageError(`schema ${JSON.stringify(schema)} does not exist in database ${meta.database}`);

  const { rows: roleRows } = await client.query<{ oid: number; rolsuper: boolean; rolbypassrls: boolean; member_of: string[] }>(
    `SELECT r.oid::int AS oid, r.rolsuper, r.rolbypassrls,
            coalesce(array(SELECT g.rolname FROM pg_roles g WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER') ORDER BY g.rolname)::text[], '{}') AS member_of
       FROM pg_roles r WHERE r.rolname = $1`,
    [options.appRole],
  );
  if (roleRows.length === 0) throw new RlsAuditUsageError(`role ${JSON.stringify(options.appRole)} does not exist`);
  const role = roleRows[0];
  const appRole = { name: options.appRole, exists: true, superuser: role.rolsuper, bypassRls: role.rolbypassrls, memberOf: role.member_of };

  const { rows: tableRows } = await client.query<{
    oid: number; relname: string; owner: string; relrowsecurity: boolean; relforcerowsecurity: boolean;
    owned_by_app: boolean; app_member_of_owner: boolean; privileges: string[];
    index_name: string | null; index_def: string | null;
  }>(
    `SELECT c.oid::int AS oid, c.relname, pg_get_userbyid(c.relowner) AS owner, c.relrowsecurity, c.relforcerowsecurity,
            c.relowner = $3::oid AS owned_by_app,
            c.relowner <> $3::oid AND pg_has_role($3::oid, c.relowner, 'MEMBER') AS app_member_of_owner,
            array(SELECT p FROM unnest($4::text[]) AS p WHERE has_table_privilege($3::oid, c.oid, p)) AS privileges,
            ix.name AS index_name, ix.def AS index_def
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
       LEFT JOIN LATERAL (
         SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
          WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum AND i.indisvalid AND i.indpred IS NULL
          ORDER BY i.indisprimary DESC, i.indnatts DESC, ic.relname
          LIMIT 1
       ) ix ON true
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
      ORDER BY c.relname`,
    [schema, column, role.oid, PRIVILEGES],
  );

  const { rows: policyRows } = await client.query<{
    polrelid: number; polname: string; polpermissive: boolean; polcmd: string; roles: string[]; applies: boolean; qual: string | null; with_check: string | null;
  }>(
    `SELECT p.polrelid::int AS polrelid, p.polname, p.polpermissive, p.polcmd::text AS polcmd,
            array(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) AS r ORDER BY 1)::text[] AS roles,
            EXISTS (SELECT 1 FROM unnest(p.polroles) AS r WHERE r = 0 OR pg_has_role($2::oid, r, 'MEMBER')) AS applies,
            pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
       FROM pg_policy p WHERE p.polrelid = ANY($1::oid[])
      ORDER BY p.polname`,
    [tableRows.map((t) => t.oid), role.oid],
  );

  const tables: TableAudit[] = tableRows.map((t) => {
    const name = `${schema}.${t.relname}`;
    const policies: PolicyAudit[] = policyRows
      .filter((p) => p.polrelid === t.oid)
      .map((p) => ({
        name: p.polname,
        permissive: p.polpermissive,
        command: COMMANDS[p.polcmd] ?? p.polcmd,
        roles: p.roles,
        using: p.qual,
        withCheck: p.with_check,
        appliesToAppRole: p.applies,
      }));
    const problems: string[] = [];
    if (!t.relrowsecurity) problems.push('row level security is not enabled');
    if (!t.relforcerowsecurity) problems.push('row level security is not forced (the owner is not subject to it)');
    problems.push(...policyProblems(policies, expected));
    if (!t.index_name) problems.push(`no index is led by ${column} (every tenant query scans the table)`);

    const bypass: string[] = [];
    if (role.rolsuper) bypass.push('superuser');
    if (role.rolbypassrls) bypass.push('BYPASSRLS');
    if (t.owned_by_app) bypass.push('owns the table (can disable row level security)');
    if (t.app_member_of_owner) bypass.push(`member of the owner ${t.owner} (can disable row level security)`);
    for (const reason of bypass) problems.push(`${options.appRole} can bypass RLS: ${reason}`);
    if (t.privileges.includes('TRUNCATE') && !role.rolsuper) problems.push(`${options.appRole} has TRUNCATE, which ignores row level security`);

    return {
      table: name,
      owner: t.owner,
      rlsEnabled: t.relrowsecurity,
      rlsForced: t.relforcerowsecurity,
      policies,
      tenantIndex: t.index_name ? { name: t.index_name, definition: t.index_def ?? '' } : null,
      appRoleBypass: bypass,
      appRolePrivileges: t.privileges,
      problems,
    };
  });

  const views = await auditViews(client, tableRows.map((t) => t.oid));
  const relations = await auditRelations(client, schema, role.oid, new Set(tableRows.map((t) => t.oid)));
  const problems = [
    ...relations.flatMap((r) => r.problems.map((p) => `${r.relation}: ${p}`)),
    ...tables.flatMap((t) => t.problems.map((p) => `${t.table}: ${p}`)),
    ...views.flatMap((v) => v.problems.map((p) => `${v.view}: ${p}`)),
  ];
  const warnings = relations.flatMap((r) => r.warnings.map((w) => `${r.relation}: ${w}`));
  return {
    report: 'tenancy rls audit',
    formatVersion: 2,
    generatedAt: new Date(meta.now).toISOString(),
    database: { name: meta.database, ...(options.endpoint?.host ? { host: options.endpoint.host } : {}), ...(options.endpoint?.port ? { port: options.endpoint.port } : {}), serverVersion: meta.version },
    auditedAs: meta.user,
    schema,
    tenantColumn: column,
    expectedPolicy,
    appRole,
    relations,
    tables,
    views,
    problems,
    warnings,
    ok: problems.length === 0,
  };
}

/** What is wrong with a table's policies for tenant isolation (the contract: docs/DATA-PLANE.md, "Roles"). */
function policyProblems(policies: readonly PolicyAudit[], expected: string): string[] {
  const problems: string[] = [];
  const isTenantExpr = (e: string | null) => normalizePolicyExpression(e) === expected;
  const permissive = policies.filter((p) => p.permissive && p.appliesToAppRole);
  const isolation = permissive.find((p) => p.name === POOL_DEFAULTS.policyName) ?? permissive.find((p) => p.command === 'ALL' && isTenantExpr(p.using));
  if (!isolation) {
    const named = policies.find((p) => p.name === POOL_DEFAULTS.policyName);
    problems.push(named
      ? `policy ${named.name} is not a permissive policy that applies to the app role`
      : `no permissive ${POOL_DEFAULTS.policyName} policy applies to the app role (with RLS on, nothing is visible; with RLS off, everything is)`);
  } else {
    if (isolation.command !== 'ALL') problems.push(`policy ${isolation.name} covers ${isolation.command} only, not ALL commands`);
    if (!isTenantExpr(isolation.using)) problems.push(`policy ${isolation.name}: USING ${isolation.using ?? '(none)'} is not the tenant isolation expression`);
    if (isolation.withCheck === null) problems.push(`policy ${isolation.name} has no WITH CHECK (writes are not checked against the tenant explicitly)`);
    else if (!isTenantExpr(isolation.withCheck)) problems.push(`policy ${isolation.name}: WITH CHECK ${isolation.withCheck} is not the tenant isolation expression`);
  }
  for (const p of permissive) {
    if (p !== isolation) problems.push(`permissive policy ${p.name} (${p.command}) widens access: permissive policies are OR-ed with ${POOL_DEFAULTS.policyName}`);
  }
  return problems;
}

/** Views and materialized views, in any schema, that read tenant tables directly or through other views. */
async function auditViews(client: Pick<ClientBase, 'query'>, tenantTables: readonly number[]): Promise<ViewAudit[]> {
  if (tenantTables.length === 0) return [];
  const { rows } = await client.query<{
    nspname: string; relname: string; relkind: string; owner: string; owner_bypasses: boolean; reloptions: string[] | null; over: string[];
  }>(
    `WITH RECURSIVE deps AS (
       SELECT DISTINCT r.ev_class AS view_oid, d.refobjid AS base
         FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
     ), reach(view_oid, table_oid) AS (
       SELECT view_oid, base FROM deps WHERE base = ANY($1::oid[])
       UNION
       SELECT d.view_oid, reach.table_oid FROM deps d JOIN reach ON d.base = reach.view_oid
     )
     SELECT n.nspname, c.relname, c.relkind::text AS relkind, pg_get_userbyid(c.relowner) AS owner,
            (o.rolsuper OR o.rolbypassrls) AS owner_bypasses, c.reloptions,
            array_agg(DISTINCT tn.nspname || '.' || t.relname ORDER BY tn.nspname || '.' || t.relname) AS over
       FROM reach
       JOIN pg_class c ON c.oid = reach.view_oid AND c.relkind IN ('v', 'm')
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_roles o ON o.oid = c.relowner
       JOIN pg_class t ON t.oid = reach.table_oid
       JOIN pg_namespace tn ON tn.oid = t.relnamespace
      GROUP BY n.nspname, c.relname, c.relkind, c.relowner, o.rolsuper, o.rolbypassrls, c.reloptions
      ORDER BY n.nspname, c.relname`,
    [tenantTables],
  );
  return rows.map((v) => {
    const securityInvoker = (v.reloptions ?? []).some((o) => /^security_invoker=(true|on|yes|1)$/i.test(o));
    const kind = v.relkind === 'm' ? 'materialized view' : 'view';
    const problems: string[] = [];
    if (kind === 'materialized view') {
      problems.push('materialized view over tenant tables: its stored rows are not subject to row level security');
    } else if (!securityInvoker) {
      problems.push(v.owner_bypasses
        ? `view without security_invoker, owned by ${v.owner} who bypasses RLS: it shows every tenant's rows`
        : `view without security_invoker: it reads the tables with ${v.owner}'s rights (isolation then rests on FORCE ROW LEVEL SECURITY); set security_invoker = true`);
    }
    return { view: `${v.nspname}.${v.relname}`, kind, owner: v.owner, securityInvoker, over: v.over, problems };
  });
}

/**
 * The inventory: every relation of `schema` with its coverage; problems for what is neither
 * tenant-scoped nor declared shared and for shared relations the app role can write; warnings
 * for tenant tables whose UNIQUE constraints or indexes leave out tenant_id (a duplicate-key error
 * tells one tenant that another holds a value) or that draw from a sequence (serial/identity: the
 * values tell one tenant how many rows the others insert), and for sequences themselves.
 */
async function auditRelations(client: Pick<ClientBase, 'query'>, schema: string, appRole: number, tenantTables: ReadonlySet<number>): Promise<RelationAudit[]> {
  const relations = await poolRelations(client, schema);
  const oids = relations.map((r) => r.oid);
  const { rows: writes } = await client.query<{ oid: number; privileges: string[] }>(
    `SELECT c.oid::int AS oid, array(SELECT p FROM unnest($3::text[]) AS p WHERE has_table_privilege($2::oid, c.oid, p)) AS privileges
       FROM pg_class c WHERE c.oid = ANY($1::oid[]) AND c.relkind IN ('r', 'p', 'm', 'f')`,
    [oids, appRole, SHARED_TABLE_WRITE_PRIVILEGES],
  );
  const { rows: uniques } = await client.query<{ oid: number; name: string; def: string }>(
    `SELECT i.indrelid::int AS oid, ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = ANY($1::oid[]) AND i.indisunique
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = i.indrelid AND a.attname = $2 AND a.attnum = ANY((i.indkey::int2[])[0:i.indnkeyatts - 1]))
      ORDER BY ic.relname`,
    [[...tenantTables], POOL_DEFAULTS.tenantColumn],
  );
  const { rows: counters } = await client.query<{ oid: number; column: string; how: string }>(
    `SELECT a.attrelid::int AS oid, a.attname AS column,
            CASE WHEN a.attidentity <> '' THEN 'identity' ELSE 'default ' || pg_get_expr(d.adbin, d.adrelid) END AS how
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) ~* 'nextval\\(')
      ORDER BY a.attname`,
    [[...tenantTables]],
  );
  return relations.map((r) => {
    const problems = [...r.problems];
    const warnings: string[] = [];
    const appRoleWrites = r.coverage === 'shared' ? writes.find((w) => w.oid === r.oid)?.privileges ?? [] : [];
    if (appRoleWrites.length) problems.push(`declared ${SHARED_TABLE_MARKER} but the app role can write it (${appRoleWrites.join(', ')}): a tenant could change what every tenant reads`);
    for (const u of uniques.filter((x) => x.oid === r.oid)) {
      warnings.push(`unique index ${u.name} does not include ${POOL_DEFAULTS.tenantColumn} (${u.def.replace(/^.* USING /, 'USING ')}): a duplicate-key error tells a tenant that another tenant holds the value`);
    }
    for (const c of counters.filter((x) => x.oid === r.oid)) {
      warnings.push(`column ${c.column} is drawn from a sequence (${c.how}): its values tell a tenant how many rows other tenants insert; use uuid keys`);
    }
    if (r.kind === 'sequence') warnings.push('a sequence in the pool schema is shared by every tenant: its values reveal other tenants\' insert volume');
    return { relation: `${schema}.${r.name}`, kind: r.kind, partitionOf: r.partitionOf, coverage: r.coverage, appRoleWrites, problems, warnings };
  });
}
