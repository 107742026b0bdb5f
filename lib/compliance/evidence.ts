import type { Client, ClientBase, ClientConfig } from 'pg';
import { guardedClient } from '../db/lost-connections';
import { describeVerification, verifyAuditChain, type ChainVerification } from '../control-plane/audit-chain';
import { controlPlaneConnection, redactUrl } from '../control-plane/connection';
import { readStates } from '../migrate/state';
import { POOL_DEFAULTS } from '../pool/provision';
import { auditRls, type RlsAuditReport } from '../pool/rls-audit';
import type { Tenant } from '../registry/tenant-schema';
import { DEFAULT_TENANT_SETTING } from '../runtime/tenant-context';

/**
 * Live evidence from the data plane, added to the compliance report when connections are given:
 * from the control plane, each tenant's registration, migration state (tenancy.tenant_migrations),
 * hook runs and audit-log coverage; from a pool database, the RLS audit and the pool's migration
 * state (tenancy.schema_migrations), which is also the erasure path of pool tenants. Read-only.
 */

/** A pool database to audit: for the pool tenants of `region`, or of every region. */
export interface PoolConnection {
  readonly region?: string;
  readonly url: string;
}

export interface EvidenceOptions {
  /** postgres:// URL of the control-plane database. */
  readonly controlPlaneUrl?: string;
  /** Pool databases. */
  readonly pools?: readonly PoolConnection[];
  /** The pool application role the RLS audit checks. @default "pool_app" */
  readonly poolAppRole?: string;
  /** Allow a plaintext control-plane connection (local development). @default env TENANCY_INSECURE_NO_TLS === '1' */
  readonly insecureNoTls?: boolean;
}

export interface MigrationEvidence {
  readonly target: string;
  readonly kind: string;
  readonly version: number;
  readonly status: string;
  readonly error: string | null;
  readonly updatedAt: string;
}

export interface AuditLogEvidence {
  /** Entries about the tenant. */
  readonly entries: number;
  readonly firstAt: string | null;
  readonly lastAt: string | null;
  /** Entries per action (tenant.registered, hook.succeeded, …). */
  readonly actions: Readonly<Record<string, number>>;
  /** Hook runs recorded for the tenant, and how many of them the audit log has (hook.succeeded / hook.failed). */
  readonly hookRuns: number;
  readonly hookRunsAudited: number;
  /**
   * Append-only enforced: the log and its schema are owned by a role that cannot log in, no login
   * role (superusers aside) is a member of that owner or may UPDATE, DELETE, TRUNCATE (or add
   * triggers to) the log, nor is the role reading this evidence; the append-only triggers are
   * enabled; and the hash chain verifies. Never from the triggers alone.
   */
  readonly appendOnly: boolean;
  /** Why it is not (empty when it is). */
  readonly appendOnlyProblems: readonly string[];
  /** The hash chain as verified now (its head is the anchor for a later `tenancy audit log --verify --anchor`). */
  readonly chain: ChainVerification | null;
}

export interface ControlPlaneEvidence {
  readonly registered: boolean;
  readonly record?: { readonly model: string; readonly plan: string; readonly status: string; readonly region: string };
  readonly migrations: readonly MigrationEvidence[];
  /** The latest run of each hook. */
  readonly hooks: readonly { readonly hook: string; readonly status: string; readonly finishedAt: string }[];
  readonly auditLog: AuditLogEvidence;
}

export interface PoolEvidence {
  readonly database: string;
  readonly rls: {
    readonly ok: boolean;
    readonly generatedAt: string;
    readonly appRole: string;
    readonly tables: readonly string[];
    readonly views: readonly string[];
    /** Relations declared shared (no tenant data, read-only for the app role). */
    readonly shared: readonly string[];
    /** Relations neither tenant-scoped nor declared shared (each is also a problem). */
    readonly uncovered: readonly string[];
    readonly problems: readonly string[];
    /** UNIQUE without tenant_id, serial/identity columns, sequences: reported, not failing. */
    readonly warnings: readonly string[];
  };
  /** The pool's applied migrations (tenancy.schema_migrations, target "pool"). */
  readonly migrations: { readonly stateTable: boolean; readonly version: number; readonly applied: readonly { readonly version: number; readonly name: string }[] };
  /** GDPR erasure of a pool tenant: one DELETE per table with tenant_id. */
  readonly erasure: { readonly statements: readonly string[] };
}

