// Reproduces: routing a request to a tenant on weak evidence: a bare Host header while JWT is
// configured, a token without `exp`, a token valid for 30 days, and a suspended tenant still
// served from the router's cache until its TTL expires.
// Fails on 0f20909 (main before the fix): a Host header alone resolved the tenant although JWT was
// configured; tokens without `exp` and with a 30-day lifetime were accepted; a tenant suspended in
// the control plane kept being served for the whole cache TTL (the router had no way to hear of
// the change and no whenListening()).
//
// Real PostgreSQL 15 with the control-plane migrations; tokens signed with jose.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { Pool } from 'pg';
import { StaticSecretResolver, type DbCredentials } from '../../lib/runtime/secret-resolver';
import { TenantResolutionError, TenantRouter, type PoolEvent, type TenantRouterOptions, type TenantStatusEvent } from '../../lib/runtime/router';
import { TENANT_STATUS_LISTENER_NAME } from '../../lib/runtime/tenant-status-listener';
import { createPoolDatabase, POOL_APP_PASSWORD, repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

const BASE = 'example.test';
const ISSUER = 'https://auth.example.test';
const HOUR_MS = 3_600_000;
const pg = usePostgres();

const tenant = (slug: string, model: 'pool' | 'bridge' = 'pool') => ({ id: randomUUID(), slug, model });
const ALPHA = tenant('alpha');
const BRAVO = tenant('bravo');
const CHARLIE = tenant('charlie');
const DELTA = tenant('delta');
const ECHO = tenant('echo');
const BRIDGE = tenant('bridge-1', 'bridge');
const BRIDGE_ROLE = 'tenant_bridge_1_app';

/** Counts control-plane queries: a lookup served from the cache makes none. */
class CountingPool extends Pool {
  queries = 0;
  query(...args: any[]): any {
    this.queries++;
    return (super.query as (...a: any[]) => any)(...args);
  }
}

let controlPlane: CountingPool;
let keys: { publicKey: KeyLike; privateKey: KeyLike };
const secrets = new Map<string, DbCredentials>([['local:pool_app', { username: 'pool_app', password: POOL_APP_PASSWORD }]]);

beforeAll(async () => {
  keys = await generateKeyPair('ES256');
  await createPoolDatabase(pg(), 'pool');
  await pg().createDatabase('control_plane');
  const dir = join(repoRoot(), 'migrations', 'control-plane');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.up.sql')).sort()) {
    await pg().query(readFileSync(join(dir, file), 'utf8'), [], 'control_plane');
  }
  await pg().createDatabase('tenants');
  await pg().createRole(BRIDGE_ROLE, { password: 'pw-bridge' });
  await pg().withAdmin(async (c) => {
    await c.query(`CREATE SCHEMA tenant_bridge_1 AUTHORIZATION ${BRIDGE_ROLE}`);
  }, 'tenants');
  secrets.set(`local:${BRIDGE_ROLE}`, { username: BRIDGE_ROLE, password: 'pw-bridge' });
  const placement = (database: string, role: string, schema: string) => ({ host: pg().host, port: pg().port, database, schema, role, secret_ref: `local:${role}` });
  for (const t of [ALPHA, BRAVO, CHARLIE, DELTA, ECHO, BRIDGE]) {
    await pg().query(
      "INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, $3, 'pro', 'active', 'us-east-1', $4)",
      [t.id, t.slug, t.model, JSON.stringify(t.model === 'pool' ? placement('pool', 'pool_app', 'pool') : placement('tenants', BRIDGE_ROLE, 'tenant_bridge_1'))],
      'control_plane',
    );
  }
  controlPlane = new CountingPool({ ...pg().adminConfig('control_plane'), max: 2 });
});

afterAll(async () => {
  await controlPlane?.end();
});

const setStatus = (t: { id: string }, status: string) => pg().query('UPDATE tenancy.tenants SET status = $2, updated_at = now() WHERE id = $1', [t.id, status], 'control_plane');

const sign = (claims: Record<string, unknown>, build: (jwt: SignJWT) => SignJWT = (j) => j.setIssuedAt().setExpirationTime('5m')) =>
  build(new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(ISSUER)).sign(keys.privateKey);

const routers: TenantRouter[] = [];
afterEach(async () => {
  await Promise.all(routers.splice(0).map((r) => r.close()));
});

