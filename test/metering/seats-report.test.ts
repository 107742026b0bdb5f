/**
 * Active seats: the configured query (default COUNT of users with a login in the last 30 days) runs
 * for each tenant in its own context through the router (withTenant): pool tenants under the RLS
 * setting of the shared pool database, a bridge tenant in its schema. Each tenant's count is its
 * own; last month's value is reported once; a query that fails is recorded as failed (value
 * unknown) and reported by the next run once the query works.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { provisionPool } from '../../lib/pool/provision';
import { TenantRouter } from '../../lib/runtime/router';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { RouterSeatCounter } from '../../lib/metering/seat-usage';
import { monthWindow } from '../../lib/metering/usage-keys';
import { UsageReporter } from '../../lib/metering/usage-reporter';
import { applyPoolMigrations, POOL_APP_PASSWORD } from '../support/pool-db';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { stripeFor, testKey, useStripeMock } from '../support/stripe-mock';
import { meteringControlPlane, summedUsage, usageMeters } from './metering-fixture';

const pg = usePostgres();
const redisServer = useRedis();
const stripeServer = useStripeMock();
let cp: Awaited<ReturnType<typeof meteringControlPlane>>;
let router: TenantRouter;

beforeAll(async () => {
  cp = await meteringControlPlane(pg());
  await pg().createDatabase('pool');
  await pg().withAdmin(async (admin) => {
    await provisionPool(admin, { appPassword: POOL_APP_PASSWORD });
    await applyPoolMigrations(admin, { extraSql: ['CREATE TABLE users (tenant_id uuid NOT NULL, id uuid NOT NULL, last_login timestamptz, PRIMARY KEY (tenant_id, id))'] });
  }, 'pool');
  await pg().createDatabase('tenants');
  await pg().createRole('tenant_bridge_one_app', { password: 'bridge-one-pw' });
  await pg().withAdmin(async (c) => {
    await c.query('CREATE SCHEMA tenant_bridge_one AUTHORIZATION tenant_bridge_one_app');
    await c.query('CREATE TABLE tenant_bridge_one.users (id uuid PRIMARY KEY, last_login timestamptz)');
    await c.query('GRANT SELECT ON tenant_bridge_one.users TO tenant_bridge_one_app');
    await c.query("INSERT INTO tenant_bridge_one.users SELECT gen_random_uuid(), now() - make_interval(days => d) FROM unnest(ARRAY[1, 2, 3, 29, 31, 90]) AS d");
  }, 'tenants');
  router = new TenantRouter({
    controlPlane: cp.pool,
    secrets: new StaticSecretResolver({
      'local:pool_app': { username: 'pool_app', password: POOL_APP_PASSWORD },
      'local:bridge_one': { username: 'tenant_bridge_one_app', password: 'bridge-one-pw' },
    }),
    connectionBudget: 4,
    tenantCacheTtlMs: 0,
    poolConfig: { ssl: { ca: readFileSync(pg().tls!.caFile, 'utf8'), servername: pg().host, rejectUnauthorized: true } },
  });
}, 120_000);

afterAll(async () => {
  await router?.close();
  await cp?.close();
});

test('each tenant counts its own active users, in its context; last month reported once; a failing query is retried', async () => {
  const key = testKey();
  const stripe = stripeFor(stripeServer(), key);
  const meters = await usageMeters(stripe);
  const poolPlacement = { host: pg().host, port: pg().port, database: 'pool', schema: 'pool', role: 'pool_app', secret_ref: 'local:pool_app' };
  const p1 = await cp.tenant(stripe, 'pool-one', { placement: poolPlacement });
  const p2 = await cp.tenant(stripe, 'pool-two', { placement: poolPlacement });
  const b1 = await cp.tenant(stripe, 'bridge-one', { model: 'bridge', placement: { host: pg().host, port: pg().port, database: 'tenants', schema: 'tenant_bridge_one', role: 'tenant_bridge_one_app', secret_ref: 'local:bridge_one' } });
  await pg().withAdmin(async (c) => {
    const add = (tenant: string, days: number[]) =>
      c.query('INSERT INTO pool.users SELECT $1::uuid, gen_random_uuid(), now() - make_interval(days => d) FROM unnest($2::int[]) AS d', [tenant, days]);
    await add(p1.id, [0, 5, 12, 45]);
    await add(p2.id, [2, 60, 61]);
  }, 'pool');

  const redis = new Redis(redisServer().url, { maxRetriesPerRequest: 1 });
  try {
    // A query naming a column the tables lack: every tenant's measurement fails, nothing is sent.
    const broken = new UsageReporter({ pool: cp.pool, redis, stripe, seats: new RouterSeatCounter(router, "SELECT count(*) FROM users WHERE last_seen > now() - interval '30 days'") });
    const failed = await broken.run();
    expect(failed.dimensions.active_seats).toMatchObject({ reported: 0, failed: 3 });
    expect(failed.errors.join('\n')).toContain('last_seen');
    expect(stripeServer().meterEvents(key)).toEqual([]);
    const recorded = await cp.pool.query("SELECT status, value, error FROM tenancy.usage_reports WHERE tenant_id = $1", [p1.id]);
    expect(recorded.rows[0]).toMatchObject({ status: 'failed', value: null });
    expect(recorded.rows[0].error).toContain('last_seen');

    const reporter = new UsageReporter({ pool: cp.pool, redis, stripe, seats: new RouterSeatCounter(router) });
    const run = await reporter.run();
    expect(run.dimensions.active_seats).toMatchObject({ reported: 3, value: 3 + 1 + 4, failed: 0 });
    const month = monthWindow(Date.now() - 300_000, -1);
    expect(run.windows.month).toBe(month.label);
    const seats = (customer: string) => summedUsage(stripe, meters.active_seats.meterId, customer, month.start / 1000, month.end / 1000);
    expect(await seats(p1.customer!)).toBe(3);
    expect(await seats(p2.customer!)).toBe(1);
    expect(await seats(b1.customer!)).toBe(4);
    expect(stripeServer().meterEvents(key).map((e) => e.identifier).sort()).toEqual([p1, p2, b1].map((t) => `${t.id}:active_seats:${month.label}`).sort());

    const again = await reporter.run();
    expect(again.dimensions.active_seats).toMatchObject({ reported: 0, alreadyReported: 3 });
    expect(stripeServer().meterEvents(key)).toHaveLength(3);
  } finally {
    redis.disconnect();
  }
}, 180_000);

test('the seats query of one tenant cannot count another pool tenant\'s users', async () => {
  // The pool tenant's context is the RLS setting: even a query asking for every row sees its own.
  const stripe = stripeFor(stripeServer(), testKey());
  const placement = { host: pg().host, port: pg().port, database: 'pool', schema: 'pool', role: 'pool_app', secret_ref: 'local:pool_app' };
  const lone = await cp.tenant(stripe, 'pool-lone', { placement });
  await pg().query('INSERT INTO pool.users VALUES ($1, $2, now())', [lone.id, randomUUID()], 'pool');
  const all = await new RouterSeatCounter(router, 'SELECT count(*) FROM pool.users').count(lone);
  expect(all).toBe(1);
}, 60_000);