export interface TenantEvidence {
  readonly controlPlane?: ControlPlaneEvidence;
  readonly pool?: PoolEvidence;
  /** What the evidence shows is wrong (the report counts these as failures). */
  readonly problems: readonly string[];
  /** Evidence that could not be collected (a connection failed). */
  readonly errors: readonly string[];
}

export interface FleetEvidence {
  readonly collectedAt: string;
  readonly sources: { readonly controlPlane?: string; readonly pools: readonly string[] };
  readonly byTenant: ReadonlyMap<string, TenantEvidence>;
}

/** Collects live evidence for `tenants` (each must have a stack); never throws on a data-plane failure, it is reported. */
export async function collectEvidence(tenants: readonly Tenant[], options: EvidenceOptions, now: Date = new Date()): Promise<FleetEvidence> {
  const parts = new Map<string, { controlPlane?: ControlPlaneEvidence; pool?: PoolEvidence; problems: string[]; errors: string[] }>(
    tenants.map((t) => [t.slug, { problems: [], errors: [] }]),
  );
  if (options.controlPlaneUrl) {
    try {
      const byId = await readControlPlane(controlPlaneConnection(options.controlPlaneUrl, { insecureNoTls: options.insecureNoTls, applicationName: 'tenancy-compliance' }), tenants.map((t) => t.id));
      for (const t of tenants) {
        const part = parts.get(t.slug)!;
        part.controlPlane = byId.get(t.id)!;
        part.problems.push(...controlPlaneProblems(t, part.controlPlane));
      }
    } catch (e) {
      for (const part of parts.values()) part.errors.push(`control plane: ${describe(e)}`);
    }
  }
  const poolTenants = tenants.filter((t) => t.model === 'pool');
  for (const pool of options.pools ?? []) {
    const served = poolTenants.filter((t) => pool.region === undefined || t.region === pool.region);
    if (served.length === 0) continue;
    try {
      const evidence = await readPool(pool.url, options.poolAppRole ?? POOL_DEFAULTS.appRole);
      for (const t of served) {
        const part = parts.get(t.slug)!;
        part.pool = evidence;
        part.problems.push(...evidence.rls.problems.map((p) => `RLS audit: ${p}`));
        if (!evidence.migrations.stateTable) part.problems.push('the pool database has no migration state (tenancy.schema_migrations)');
      }
    } catch (e) {
      for (const t of served) parts.get(t.slug)!.errors.push(`pool${pool.region ? ` (${pool.region})` : ''}: ${describe(e)}`);
    }
  }
  return {
    collectedAt: now.toISOString(),
    sources: { controlPlane: options.controlPlaneUrl ? redactUrl(options.controlPlaneUrl) : undefined, pools: (options.pools ?? []).map((p) => `${p.region ? `${p.region}=` : ''}${redactUrl(p.url)}`) },
    byTenant: new Map([...parts].map(([slug, p]) => [slug, { ...p }])),
  };
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

function controlPlaneProblems(t: Tenant, cp: ControlPlaneEvidence): string[] {
  const problems: string[] = [];
  if (!cp.registered) return [`tenant ${t.slug} is not registered in the control plane (tenancy.tenants): its post-apply hooks have not run`];
  for (const key of ['model', 'region', 'plan'] as const) {
    if (cp.record && cp.record[key] !== t[key]) problems.push(`the control plane records ${key} ${cp.record[key]}, the registry ${t[key]}`);
  }
  for (const m of cp.migrations) {
    if (['failed', 'edited', 'skipped-locked'].includes(m.status)) problems.push(`migration target ${m.target} is ${m.status}${m.error ? `: ${m.error}` : ''}`);
  }
  for (const h of cp.hooks) if (h.status !== 'succeeded') problems.push(`the last ${h.hook} hook run ${h.status}`);
  const log = cp.auditLog;
  if (!log.appendOnly) problems.push(`the audit log is not append-only: ${log.appendOnlyProblems.join('; ')}`);
  if (!log.actions['tenant.registered']) problems.push('the audit log has no tenant.registered entry');
  if (log.hookRunsAudited < log.hookRuns) problems.push(`${log.hookRuns - log.hookRunsAudited} of ${log.hookRuns} hook runs have no audit-log entry`);
  return problems;
}

const iso = (d: unknown): string | null => (d instanceof Date ? d.toISOString() : d === null || d === undefined ? null : String(d));

async function withReadOnly<T>(config: ClientConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = guardedClient({ application_name: 'tenancy-compliance', ...config });
  await client.connect();
  try {
    // One snapshot: the audit chain and its head are read consistently.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function readControlPlane(config: ClientConfig, ids: readonly string[]): Promise<Map<string, ControlPlaneEvidence>> {
  return withReadOnly(config, async (c) => {
    const tenants = (await c.query<{ id: string; model: string; plan: string; status: string; region: string }>(
      'SELECT id::text, model, plan, status, region FROM tenancy.tenants WHERE id = ANY($1::uuid[])', [ids],
    )).rows;
    const migrations = (await c.query<{ tenant_id: string | null; target: string; kind: string; version: number; status: string; error: string | null; updated_at: Date }>(
      `SELECT tenant_id::text, target, kind, version, status, error, updated_at FROM tenancy.tenant_migrations
        WHERE tenant_id = ANY($1::uuid[]) OR kind = 'pool' ORDER BY target`, [ids],
    )).rows;
    const hooks = (await c.query<{ tenant_id: string; hook: string; status: string; finished_at: Date }>(
      `SELECT DISTINCT ON (tenant_id, hook) tenant_id::text, hook, status, finished_at FROM tenancy.hook_runs
        WHERE tenant_id = ANY($1::uuid[]) ORDER BY tenant_id, hook, id DESC`, [ids],
    )).rows;
    const hookCounts = (await c.query<{ tenant_id: string; n: number }>(
      'SELECT tenant_id::text, count(*)::int AS n FROM tenancy.hook_runs WHERE tenant_id = ANY($1::uuid[]) GROUP BY tenant_id', [ids],
    )).rows;
    const actions = (await c.query<{ tenant_id: string; action: string; n: number; first: Date; last: Date }>(
      `SELECT tenant_id::text, action, count(*)::int AS n, min(at) AS first, max(at) AS last FROM tenancy.audit_log
        WHERE tenant_id = ANY($1::uuid[]) GROUP BY tenant_id, action ORDER BY tenant_id, action`, [ids],
    )).rows;
    const { appendOnlyProblems, chain } = await auditLogIntegrity(c);
    const appendOnly = appendOnlyProblems.length === 0;

    const out = new Map<string, ControlPlaneEvidence>();
    for (const id of ids) {
      const record = tenants.find((t) => t.id === id);
      const mine = actions.filter((a) => a.tenant_id === id);
      const counts = Object.fromEntries(mine.map((a) => [a.action, a.n]));
      const firsts = mine.map((a) => a.first.getTime());
      const lasts = mine.map((a) => a.last.getTime());
      out.set(id, {
        registered: record !== undefined,
        ...(record ? { record: { model: record.model, plan: record.plan, status: record.status, region: record.region } } : {}),
        migrations: migrations
          .filter((m) => m.tenant_id === id || (record?.model === 'pool' && m.kind === 'pool'))
          .map((m) => ({ target: m.target, kind: m.kind, version: m.version, status: m.status, error: m.error, updatedAt: iso(m.updated_at)! })),
        hooks: hooks.filter((h) => h.tenant_id === id).map((h) => ({ hook: h.hook, status: h.status, finishedAt: iso(h.finished_at)! })),
        auditLog: {
          entries: mine.reduce((n, a) => n + a.n, 0),
          firstAt: firsts.length ? new Date(Math.min(...firsts)).toISOString() : null,
          lastAt: lasts.length ? new Date(Math.max(...lasts)).toISOString() : null,
          actions: counts,
          hookRuns: hookCounts.find((h) => h.tenant_id === id)?.n ?? 0,
          hookRunsAudited: (counts['hook.succeeded'] ?? 0) + (counts['hook.failed'] ?? 0),
          appendOnly,
          appendOnlyProblems,
          chain,
        },
      });
    }
    return out;
  });
}

/**
 * Whether the audit log is append-only for everyone who logs in (superusers aside: their edits are
 * what the chain detects): ownership, privileges, memberships, the triggers, the chain.
 */
async function auditLogIntegrity(c: ClientBase): Promise<{ appendOnlyProblems: string[]; chain: ChainVerification | null }> {
  const problems: string[] = [];
  const [owner] = (await c.query<{ owner: string; owner_login: boolean; schema_owner: string; schema_owner_login: boolean; reader: string; reader_owns: boolean; chained: boolean }>(
    `SELECT o.rolname AS owner, o.rolcanlogin AS owner_login, so.rolname AS schema_owner, so.rolcanlogin AS schema_owner_login, current_user AS reader,
            (current_user = o.rolname OR pg_has_role(current_user, o.oid, 'USAGE')) AS reader_owns,
            to_regclass('tenancy.audit_log_head') IS NOT NULL AS chained
       FROM pg_class t JOIN pg_roles o ON o.oid = t.relowner JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_roles so ON so.oid = n.nspowner
      WHERE t.oid = 'tenancy.audit_log'::regclass`,
  )).rows;
  if (owner.owner_login) problems.push(`tenancy.audit_log is owned by ${owner.owner}, a role that can log in`);
  if (owner.schema_owner_login) problems.push(`the schema tenancy is owned by ${owner.schema_owner}, a role that can log in (a schema owner can drop the log)`);
  if (owner.reader_owns) problems.push(`the role reading this evidence (${owner.reader}) is or can act as the log's owner ${owner.owner}`);
  const roles = (await c.query<{ role: string; privileges: string[]; member: string | null }>(
    `SELECT r.rolname AS role,
            array_remove(ARRAY[${['UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER'].map((p) => `CASE WHEN has_table_privilege(r.oid, t.oid, '${p}') THEN '${p}' END`).join(', ')}], NULL) AS privileges,
            CASE WHEN pg_has_role(r.oid, t.relowner, 'USAGE') THEN o.rolname WHEN pg_has_role(r.oid, n.nspowner, 'USAGE') THEN so.rolname END AS member
       FROM pg_roles r, pg_class t JOIN pg_roles o ON o.oid = t.relowner JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_roles so ON so.oid = n.nspowner
      WHERE t.oid = 'tenancy.audit_log'::regclass AND r.rolcanlogin AND NOT r.rolsuper
      ORDER BY r.rolname`,
  )).rows;
  for (const r of roles) {
    if (r.member) problems.push(`login role ${r.role} is a member of ${r.member} (the owner of the log or of its schema)`);
    else if (r.privileges.length) problems.push(`login role ${r.role} has ${r.privileges.join(', ')} on tenancy.audit_log`);
  }
  const triggers = (await c.query<{ tgname: string }>(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = 'tenancy.audit_log'::regclass AND NOT tgisinternal AND tgenabled <> 'D'`,
  )).rows.map((r) => r.tgname);
  for (const name of ['audit_log_no_update_delete', 'audit_log_no_truncate', 'audit_log_chain']) {
    if (!triggers.includes(name)) problems.push(`trigger ${name} is missing or disabled`);
  }
  if (!owner.chained) {
    problems.push('the audit log has no hash chain (control-plane migration 0004 is not applied)');
    return { appendOnlyProblems: problems, chain: null };
  }
  const chain = await verifyAuditChain(c);
  if (!chain.ok) problems.push(describeVerification(chain));
  return { appendOnlyProblems: problems, chain };
}

async function readPool(url: string, appRole: string): Promise<PoolEvidence> {
  const config: ClientConfig = { connectionString: url };
  const audit: RlsAuditReport = await withReadOnly(config, (c) =>
    auditRls(c, { appRole, schema: POOL_DEFAULTS.schema, tenantSetting: DEFAULT_TENANT_SETTING, endpoint: endpointOf(url) }));
  const client = guardedClient({ application_name: 'tenancy-compliance', ...config });
  await client.connect();
  let states;
  try {
    states = await readStates(client, ['pool']);
  } finally {
    await client.end().catch(() => undefined);
  }
  const applied = states.byTarget.get('pool') ?? [];
  return {
    database: audit.database.name,
    rls: {
      ok: audit.ok,
      generatedAt: audit.generatedAt,
      appRole: audit.appRole.name,
      tables: audit.tables.map((t) => t.table),
      views: audit.views.map((v) => v.view),
      shared: audit.relations.filter((r) => r.coverage === 'shared').map((r) => r.relation),
      uncovered: audit.relations.filter((r) => r.coverage === 'uncovered').map((r) => r.relation),
      problems: audit.problems,
      warnings: audit.warnings,
    },
    migrations: { stateTable: states.exists, version: applied.reduce((v, m) => Math.max(v, m.version), 0), applied: applied.map((m) => ({ version: m.version, name: m.name })) },
    erasure: { statements: audit.tables.map((t) => `DELETE FROM ${t.table} WHERE ${audit.tenantColumn} = $1`) },
  };
}

function endpointOf(url: string): { host?: string; port?: number } {
  try {
    const u = new URL(url);
    return { host: u.hostname || undefined, port: u.port ? Number(u.port) : undefined };
  } catch {
    return {};
  }
}