/** A router with JWT configured; `events` collects status-listener events and lets a test wait for one. */
function makeRouter(overrides: Partial<TenantRouterOptions> = {}) {
  const events = new EventLog<TenantStatusEvent>();
  const poolEvents = new EventLog<PoolEvent>();
  const ssl = pg().clientConfig({ user: 'x', database: 'x' }).ssl;
  const router = new TenantRouter({
    controlPlane,
    secrets: new StaticSecretResolver(secrets),
    baseDomain: BASE,
    jwt: { key: keys.publicKey, verify: { issuer: ISSUER, algorithms: ['ES256'] } },
    connectionBudget: 10,
    maxConnectionsPerPool: 1,
    poolConfig: { ssl },
    tenantCacheTtlMs: 0,
    onStatusEvent: (e) => events.push(e),
    onPoolEvent: (e) => poolEvents.push(e),
    ...overrides,
  });
  routers.push(router);
  return { router, events, poolEvents };
}

/** Events in order; `next(predicate)` resolves with the first matching event not yet taken. */
class EventLog<E> {
  readonly all: E[] = [];
  private taken = 0;
  private pending: { predicate: (e: E) => boolean; resolve: (e: E) => void }[] = [];
  push(event: E): void {
    this.all.push(event);
    for (const p of [...this.pending]) {
      if (p.predicate(event)) {
        this.pending.splice(this.pending.indexOf(p), 1);
        this.taken = this.all.length;
        p.resolve(event);
      }
    }
  }
  next(predicate: (e: E) => boolean): Promise<E> {
    const found = this.all.slice(this.taken).find(predicate);
    if (found) {
      this.taken = this.all.indexOf(found, this.taken) + 1;
      return Promise.resolve(found);
    }
    return new Promise((resolve) => this.pending.push({ predicate, resolve }));
  }
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; status: number; message: string } | 'accepted'> {
  const error = await promise.then(() => undefined, (e) => e);
  if (error === undefined) return 'accepted';
  expect(error).toBeInstanceOf(TenantResolutionError);
  return { code: error.code, status: error.status, message: error.message };
}

describe('a Host header alone is not enough when JWT is configured', () => {
  test('host-only requests are refused by default; host and token together must agree', async () => {
    const { router } = makeRouter();
    expect(await refusal(router.resolve({ host: 'alpha.example.test' }))).toEqual({ code: 'token-required', status: 401, message: expect.stringMatching(/bearer token is required/) });
    expect(await refusal(router.withTenant({ headers: { host: 'alpha.example.test' } }, async () => 1))).toMatchObject({ code: 'token-required' });
    expect(router.stats().pools).toEqual([]);
    const alphaToken = await sign({ tenant_id: ALPHA.id });
    expect((await router.resolve({ headers: { host: 'alpha.example.test', authorization: `Bearer ${alphaToken}` } })).id).toBe(ALPHA.id);
    expect((await router.resolve({ token: alphaToken })).id).toBe(ALPHA.id);
    expect(await refusal(router.resolve({ host: 'bravo.example.test', token: alphaToken }))).toMatchObject({ code: 'tenant-mismatch', status: 403 });
  });

  test('host-only routing is an explicit opt-in (jwt.requireToken: false)', async () => {
    const { router } = makeRouter({ jwt: { key: keys.publicKey, requireToken: false, verify: { issuer: ISSUER, algorithms: ['ES256'] } } });
    expect((await router.resolve({ host: 'alpha.example.test' })).id).toBe(ALPHA.id);
  });
});

