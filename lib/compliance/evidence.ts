import { Client, type ClientConfig } from 'pg';
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
  /** The audit log's triggers refuse UPDATE, DELETE and TRUNCATE. */
  readonly appendOnly: boolean;
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
    readonly problems: readonly string[];
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
      const byId = await readControlPlane(options.controlPlaneUrl, tenants.map((t) => t.id));
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
    sources: { controlPlane: options.controlPlaneUrl ? redact(options.controlPlaneUrl) : undefined, pools: (options.pools ?? []).map((p) => `${p.region ? `${p.region}=` : ''}${redact(p.url)}`) },
    byTenant: new Map([...parts].map(([slug, p]) => [slug, { ...p }])),
  };
}

/** A URL without its password, for the report. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(not a URL)';
  }
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
  if (!log.appendOnly) problems.push('the audit log is not append-only (its triggers are missing or disabled)');
  if (!log.actions['tenant.registered']) problems.push('the audit log has no tenant.registered entry');
  if (log.hookRunsAudited < log.hookRuns) problems.push(`${log.hookRuns - log.hookRunsAudited} of ${log.hookRuns} hook runs have no audit-log entry`);
  return problems;
}

const iso = (d: unknown): string | null => (d instanceof Date ? d.toISOString() : d === null || d === undefined ? null : String(d));

async function withReadOnly<T>(config: ClientConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ application_name: 'tenancy-compliance', ...config });
  await client.connect();
  try {
    await client.query('BEGIN READ ONLY');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function readControlPlane(url: string, ids: readonly string[]): Promise<Map<string, ControlPlaneEvidence>> {
  return withReadOnly({ connectionString: url }, async (c) => {
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
    const triggers = (await c.query<{ tgname: string }>(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = 'tenancy.audit_log'::regclass AND NOT tgisinternal AND tgenabled <> 'D'`,
    )).rows.map((r) => r.tgname);
    const appendOnly = triggers.includes('audit_log_no_update_delete') && triggers.includes('audit_log_no_truncate');

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
        },
      });
    }
    return out;
  });
}

async function readPool(url: string, appRole: string): Promise<PoolEvidence> {
  const config: ClientConfig = { connectionString: url };
  const audit: RlsAuditReport = await withReadOnly(config, (c) =>
    auditRls(c, { appRole, schema: POOL_DEFAULTS.schema, tenantSetting: DEFAULT_TENANT_SETTING, endpoint: endpointOf(url) }));
  const client = new Client({ application_name: 'tenancy-compliance', ...config });
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
      problems: audit.problems,
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
