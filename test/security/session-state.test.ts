// Reproduces: session state that outlives a unit of work on a pool connection. (1) As pool_app,
// a tenant's unit of work creates a TEMP table named like a pool table; through PgBouncer in
// transaction mode the next tenant on the same server connection reads and writes that table
// instead of pool.tasks (pg_temp comes first in search_path). (2) A session-level SET of
// app.tenant_id inside withTenant stays on the server connection: the next client runs as that
// tenant. (3) A client reference kept after withTenant returns runs its queries inside the next
// tenant's transaction. Fails on 0f20909 (main before the fix): the TEMP table was created and
// captured the next tenant's insert, withTenant resolved after the session SET and the next client
// saw tenant A's rows, and the kept client counted tenant B's rows.
import { randomUUID } from 'node:crypto';
import { Client, Pool, type PoolClient } from 'pg';
import { withTenant } from '../../lib/runtime/with-tenant';
import type { TenantContext } from '../../lib/runtime/tenant-context';
import { createPoolDatabase, POOL_APP_PASSWORD } from '../support/pool-db';
import { usePgbouncer } from '../support/pgbouncer';
import { usePostgres } from '../support/postgres';

const DB = 'pool';
const A: TenantContext = { model: 'pool', id: randomUUID(), slug: 'tenant-a' };
const B: TenantContext = { model: 'pool', id: randomUUID(), slug: 'tenant-b' };

const pg = usePostgres();
beforeAll(async () => {
  await createPoolDatabase(pg(), DB);
  const pool = new Pool({ ...pg().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 1 });
  try {
    for (const t of [A, B]) {
      await withTenant(pool, t, (c) => c.query('INSERT INTO projects (tenant_id, id, name) VALUES ($1, $2, $3)', [t.id, randomUUID(), `project of ${t.slug}`]));
    }
  } finally {
    await pool.end();
  }
});

// One server connection behind PgBouncer: every client shares it, as under load in production.
const bouncer = usePgbouncer(async () => ({
  settings: { host: pg().host, port: pg().port, dbname: DB, serverTlsCaFile: pg().tls!.caFile, defaultPoolSize: 1, maxClientConn: 20 },
  users: [{ name: 'pool_app', secret: await pg().storedPassword('pool_app') }],
}));
const bouncerPool = () => new Pool({ ...bouncer().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 1 });
const outcome = async <T>(work: () => Promise<T>): Promise<T | Error> => work().catch((e: Error) => e);

test('TEMP is revoked on the pool database and pg_temp is last in the app role\'s search_path', async () => {
  const [privilege] = await pg().query("SELECT has_database_privilege('pool_app', current_database(), 'TEMP') AS temp", [], DB);
  expect(privilege.temp).toBe(false);
  const [config] = await pg().query(
    "SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = 'pool_app'::regrole AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())", [], DB);
  expect(config.setconfig).toContain('search_path=pool, pg_temp');
});

test('a temp table named like a pool table cannot capture the next tenant\'s writes through PgBouncer', async () => {
  const attacker = bouncerPool();
  const victim = bouncerPool();
  try {
    const created = await outcome(() => withTenant(attacker, A, (c) => c.query('CREATE TEMP TABLE projects (tenant_id uuid, id uuid, name text, created_at timestamptz)')));
    expect(created).toBeInstanceOf(Error);
    expect(created).toMatchObject({ code: '42501' }); // permission denied to create temporary tables
    const id = randomUUID();
    const seen = await withTenant(victim, B, async (c) => {
      await c.query('INSERT INTO projects (tenant_id, id, name) VALUES ($1, $2, $3)', [B.id, id, 'written by B']);
      return (await c.query('SELECT count(*)::int AS n FROM pool.projects WHERE id = $1', [id])).rows[0].n;
    });
    expect(seen).toBe(1); // the row is in pool.projects, not in a temp table of the attacker
  } finally {
    await Promise.all([attacker.end(), victim.end()]);
  }
});

test('a session-level SET of the tenant inside withTenant is detected, the connection discarded, and the next client does not run as that tenant', async () => {
  const pool = bouncerPool();
  const next = new Client(bouncer().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }));
  await next.connect();
  try {
    for (const leak of [`SET app.tenant_id = '${A.id}'`, `SELECT set_config('app.tenant_id', '${A.id}', false)`]) {
      const result = await outcome(() => withTenant(pool, A, (c) => c.query(leak)));
      expect(result).toBeInstanceOf(Error);
      expect((result as Error).message).toMatch(/tenant setting is set at session level.*connection was discarded/);
      expect(pool.totalCount).toBe(0); // destroyed, not returned to the pool
      const seen = (await next.query("SELECT coalesce(current_setting('app.tenant_id', true), '') AS t, (SELECT count(*) FROM projects)::int AS n")).rows[0];
      expect(seen).toEqual({ t: '', n: 0 }); // the server connection no longer carries tenant A
    }
  } finally {
    await next.end();
    await pool.end();
  }
});

test('a session-level search_path or role change inside withTenant is detected too, directly on PostgreSQL', async () => {
  const pool = new Pool({ ...pg().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 1 });
  try {
    const result = await outcome(() => withTenant(pool, A, (c) => c.query('SET search_path = public, pool')));
    expect((result as Error).message).toMatch(/search_path was changed at session level/);
    expect(pool.totalCount).toBe(0);
    // A well-behaved unit of work keeps its connection.
    await withTenant(pool, A, (c) => c.query('SET LOCAL search_path = public, pool'));
    expect(pool.totalCount).toBe(1);
  } finally {
    await pool.end();
  }
});

test('a client kept after withTenant returns cannot run queries (it would run in the next tenant\'s transaction)', async () => {
  const pool = new Pool({ ...pg().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 1 });
  try {
    let kept: PoolClient | undefined;
    await withTenant(pool, A, async (c) => {
      kept = c;
      expect((await c.query('SELECT count(*)::int AS n FROM projects')).rows[0].n).toBe(1);
    });
    const later = await withTenant(pool, B, async () => outcome(async () => (await kept!.query('SELECT name FROM projects')).rows));
    expect(later).toBeInstanceOf(Error);
    expect((later as Error).message).toMatch(/unit of work that has finished/);
    // Nor can the callback hand the connection back itself or reach the raw connection.
    const released = await outcome(() => withTenant(pool, A, async (c) => c.release()));
    expect((released as Error).message).toMatch(/client.release is not available inside withTenant/);
    expect(pool.totalCount).toBe(1);
  } finally {
    await pool.end();
  }
});