describe('token lifetime and verification', () => {
  let router: TenantRouter;
  beforeEach(() => {
    router = makeRouter().router;
  });
  const now = () => Math.floor(Date.now() / 1000);

  test('a token without exp is refused', async () => {
    const token = await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt());
    expect(await refusal(router.resolve({ token }))).toMatchObject({ code: 'token-invalid', status: 401, message: expect.stringMatching(/"exp"/) });
  });

  test('a 30-day token is refused (exp - iat, and exp - now without iat); one hour is the default maximum', async () => {
    const thirtyDays = await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt().setExpirationTime('30d'));
    expect(await refusal(router.resolve({ token: thirtyDays }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/lifetime of 2592000 s \(exp - iat\) exceeds the maximum of 3600 s/) });
    const noIat = await sign({ tenant_id: ALPHA.id }, (j) => j.setExpirationTime('30d'));
    expect(await refusal(router.resolve({ token: noIat }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/\(exp - now \(no iat\)\) exceeds the maximum of 3600 s/) });
    // Issued 29 days ago, expiring in a day: still a 30-day token.
    const old = await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt(now() - 29 * 86400).setExpirationTime(now() + 86400));
    expect(await refusal(router.resolve({ token: old }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/lifetime of 2592000 s/) });
    const iat = now();
    const oneHour = await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt(iat).setExpirationTime(iat + 3600));
    expect((await router.resolve({ token: oneHour })).id).toBe(ALPHA.id);
  });

  test('the maximum is configurable (jwt.maxLifetimeSeconds)', async () => {
    const { router: daily } = makeRouter({ jwt: { key: keys.publicKey, maxLifetimeSeconds: 86400, verify: { issuer: ISSUER, algorithms: ['ES256'] } } });
    expect((await daily.resolve({ token: await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt().setExpirationTime('1d')) })).id).toBe(ALPHA.id);
    expect(await refusal(daily.resolve({ token: await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt().setExpirationTime('30d')) }))).toMatchObject({ code: 'token-invalid' });
    expect(() => makeRouter({ jwt: { key: keys.publicKey, maxLifetimeSeconds: 0, verify: { algorithms: ['ES256'] } } })).toThrow(/maxLifetimeSeconds 0 must be a positive integer/);
  });

  test('nbf in the future, another issuer or audience, and an algorithm not pinned are refused; algorithms must be pinned', async () => {
    expect(await refusal(router.resolve({ token: await sign({ tenant_id: ALPHA.id }, (j) => j.setIssuedAt().setNotBefore('10m').setExpirationTime('20m')) }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/nbf/) });
    const other = await new SignJWT({ tenant_id: ALPHA.id }).setProtectedHeader({ alg: 'ES256' }).setIssuer('https://evil.test').setIssuedAt().setExpirationTime('5m').sign(keys.privateKey);
    expect(await refusal(router.resolve({ token: other }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/iss/) });
    const { router: withAudience } = makeRouter({ jwt: { key: keys.publicKey, verify: { issuer: ISSUER, audience: 'tenancy-api', algorithms: ['ES256'] } } });
    expect(await refusal(withAudience.resolve({ token: await sign({ tenant_id: ALPHA.id, aud: 'another-api' }) }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/aud/) });

    const secret = new TextEncoder().encode('a shared secret of at least thirty-two bytes');
    const { router: hs256 } = makeRouter({ jwt: { key: secret, verify: { algorithms: ['HS256'] } } });
    const hs512 = await new SignJWT({ tenant_id: ALPHA.id }).setProtectedHeader({ alg: 'HS512' }).setIssuedAt().setExpirationTime('5m').sign(secret);
    expect(await refusal(hs256.resolve({ token: hs512 }))).toMatchObject({ code: 'token-invalid', message: expect.stringMatching(/alg/) });
    expect(() => makeRouter({ jwt: { key: keys.publicKey } })).toThrow(/jwt\.verify\.algorithms/);
  });
});

describe('a suspended tenant is refused as soon as the control plane announces it', () => {
  test('NOTIFY evicts the cached tenant although its cache entry has an hour to live', async () => {
    const { router, events } = makeRouter({ tenantCacheTtlMs: HOUR_MS });
    const alphaToken = await sign({ tenant_id: ALPHA.id });
    const bravoToken = await sign({ tenant_id: BRAVO.id });
    await router.whenListening();
    for (const token of [alphaToken, bravoToken]) await router.resolve({ token });
    // Both are now served from the cache: no control-plane query.
    const before = controlPlane.queries;
    expect((await router.resolve({ token: alphaToken })).status).toBe('active');
    expect((await router.resolve({ token: bravoToken })).status).toBe('active');
    expect(controlPlane.queries).toBe(before);

    const invalidated = events.next((e) => e.type === 'invalidated' && e.tenantId === ALPHA.id);
    await setStatus(ALPHA, 'suspended');
    await invalidated;
    expect(await refusal(router.resolve({ token: alphaToken }))).toMatchObject({ code: 'tenant-unavailable', status: 403, message: expect.stringMatching(/alpha is suspended/) });
    // Only alpha was evicted: bravo's entry (an hour to live) is still used.
    const afterRefusal = controlPlane.queries;
    expect((await router.resolve({ token: bravoToken })).slug).toBe('bravo');
    expect(controlPlane.queries).toBe(afterRefusal);

    const reactivated = events.next((e) => e.type === 'invalidated' && e.tenantId === ALPHA.id);
    await setStatus(ALPHA, 'active');
    await reactivated;
    expect((await router.resolve({ token: alphaToken })).status).toBe('active');
  });

  test('a suspended bridge tenant\'s own pool is ended and its connections closed', async () => {
    const { router, events, poolEvents } = makeRouter({ tenantCacheTtlMs: HOUR_MS });
    const token = await sign({ tenant_id: BRIDGE.id });
    await router.whenListening();
    expect(await router.withTenant({ token }, async (c) => (await c.query('SELECT current_user AS u')).rows[0].u)).toBe(BRIDGE_ROLE);
    const ended = poolEvents.next((e) => e.type === 'end');
    const invalidated = events.next((e) => e.type === 'invalidated' && e.tenantId === BRIDGE.id);
    await setStatus(BRIDGE, 'suspended');
    await invalidated;
    await ended;
    expect(router.stats().pools).toEqual([]);
    const [{ n }] = await pg().query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'", [BRIDGE_ROLE]);
    expect(n).toBe(0);
    expect(await refusal(router.withTenant({ token }, async () => 1))).toMatchObject({ code: 'tenant-unavailable' });
    await setStatus(BRIDGE, 'active');
  });
});

