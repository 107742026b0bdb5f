import type { ClientConfig, PoolConfig } from 'pg';
import { guardedClient } from '../db/lost-connections';
import { assertSafeSlug } from '../naming';
import { tenantSqlNames } from '../db/sql';
import type { MigrationRun, TargetResult } from './result';
import { FAILING_STATUSES } from './result';
import { bridgeTarget, siloTarget, TargetError, type MigrationTarget } from './targets';

/**
 * The runner and the control plane: listing bridge and silo targets from `tenancy.tenants`
 * (placement: host, port, database, schema), and recording a run (`tenancy.migration_runs`, one
 * row) with the latest status of each target (`tenancy.tenant_migrations`).
 */

export interface TenantListOptions {
  /**
   * A connection string whose user, password and TLS parameters (sslmode, sslrootcert, …) are
   * used for every tenant database; host, port and database come from the placement. Without it
   * node-postgres takes them from PGUSER, PGPASSWORD, PGSSLMODE, … .
   */
  readonly credentialsUrl?: string;
  /** Only these slugs (each must exist). */
  readonly slugs?: readonly string[];
}

interface TenantRow {
  id: string;
  slug: string;
  model: 'silo' | 'bridge' | 'pool';
  status: string;
  placement: { host?: unknown; port?: unknown; database?: unknown; schema?: unknown };
}

/** Bridge and silo targets of every tenant not offboarded, in slug order. */
export async function listTenantTargets(controlPlane: ClientConfig, options: TenantListOptions = {}): Promise<MigrationTarget[]> {
  for (const slug of options.slugs ?? []) assertSafeSlug(slug, '--tenant');
  const client = guardedClient({ application_name: 'tenancy-migrate', ...controlPlane });
  await client.connect();
  let rows: TenantRow[];
  try {
    rows = (await client.query<TenantRow>(
      `SELECT id::text, slug, model, status, placement FROM tenancy.tenants
        WHERE model IN ('silo', 'bridge') AND status <> 'offboarded' AND ($1::text[] IS NULL OR slug = ANY($1::text[]))
        ORDER BY slug`,
      [options.slugs?.length ? options.slugs : null],
    )).rows;
  } finally {
    await client.end();
  }
  const missing = (options.slugs ?? []).filter((s) => !rows.some((r) => r.slug === s));
  if (missing.length) throw new TargetError(`no bridge or silo tenant ${missing.map((s) => JSON.stringify(s)).join(', ')} in the control plane`);
  return rows.map((row) => {
    const where = `tenant ${row.slug} (placement in tenancy.tenants)`;
    const p = row.placement ?? {};
    const expected = tenantSqlNames(row.slug);
    if (typeof p.host !== 'string' || p.host === '') throw new TargetError(`${where}: placement.host is missing`);
    const port = p.port === undefined ? 5432 : Number(p.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TargetError(`${where}: placement.port ${JSON.stringify(p.port)} is not a port`);
    const database = typeof p.database === 'string' && p.database ? p.database : row.model === 'silo' ? expected.database : undefined;
    if (!database) throw new TargetError(`${where}: placement.database is missing`);
    if (p.schema !== undefined && p.schema !== expected.schema) throw new TargetError(`${where}: placement.schema ${JSON.stringify(p.schema)} is not ${expected.schema}`);
    const connection = tenantConnection({ host: p.host, port, database }, options.credentialsUrl);
    return row.model === 'silo'
      ? siloTarget({ slug: row.slug, tenantId: row.id, connection })
      : bridgeTarget({ slug: row.slug, tenantId: row.id, connection });
  });
}

/** host/port/database of a placement with the credentials of `credentialsUrl` (a postgres:// URL). */
export function tenantConnection(placement: { host: string; port: number; database: string }, credentialsUrl?: string): PoolConfig {
  if (!credentialsUrl) return { ...placement };
  let url: URL;
  try {
    url = new URL(credentialsUrl);
  } catch {
    throw new TargetError('the tenant credentials URL is not a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new TargetError('the tenant credentials URL is not a postgres:// URL');
  // Query parameters win over the URL's host and port in pg-connection-string (and allow Unix-socket directories).
  url.searchParams.set('host', placement.host);
  url.searchParams.set('port', String(placement.port));
  url.pathname = `/${encodeURIComponent(placement.database)}`;
  return { connectionString: url.toString() };
}

/** Failures kept in a run's summary JSON (the rest are counted). */
const SUMMARY_FAILURES = 100;

/**
 * Records a run in the control plane, in one transaction: a `tenancy.migration_runs` row (with
 * the counts and the first failures as summary JSON) and, unless it was a dry run, the latest
 * status of every target in `tenancy.tenant_migrations` (needs control-plane migration 0002).
 */
export async function recordRun(controlPlane: ClientConfig, run: MigrationRun, options: { actor: string }): Promise<void> {
  // Targets a stopped wave run never started are counted, not listed, and keep their last recorded status.
  const failures = run.results.filter((r) => FAILING_STATUSES.has(r.status) && r.status !== 'not-started');
  const touched = run.results.filter((r) => r.status !== 'not-started');
  const summary = {
    ...run.summary,
    toVersion: run.toVersion ?? null,
    failures: failures.slice(0, SUMMARY_FAILURES).map((r) => ({ target: r.target, status: r.status, error: r.error ?? null, code: r.code ?? null })),
    failuresOmitted: Math.max(0, failures.length - SUMMARY_FAILURES),
  };
  const client = guardedClient({ application_name: 'tenancy-migrate', ...controlPlane });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO tenancy.migration_runs (id, started_at, finished_at, direction, dry_run, actor, summary) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [run.id, run.startedAt, run.finishedAt, run.direction, run.dryRun, options.actor, JSON.stringify(summary)],
    );
    if (!run.dryRun && touched.length) {
      await client.query(
        `INSERT INTO tenancy.tenant_migrations AS tm (target, tenant_id, kind, version, status, error, run_id, updated_at)
         SELECT r.target, (SELECT t.id FROM tenancy.tenants t WHERE t.id = r.tenant_id), r.kind, r.version, r.status, r.error, $2, now()
           FROM jsonb_to_recordset($1::jsonb) AS r (target text, tenant_id uuid, kind text, version int, status text, error text)
         ON CONFLICT (target) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, kind = EXCLUDED.kind, version = EXCLUDED.version,
           status = EXCLUDED.status, error = EXCLUDED.error, run_id = EXCLUDED.run_id, updated_at = EXCLUDED.updated_at`,
        [JSON.stringify(touched.map(rowOf)), run.id],
      );
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    await client.end();
  }
}

const rowOf = (r: TargetResult) => ({
  target: r.target,
  tenant_id: r.tenantId ?? null,
  kind: r.kind,
  version: r.version,
  status: r.status,
  error: r.error ?? (r.edited ? `edited since applied: ${r.edited.map((e) => `${e.version} (${e.name})`).join(', ')}` : null),
});
