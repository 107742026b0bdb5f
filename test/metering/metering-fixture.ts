/**
 * What the metering tests share: a control plane migrated through 0008 (usage_reports) by an
 * RDS-style master role (CREATEROLE, not superuser) and used by a runtime role that is only a
 * member of tenancy_control_plane (as the CLI and the worker run); tenants with Stripe customers
 * on the local Stripe-compatible server, whose usage meters the catalog set-up created.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import type Stripe from 'stripe';
import { ensureUsageCatalog, findUsageMeters } from '../../lib/billing/meters';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import type { PostgresCluster } from '../support/postgres';
import { repoRoot } from '../support/pool-db';

export const METERING_MASTER = { user: 'metering_master', password: 'metering-master-pw (test only)' };
export const METERING_RUNTIME = { user: 'metering_runtime', password: 'metering-runtime-pw (test only)' };
/** The migration that adds tenancy.usage_reports. */
export const USAGE_MIGRATION = 8;

/**
 * A copy of migrations/ with the control-plane migrations through 0008 only (for the CLI in a
 * child process, which migrates its control plane to the newest it is given).
 */
export function migrationsThroughUsage(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-metering-migrations-'));
  const source = join(repoRoot(), 'migrations');
  for (const set of readdirSync(source)) {
    mkdirSync(join(dir, set));
    for (const file of readdirSync(join(source, set))) {
      const version = Number(/^(\d+)_/.exec(file)?.[1]);
      if (set !== 'control-plane' || version <= USAGE_MIGRATION) cpSync(join(source, set, file), join(dir, set, file));
    }
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function meteringControlPlane(cluster: PostgresCluster, database = 'control_plane') {
  await cluster.createRole(METERING_MASTER.user, { password: METERING_MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await cluster.createRole(METERING_RUNTIME.user, { password: METERING_RUNTIME.password });
  await cluster.createDatabase(database, { owner: METERING_MASTER.user });
  const run = await migrateTargets({
    targets: [controlPlaneTarget({ connection: cluster.clientConfig({ ...METERING_MASTER, database }) })],
    migrations: loadMigrationSets(join(repoRoot(), 'migrations')),
    toVersion: USAGE_MIGRATION,
  });
  const failed = run.results.filter((r) => r.error);
  if (failed.length) throw new Error(`control-plane migration failed: ${failed.map((r) => r.error).join('; ')}`);
  await cluster.query(`GRANT tenancy_control_plane TO ${METERING_RUNTIME.user}`);
  const pool = new Pool({ ...cluster.clientConfig({ ...METERING_RUNTIME, database }), max: 6 });
  const controlPlane = new ControlPlane(pool, 'metering-test');
  return {
    pool,
    /** The master role's URL over TLS (what the CLI gets as TENANCY_CONTROL_PLANE_URL). */
    url: `postgres://${METERING_MASTER.user}:${encodeURIComponent(METERING_MASTER.password)}@${cluster.host}:${cluster.port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(cluster.tls!.caFile)}`,
    /** A tenant registered active, with a Stripe customer (unless `customer: false`). */
    async tenant(stripe: Stripe, slug: string, options: { customer?: boolean; model?: 'pool' | 'bridge' | 'silo'; placement?: Record<string, unknown> } = {}) {
      const id = randomUUID();
      await controlPlane.upsertTenant({
        id,
        slug,
        model: options.model ?? 'pool',
        plan: 'pro',
        status: 'active',
        region: 'us-east-1',
        placement: options.placement ?? { host: 'pool.internal', port: 5432, database: 'app', role: 'app_pool', secret_ref: 'pool-app' },
      });
      let customer: string | undefined;
      if (options.customer !== false) {
        customer = (await stripe.customers.create({ name: slug, metadata: { tenant_id: id } })).id;
        await controlPlane.setStripeCustomerId(id, customer);
      }
      return { id, slug, customer };
    },
    close: () => pool.end(),
  };
}

/** The usage catalog (meters and metered prices) on the account; the meters by dimension. */
export async function usageMeters(stripe: Stripe) {
  await ensureUsageCatalog(stripe);
  return findUsageMeters(stripe);
}

/** The sum of a customer's event summaries on a meter over [start, end) (Unix seconds, hour-aligned). */
export async function summedUsage(stripe: Stripe, meterId: string, customer: string, start: number, end: number): Promise<number> {
  let total = 0;
  for await (const s of stripe.billing.meters.listEventSummaries(meterId, { customer, start_time: start, end_time: end })) total += s.aggregated_value;
  return total;
}
