/**
 * TenantRouter against a real PostgreSQL 15 holding a control plane (migrations/control-plane),
 * a provisioned pool database, bridge schemas and silo databases: tenant resolution from Host
 * subdomains and JWTs, refusals, one shared pool for pool tenants, LRU eviction that ends pools,
 * and a connection budget that real connections never exceed.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { Pool, type PoolConfig } from 'pg';
import { StaticSecretResolver, type DbCredentials } from '../../lib/runtime/secret-resolver';
import { TenantResolutionError, TenantRouter, type PoolEvent, type TenantRouterOptions } from '../../lib/runtime/router';
import { createPoolDatabase, POOL_APP_PASSWORD, repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

const BASE = 'example.test';
const GATE = 777_001;
const pg = usePostgres();

interface Fixture {
  readonly id: string;
  readonly slug: string;
  readonly model: 'pool' | 'bridge' | 'silo';
  readonly status: string;
  readonly subdomain?: string;
  readonly password?: string;
}
const T = {
  alpha: { id: randomUUID(), slug: 'alpha', model: 'pool', status: 'active' },
  bravo: { id: randomUUID(), slug: 'bravo', model: 'pool', status: 'active' },
  foxtrot: { id: randomUUID(), slug: 'foxtrot', model: 'pool', status: 'active', subdomain: 'fox' },
  suspended: { id: randomUUID(), slug: 'charlie', model: 'pool', status: 'suspended' },
  offboarded: { id: randomUUID(), slug: 'delta', model: 'pool', status: 'offboarded' },
  silo1: { id: randomUUID(), slug: 'silo-1', model: 'silo', status: 'active' },
  silo2: { id: randomUUID(), slug: 'silo-2', model: 'silo', status: 'active' },
} satisfies Record<string, Fixture>;
const BRIDGES: Fixture[] = Array.from({ length: 6 }, (_, i) => ({ id: randomUUID(), slug: `bridge-${i + 1}`, model: 'bridge', status: 'active' }));
const WRONG_SECRET: Fixture = { id: randomUUID(), slug: 'rotated', model: 'bridge', status: 'active' };

const sqlName = (slug: string) => `tenant_${slug.replace(/-/g, '_')}`;
const secrets = new Map<string, DbCredentials>();
let controlPlane: Pool;

beforeAll(async () => {
  await createPoolDatabase(pg(), 'pool');
  await pg().createDatabase('control_plane');
  await pg().query(readFileSync(join(repoRoot(), 'migrations', 'control-plane', '0001_init.up.sql'), 'utf8'), [], 'control_plane');
  await pg().createDatabase('tenants');

  const rows: unknown[][] = [];
  const placement = (f: Fixture, database: string, role: string, schema: string) => ({
    host: pg().host, port: pg().port, database, schema, role, secret_ref: `local:${role}`, ...(f.subdomain ? { subdomain: f.subdomain } : {}),
  });
  for (const f of [T.alpha, T.bravo, T.foxtrot, T.suspended, T.offboarded]) rows.push([f, placement(f, 'pool', 'pool_app', 'pool')]);
  secrets.set('local:pool_app', { username: 'pool_app', password: POOL_APP_PASSWORD });

  for (const f of [...BRIDGES, WRONG_SECRET]) {
    const name = sqlName(f.slug);
    await pg().createRole(`${name}_app`, { password: `pw-${f.slug}` });
    await pg().withAdmin(async (c) => {
      await c.query(`CREATE SCHEMA ${name} AUTHORIZATION ${name}_app`);
      await c.query(`CREATE TABLE ${name}.items (name text)`);
      await c.query(`INSERT INTO ${name}.items VALUES ('item of ${f.slug}')`);
      await c.query(`GRANT SELECT ON ${name}.items TO ${name}_app`);
    }, 'tenants');
    rows.push([f, placement(f, 'tenants', `${name}_app`, name)]);
    secrets.set(`local:${name}_app`, { username: `${name}_app`, password: f === WRONG_SECRET ? 'not the password' : `pw-${f.slug}` });
  }
  for (const f of [T.silo1, T.silo2]) {
    const name = sqlName(f.slug);
    await pg().createRole(`${name}_app`, { password: `pw-${f.slug}` });
    await pg().createDatabase(name, { owner: `${name}_app` });
    rows.push([f, placement(f, name, `${name}_app`, name)]);
    secrets.set(`local:${name}_app`, { username: `${name}_app`, password: `pw-${f.slug}` });
  }
  for (const [f, p] of rows as [Fixture, object][]) {
    await pg().query(
      "INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, $3, 'pro', $4, 'us-east-1', $5)",
      [f.id, f.slug, f.model, f.status, JSON.stringify(p)],
      'control_plane',
    );
  }
  // Two rows for the pool tenants.
  await pg().withAdmin(async (c) => {
    await c.query('BEGIN');
    for (const f of [T.alpha, T.bravo]) {
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [f.id]);
      await c.query("INSERT INTO pool.projects (tenant_id, id, name) VALUES ($1, gen_random_uuid(), $2)", [f.id, `project of ${f.slug}`]);
    }
    await c.query('COMMIT');
  }, 'pool');
  controlPlane = new Pool({ ...pg().adminConfig('control_plane'), max: 2 });
});

afterAll(async () => {
  await controlPlane?.end();
});

let keys: { publicKey: KeyLike; privateKey: KeyLike };
let otherKeys: { publicKey: KeyLike; privateKey: KeyLike };
beforeAll(async () => {
  keys = await generateKeyPair('ES256');
  otherKeys = await generateKeyPair('ES256');
});

const token = (claims: Record<string, unknown>, options: { key?: KeyLike; exp?: number | string } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://auth.example.test')
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? keys.privateKey);

/** A router over the fixture; every pool it opens is recorded with its live connection count. */
function makeRouter(overrides: Partial<TenantRouterOptions> = {}) {
  const events: PoolEvent[] = [];
  const pools = new Map<string, Pool[]>();
  const connections = { open: 0, max: 0 };
  const ssl = pg().clientConfig({ user: 'x', database: 'x' }).ssl;
  const router = new TenantRouter({
    controlPlane,
    secrets: new StaticSecretResolver(secrets),
    baseDomain: BASE,
    // Host-only routing is opted into here so these tests can route by Host; the default (a token
    // is required when JWT is configured) is covered by test/security/router-fail-closed.test.ts.
    jwt: { key: keys.publicKey, requireToken: false, verify: { issuer: 'https://auth.example.test', algorithms: ['ES256'] } },
    connectionBudget: 20,
    maxConnectionsPerPool: 2,
    poolConfig: { ssl },
    tenantCacheTtlMs: 0,
    onPoolEvent: (e) => events.push(e),
    createPool: (config: PoolConfig, target) => {
      const pool = new Pool(config);
      pool.on('connect', () => {
        connections.open++;
        connections.max = Math.max(connections.max, connections.open);
      });
      pool.on('remove', () => connections.open--);
      pools.set(target.key, [...(pools.get(target.key) ?? []), pool]);
      return pool;
    },
    ...overrides,
  });
  return { router, events, pools, connections };
}