describe('the LISTEN connection fails closed', () => {
  const terminateListener = () =>
    pg().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = 'control_plane'", [TENANT_STATUS_LISTENER_NAME]);
  const listenerBackends = async () =>
    (await pg().query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [TENANT_STATUS_LISTENER_NAME]))[0].n;

  test('a lost connection clears the cache, which is not used again until LISTEN is back; the process does not crash', async () => {
    // Reconnecting is held off for an hour: the router must stay correct while it cannot listen.
    const { router, events } = makeRouter({ tenantCacheTtlMs: HOUR_MS, statusListener: { reconnectDelayMs: () => HOUR_MS } });
    const token = await sign({ tenant_id: CHARLIE.id });
    await router.whenListening();
    await router.resolve({ token });
    let before = controlPlane.queries;
    await router.resolve({ token });
    expect(controlPlane.queries).toBe(before); // cached

    const disconnected = events.next((e) => e.type === 'disconnected');
    await terminateListener();
    await disconnected; // the terminated backend's 'error' event was handled
    expect(events.all.map((e) => e.type)).toEqual(['listening', 'disconnected', 'reconnecting']);

    before = controlPlane.queries;
    await router.resolve({ token });
    await router.resolve({ token });
    expect(controlPlane.queries).toBe(before + 2); // every lookup goes to the control plane
    await setStatus(CHARLIE, 'suspended'); // nobody hears this NOTIFY
    expect(await refusal(router.resolve({ token }))).toMatchObject({ code: 'tenant-unavailable' });
    await setStatus(CHARLIE, 'active');
  });

  test('the listener reconnects with backoff and invalidation works again', async () => {
    const { router, events } = makeRouter({ tenantCacheTtlMs: HOUR_MS, statusListener: { reconnectDelayMs: () => 0 } });
    const token = await sign({ tenant_id: DELTA.id });
    await router.whenListening();
    const relistening = events.next((e) => e.type === 'listening' && events.all.some((x) => x.type === 'disconnected'));
    await terminateListener();
    await relistening;
    await router.resolve({ token });
    const before = controlPlane.queries;
    await router.resolve({ token });
    expect(controlPlane.queries).toBe(before); // cached again
    const invalidated = events.next((e) => e.type === 'invalidated' && e.tenantId === DELTA.id);
    await setStatus(DELTA, 'suspended');
    await invalidated;
    expect(await refusal(router.resolve({ token }))).toMatchObject({ code: 'tenant-unavailable' });
    await setStatus(DELTA, 'active');
  });

  test('an unreachable control plane for LISTEN: requests are still answered from fresh lookups, never from the cache', async () => {
    const { router, events } = makeRouter({
      tenantCacheTtlMs: HOUR_MS,
      statusListener: { client: { ...pg().adminConfig('control_plane'), database: 'no_such_database' }, reconnectDelayMs: () => HOUR_MS },
    });
    const token = await sign({ tenant_id: ECHO.id });
    const disconnected = events.next((e) => e.type === 'disconnected');
    const before = controlPlane.queries;
    expect((await router.resolve({ token })).slug).toBe('echo');
    await disconnected;
    expect((await router.resolve({ token })).slug).toBe('echo');
    expect(controlPlane.queries).toBe(before + 2);
  });

  test('close() ends the LISTEN connection', async () => {
    const { router } = makeRouter({ tenantCacheTtlMs: HOUR_MS });
    await router.whenListening();
    expect(await listenerBackends()).toBeGreaterThanOrEqual(1);
    routers.splice(routers.indexOf(router), 1);
    await router.close();
    // The backend exits once it sees the client's Terminate message (bounded by the test timeout).
    while ((await listenerBackends()) > 0);
    expect(await router.whenListening().then(() => 'listening', (e: Error) => e.message)).toMatch(/closed/);
  });

  test('caching without a way to hear status changes is a configuration error unless explicitly accepted', () => {
    const queryable = { query: (sql: string, params?: unknown[]) => controlPlane.query(sql, params) };
    expect(() => makeRouter({ controlPlane: queryable, tenantCacheTtlMs: 30_000 })).toThrow(/statusListener/);
    expect(() => makeRouter({ controlPlane: queryable, tenantCacheTtlMs: 0 })).not.toThrow();
    expect(() => makeRouter({ controlPlane: queryable, tenantCacheTtlMs: 30_000, statusListener: false })).not.toThrow();
  });
});