const slugOf = (key: string) => {
  const [model, tenantId, , , database] = JSON.parse(key) as [string, string | null, string, number, string];
  return model === 'pool' ? `pool:${database}` : Object.values({ ...T, ...Object.fromEntries(BRIDGES.map((b) => [b.slug, b])) }).find((f) => f.id === tenantId)?.slug;
};

async function expectRefused(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const error = await promise.then(() => undefined, (e) => e);
  expect(error).toBeInstanceOf(TenantResolutionError);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.stringMatching(message) });
}

describe('resolution', () => {
  let router: TenantRouter;
  beforeAll(() => {
    router = makeRouter().router;
  });

  test('from the Host subdomain (port, case and trailing dot ignored; custom subdomain from the placement)', async () => {
    expect((await router.resolve({ host: 'alpha.example.test' })).id).toBe(T.alpha.id);
    expect((await router.resolve({ headers: { host: 'BRAVO.Example.Test:8443' } })).slug).toBe('bravo');
    expect((await router.resolve({ host: 'fox.example.test.' })).slug).toBe('foxtrot');
    await expectRefused(router.resolve({ host: 'foxtrot.example.test' }), 'unknown-tenant', /no tenant has the subdomain "foxtrot"/);
    const r = await router.resolve({ host: 'silo-1.example.test' });
    expect(r).toEqual({
      id: T.silo1.id, slug: 'silo-1', model: 'silo', status: 'active',
      placement: { host: pg().host, port: pg().port, database: 'tenant_silo_1', schema: 'tenant_silo_1', role: 'tenant_silo_1_app', secretRef: 'local:tenant_silo_1_app' },
      createdAt: expect.any(Date),
    });
  });

  test('hosts that are not <label>.<base domain> name no tenant', async () => {
    for (const host of ['example.test', 'alpha.example.test.evil.test', 'a.alpha.example.test', 'alpha-example.test', '127.0.0.1']) {
      await expectRefused(router.resolve({ host }), 'no-tenant', /cannot tell the tenant/);
    }
    await expectRefused(router.resolve({ headers: {} }), 'no-tenant', /no tenant subdomain and no bearer token/);
  });

  test('from a JWT claim: valid, expired, wrong key, missing claim, bad claim', async () => {
    expect((await router.resolve({ token: await token({ tenant_id: T.alpha.id }) })).slug).toBe('alpha');
    expect((await router.resolve({ headers: { authorization: `Bearer ${await token({ tenant_id: T.bravo.id.toUpperCase() })}` } })).slug).toBe('bravo');
    expect((await router.resolve({ token: await token({ tenant_id: 'silo-2' }) })).id).toBe(T.silo2.id); // a slug is accepted too
    await expectRefused(router.resolve({ token: await token({ tenant_id: T.alpha.id }, { exp: Math.floor(Date.now() / 1000) - 120 }) }), 'token-expired', /expired/);
    await expectRefused(router.resolve({ token: await token({ tenant_id: T.alpha.id }, { key: otherKeys.privateKey }) }), 'token-invalid', /signature verification failed/);
    await expectRefused(router.resolve({ token: await token({ sub: 'user-1' }) }), 'claim-missing', /no "tenant_id" claim/);
    await expectRefused(router.resolve({ token: await token({ tenant_id: 42 }) }), 'claim-invalid', /neither a tenant id nor a slug/);
    await expectRefused(router.resolve({ token: 'not.a.jwt' }), 'token-invalid', /refused/);
    // A slug passes to a new tenant after an offboarding: a slug token must say when it was issued,
    // and a token issued before the tenant existed (to the slug's earlier holder) is refused.
    const [{ created }] = await pg().query("SELECT floor(extract(epoch FROM created_at))::int AS created FROM tenancy.tenants WHERE slug = 'silo-2'", [], 'control_plane');
    const slugToken = (iat?: number) => {
      const jwt = new SignJWT({ tenant_id: 'silo-2' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('https://auth.example.test').setExpirationTime(created + 600);
      return (iat === undefined ? jwt : jwt.setIssuedAt(iat)).sign(keys.privateKey);
    };
    await expectRefused(router.resolve({ token: await slugToken() }), 'claim-invalid', /by slug but has no "iat"/);
    await expectRefused(router.resolve({ token: await slugToken(created - 1) }), 'claim-invalid', /issued before that tenant existed/);
    expect((await router.resolve({ token: await slugToken(created) })).id).toBe(T.silo2.id);
    await expectRefused(router.resolve({ headers: { authorization: 'Bearer a b' } }), 'token-invalid', /not "Bearer <jwt>"/);
  });

  test('the claim name is configurable; a host and a token must agree', async () => {
    const { router: custom } = makeRouter({ jwt: { key: keys.publicKey, claim: 'https://example.test/tenant', verify: { algorithms: ['ES256'] } } });
    expect((await custom.resolve({ token: await token({ 'https://example.test/tenant': T.bravo.id }) })).slug).toBe('bravo');
    await expectRefused(custom.resolve({ token: await token({ tenant_id: T.bravo.id }) }), 'claim-missing', /no "https:\/\/example.test\/tenant" claim/);
    const bravoToken = await token({ tenant_id: T.bravo.id });
    expect((await router.resolve({ headers: { host: 'bravo.example.test', authorization: `Bearer ${bravoToken}` } })).slug).toBe('bravo');
    await expectRefused(router.resolve({ headers: { host: 'alpha.example.test', authorization: `Bearer ${bravoToken}` } }), 'tenant-mismatch', /token is for tenant bravo but the host is tenant alpha's/);
  });

  test('unknown, suspended and offboarded tenants are refused with a clear error and status', async () => {
    await expectRefused(router.resolve({ token: await token({ tenant_id: randomUUID() }) }), 'unknown-tenant', /no tenant has the id/);
    await expectRefused(router.resolve({ host: 'charlie.example.test' }), 'tenant-unavailable', /tenant charlie is suspended/);
    await expectRefused(router.resolve({ token: await token({ tenant_id: T.offboarded.id }) }), 'tenant-unavailable', /tenant delta is offboarded/);
    const error = await router.withTenant({ host: 'nobody.example.test' }, async () => 1).catch((e) => e);
    expect({ name: error.name, status: error.status }).toEqual({ name: 'TenantResolutionError', status: 404 });
    expect(router.stats().pools).toEqual([]); // nothing was connected for a refused request
  });

  test('a JWT without JWT configuration is refused', async () => {
    const { router: hostOnly } = makeRouter({ jwt: undefined });
    await expectRefused(hostOnly.resolve({ token: await token({ tenant_id: T.alpha.id }) }), 'token-invalid', /JWT verification is not configured/);
  });

  afterAll(() => router.close());
});

describe('routing work', () => {
  test('pool tenants share one pg.Pool and see only their rows; bridge and silo tenants get their own', async () => {
    const { router, pools } = makeRouter();
    try {
      const names = async (host: string) => router.withTenant({ host }, async (c) => (await c.query('SELECT name FROM projects')).rows.map((r) => r.name));
      expect(await names('alpha.example.test')).toEqual(['project of alpha']);
      expect(await names('bravo.example.test')).toEqual(['project of bravo']);
      expect(await names('fox.example.test')).toEqual([]);
      const bridge = await router.withTenant({ host: 'bridge-1.example.test' }, async (c, tenant) => ({ tenant: tenant.slug, rows: (await c.query('SELECT name FROM items')).rows }));
      expect(bridge).toEqual({ tenant: 'bridge-1', rows: [{ name: 'item of bridge-1' }] });
      const silo = await router.withTenant({ token: await token({ tenant_id: T.silo1.id }) }, async (c) => (await c.query('SELECT current_database() AS db, current_user AS role')).rows[0]);
      expect(silo).toEqual({ db: 'tenant_silo_1', role: 'tenant_silo_1_app' });
      expect([...pools.keys()].map(slugOf).sort()).toEqual(['bridge-1', 'pool:pool', 'silo-1']);
      expect(router.stats().committed).toBe(6);
    } finally {
      await router.close();
    }
    for (const list of pools.values()) for (const pool of list) expect(pool.ended).toBe(true);
  });

  test('LRU eviction: the least recently used idle pool is ended to make room, and its connections are closed', async () => {
    const { router, events, pools } = makeRouter({ connectionBudget: 4 });
    const run = (f: Fixture) => router.withTenant({ host: `${f.slug}.example.test` }, async (c) => (await c.query('SELECT name FROM items')).rows[0].name);
    const connectionsOf = async (f: Fixture) =>
      (await pg().query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'", [`${sqlName(f.slug)}_app`]))[0].n;
    try {
      const [b1, b2, b3] = BRIDGES;
      expect(await run(b1)).toBe('item of bridge-1');
      expect(await run(b2)).toBe('item of bridge-2');
      expect(await run(b1)).toBe('item of bridge-1'); // b1 is now the most recently used
      expect(await connectionsOf(b2)).toBe(1);
      events.length = 0;
      expect(await run(b3)).toBe('item of bridge-3');
      expect(events.map((e) => `${e.type} ${slugOf(e.key)}`)).toEqual(['evict bridge-2', 'end bridge-2', 'open bridge-3']);
      expect(pools.get(router.targetOf(await router.resolve({ host: 'bridge-2.example.test' })).key)![0].ended).toBe(true);
      expect(await connectionsOf(b2)).toBe(0);
      expect(router.stats()).toMatchObject({ budget: 4, committed: 4, waiting: 0 });
      expect(router.stats().pools.map((p) => slugOf(p.key)).sort()).toEqual(['bridge-1', 'bridge-3']);
    } finally {
      await router.close();
    }
  });

  test('the connection budget is never exceeded, even with many concurrent requests over more tenants than fit', async () => {
    const budget = 4;
    const { router, connections, events } = makeRouter({ connectionBudget: budget });
    const admin = await pg().connect({ database: 'tenants' });
    const serverConnections = async () =>
      (await admin.query<{ total: number; gated: number }>(
        `SELECT count(*)::int AS total, count(*) FILTER (WHERE wait_event_type = 'Lock')::int AS gated
           FROM pg_stat_activity WHERE datname = 'tenants' AND usename LIKE 'tenant\\_bridge\\_%' AND backend_type = 'client backend'`,
      )).rows[0];
    const samples: number[] = [];
    try {
      await admin.query('SELECT pg_advisory_lock($1)', [GATE]);
      // 6 requests for each of 6 bridge tenants at once: 36 requests, 6 pools of 2, a budget of 4.
      const requests = BRIDGES.flatMap((f) => Array.from({ length: 6 }, () => f));
      let running = true;
      const work = Promise.all(requests.map((f) => router.withTenant({ host: `${f.slug}.example.test` }, async (c, tenant) => {
        await c.query('SELECT pg_advisory_xact_lock_shared($1)', [GATE]);
        const { rows } = await c.query('SELECT name FROM items');
        return { asked: f.slug, got: tenant.slug, item: rows[0].name };
      }))).finally(() => {
        running = false;
      });
      // Wait (bounded by the test timeout) until the budget is in use: 4 connections blocked on the gate.
      for (;;) {
        const now = await serverConnections();
        samples.push(now.total);
        if (now.gated >= budget) break;
      }
      const held = router.stats();
      expect(held.committed).toBe(budget);
      expect(held.waiting).toBeGreaterThan(0); // pools of other tenants wait for the budget
      expect(held.pools.filter((p) => !p.retired).length).toBe(2);
      await admin.query('SELECT pg_advisory_unlock($1)', [GATE]);
      while (running) {
        samples.push((await serverConnections()).total);
        const s = router.stats();
        expect(s.committed).toBeLessThanOrEqual(budget);
      }
      const results = await work;
      expect(results).toHaveLength(36);
      for (const r of results) expect(r).toEqual({ asked: r.asked, got: r.asked, item: `item of ${r.asked}` });
      expect(Math.max(...samples)).toBeLessThanOrEqual(budget);
      expect(connections.max).toBeLessThanOrEqual(budget);
      expect(connections.max).toBe(budget);
      // Every tenant got a pool; pools were evicted and ended along the way.
      expect(new Set(events.filter((e) => e.type === 'open').map((e) => slugOf(e.key)))).toEqual(new Set(BRIDGES.map((f) => f.slug)));
      expect(events.filter((e) => e.type === 'end').length).toBeGreaterThanOrEqual(4);
    } finally {
      await admin.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      await admin.end();
      await router.close();
    }
    expect(connections.open).toBe(0);
  });

  test('a refused login (rotated password) drops the pool so the next request resolves the secret again', async () => {
    const { router, events } = makeRouter();
    try {
      await expect(router.withTenant({ host: 'rotated.example.test' }, async () => 1)).rejects.toMatchObject({ code: '28P01' });
      expect(events.map((e) => e.type)).toEqual(['open', 'evict', 'end']);
      expect(router.stats()).toMatchObject({ committed: 0, pools: [] });
    } finally {
      await router.close();
    }
  });

  test('a pool larger than the budget and a non-positive budget are configuration errors', async () => {
    expect(() => makeRouter({ connectionBudget: 0 })).toThrow(/connectionBudget 0 must be a positive integer/);
    const { router } = makeRouter({ connectionBudget: 1, maxConnectionsPerPool: 2 });
    await expect(router.withTenant({ host: 'alpha.example.test' }, async () => 1)).rejects.toThrow(/a pool of 2 connections .* does not fit the budget of 1/);
    await router.close();
  });
});
