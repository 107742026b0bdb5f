/**
 * Issue 12, item 1: a lost connection fails the call, never the process. Real faults against a
 * real PostgreSQL 15, directly and through a real PgBouncer: pg_terminate_backend of the session
 * in use (between two queries) or idle in a pool, and PgBouncer's KILL (every client connection
 * of the database dropped at once) and a real PgBouncer restart (stopped, started again on its port).
 *
 * Before the fix, node-postgres emitted these as 'error' events nobody listened to: in jest an
 * uncaught exception failing the test, in an application server the end of the process. Now the
 * call rejects with an error naming the tenant (or the control plane), the dead connection is
 * destroyed, and the next call runs on a fresh one. No test adds an 'error' listener of its own.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Pool, type PoolClient } from 'pg';
import { inTransaction } from '../../lib/control-plane/transaction';
import { ConnectionLostError, DatabaseUnavailableError } from '../../lib/db/lost-connections';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import { TenantRouter } from '../../lib/runtime/router';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import type { TenantContext } from '../../lib/runtime/tenant-context';
import { withTenant } from '../../lib/runtime/with-tenant';
import { usePgbouncer, type PgbouncerProcess } from '../support/pgbouncer';
import { repoRoot } from '../support/pool-db';
import { scramSha256Verifier, usePostgres } from '../support/postgres';

const DB = 'bridge';
const ROLE = 'bridge_app';
const PASSWORD = 'bridge app password';
const ADMIN = 'bouncer_admin';
const ADMIN_PASSWORD = 'bouncer admin password';
const acme: TenantContext = { model: 'bridge', id: randomUUID(), slug: 'acme' };
const globex: TenantContext = { model: 'bridge', id: randomUUID(), slug: 'globex' };

const pg = usePostgres();
beforeAll(async () => {
  await pg().createRole(ROLE, { password: PASSWORD });
  await pg().createDatabase(DB);
  await pg().withAdmin(async (c) => {
    for (const schema of ['tenant_acme', 'tenant_globex']) {
      await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.items (name text NOT NULL); INSERT INTO ${schema}.items VALUES ('item of ${schema}')`);
      await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${ROLE}; GRANT SELECT ON ${schema}.items TO ${ROLE}`);
    }
  }, DB);
});
const bouncer = usePgbouncer(async () => ({
  settings: { host: pg().host, port: pg().port, dbname: DB, serverTlsCaFile: pg().tls!.caFile, defaultPoolSize: 4, maxClientConn: 50, adminUsers: [ADMIN] },
  users: [{ name: ROLE, secret: await pg().storedPassword(ROLE) }, { name: ADMIN, secret: scramSha256Verifier(ADMIN_PASSWORD) }],
}));

/** The two ways to the database: the server itself (TLS), and PgBouncer in transaction mode. */
const PATHS = {
  PostgreSQL: () => pg().clientConfig({ user: ROLE, password: PASSWORD, database: DB }),
  PgBouncer: () => bouncer().clientConfig({ user: ROLE, password: PASSWORD, database: DB }),
} as const;
type Path = keyof typeof PATHS;

/**
 * Inside a unit of work: the server ends this session (the one PgBouncer lent, through PgBouncer),
 * and the caller continues once the client has seen its connection end, then runs a second query.
 */
async function terminatedBetweenQueries(c: PoolClient): Promise<never> {
  const { pid } = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0];
  const ended = new Promise((resolve) => c.once('end', resolve));
  await pg().query('SELECT pg_terminate_backend($1)', [pid]);
  await ended;
  await c.query('SELECT 2');
  throw new Error('unreachable: the second query ran on a terminated session');
}

/** Drops every client connection PgBouncer holds for the database (admin console KILL), then lets new ones in again (RESUME). */
async function killAtBouncer(b: PgbouncerProcess): Promise<void> {
  const admin = new Client(b.clientConfig({ user: ADMIN, password: ADMIN_PASSWORD, database: 'pgbouncer' }));
  await admin.connect();
  try {
    await admin.query(`KILL ${DB}`);
    await admin.query(`RESUME ${DB}`);
  } finally {
    await admin.end();
  }
}

const backendPid = (c: PoolClient) => c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid').then((r) => r.rows[0].pid);
const firstItem = (c: PoolClient) => c.query<{ name: string }>('SELECT name FROM items').then((r) => r.rows[0].name);
/** Resolves when the pool has discarded a connection. */
const removed = (pool: Pool) => new Promise((resolve) => pool.once('remove', resolve));

describe.each(Object.keys(PATHS) as Path[])('withTenant, through %s', (path) => {
  test('the server ends the session between two queries: the call rejects naming the tenant, the next call gets a fresh connection', async () => {
    const pool = new Pool({ ...PATHS[path](), max: 1 });
    try {
      const error = await withTenant(pool, acme, terminatedBetweenQueries).catch((e) => e);
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error.message).toMatch(/^withTenant acme: the database connection was lost \(.+\); nothing was committed; the connection was discarded$/);
      expect(pool.totalCount).toBe(0); // destroyed, not pooled
      await expect(withTenant(pool, acme, firstItem)).resolves.toBe('item of tenant_acme');
    } finally {
      await pool.end();
    }
  });

  test('an idle pooled connection that is dropped is discarded; the next call gets a fresh connection', async () => {
    const pool = new Pool({ ...PATHS[path](), max: 1 });
    try {
      const first = await withTenant(pool, acme, backendPid);
      expect(pool.idleCount).toBe(1);
      const gone = removed(pool);
      if (path === 'PostgreSQL') await pg().query('SELECT pg_terminate_backend($1)', [first]);
      else await killAtBouncer(bouncer());
      await gone;
      expect(pool.totalCount).toBe(0);
      await expect(withTenant(pool, globex, firstItem)).resolves.toBe('item of tenant_globex');
    } finally {
      await pool.end();
    }
  });
});

test('PgBouncer restarts during a unit of work: the call rejects naming the tenant, the next call runs through the new PgBouncer', async () => {
  const pool = new Pool({ ...PATHS.PgBouncer(), max: 1 });
  try {
    const before = bouncer().pid;
    const error = await withTenant(pool, acme, async (c) => {
      await c.query('SELECT 1');
      const ended = new Promise((resolve) => c.once('end', resolve));
      await bouncer().restart();
      await ended;
      await c.query('SELECT 2');
      throw new Error('unreachable: the second query ran on a connection PgBouncer closed');
    }).catch((e) => e);
    expect(bouncer().pid).not.toBe(before);
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error.message).toMatch(/^withTenant acme: the database connection was lost \(.+\); nothing was committed; the connection was discarded$/);
    expect(pool.totalCount).toBe(0);
    await expect(withTenant(pool, acme, firstItem)).resolves.toBe('item of tenant_acme');
  } finally {
    await pool.end();
  }
});

test('no server to connect to: the call rejects naming the tenant, as safe to repeat', async () => {
  // A port nothing listens on: PgBouncer or the server down.
  const { freePort } = await import('../support/postgres');
  const pool = new Pool({ ...PATHS.PgBouncer(), port: await freePort(), max: 1 });
  try {
    const error = await withTenant(pool, acme, firstItem).catch((e) => e);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect(error.message).toMatch(/^withTenant acme: could not get a database connection \(connect ECONNREFUSED 127\.0\.0\.1:\d+\); nothing ran$/);
  } finally {
    await pool.end();
  }
});

describe('TenantRouter', () => {
  const CP = 'control_plane';
  let controlPlane: Pool;
  beforeAll(async () => {
    await pg().createDatabase(CP);
    await pg().query(readFileSync(join(repoRoot(), 'migrations', 'control-plane', '0001_init.up.sql'), 'utf8'), [], CP);
    // acme is reached directly, globex through PgBouncer.
    for (const [t, host, port] of [[acme, pg().host, pg().port], [globex, bouncer().host, bouncer().port]] as const) {
      const placement = { host, port, database: DB, schema: `tenant_${t.slug}`, role: ROLE, secret_ref: `local:${ROLE}` };
      await pg().query(
        "INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, 'bridge', 'pro', 'active', 'us-east-1', $3)",
        [t.id, t.slug, JSON.stringify(placement)],
        CP,
      );
    }
    controlPlane = new Pool({ ...pg().adminConfig(CP), max: 2 });
  });
  afterAll(async () => {
    await controlPlane?.end();
  });

  const router = (path: Path) => {
    let idleError: (error: Error) => void = () => undefined;
    const nextIdleError = new Promise<Error>((resolve) => (idleError = resolve));
    const r = new TenantRouter({
      controlPlane,
      secrets: new StaticSecretResolver({ [`local:${ROLE}`]: { username: ROLE, password: PASSWORD } }),
      baseDomain: 'example.test',
      connectionBudget: 4,
      maxConnectionsPerPool: 2,
      tenantCacheTtlMs: 0,
      poolConfig: { ssl: PATHS[path]().ssl },
      onPoolError: (e) => idleError(e),
    });
    return { r, nextIdleError };
  };
  const hostOf: Record<Path, string> = { PostgreSQL: 'acme.example.test', PgBouncer: 'globex.example.test' };
  const slugOf: Record<Path, string> = { PostgreSQL: 'acme', PgBouncer: 'globex' };

  test.each(Object.keys(PATHS) as Path[])('through %s: a session ended between two queries fails the request naming the tenant; the next request succeeds', async (path) => {
    const { r } = router(path);
    try {
      const before = await r.withTenant({ host: hostOf[path] }, (c) => backendPid(c));
      const error = await r.withTenant({ host: hostOf[path] }, (c) => terminatedBetweenQueries(c)).catch((e) => e);
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error.message).toMatch(new RegExp(`^withTenant ${slugOf[path]}: the database connection was lost`));
      await expect(r.withTenant({ host: hostOf[path] }, (c) => firstItem(c))).resolves.toBe(`item of tenant_${slugOf[path]}`);
      if (path === 'PostgreSQL') expect(await r.withTenant({ host: hostOf[path] }, (c) => backendPid(c))).not.toBe(before);
    } finally {
      await r.close();
    }
  });

  test('through PgBouncer: idle connections dropped by PgBouncer are discarded and reported; the next request succeeds', async () => {
    const { r, nextIdleError } = router('PgBouncer');
    try {
      await r.withTenant({ host: hostOf.PgBouncer }, (c) => firstItem(c));
      await killAtBouncer(bouncer());
      // The router's pool reports the dropped idle connection (onPoolError); nothing reaches the process.
      await expect(nextIdleError).resolves.toBeInstanceOf(Error);
      await expect(r.withTenant({ host: hostOf.PgBouncer }, (c) => firstItem(c))).resolves.toBe('item of tenant_globex');
    } finally {
      await r.close();
    }
  });
});

describe('the control plane', () => {
  const CP = 'control_plane_tx';
  beforeAll(async () => {
    await pg().createDatabase(CP);
    await pg().query('CREATE TABLE events (what text NOT NULL)', [], CP);
  });

  test('a session ended inside a control-plane transaction fails the call naming the control plane; nothing is committed; the next call succeeds', async () => {
    const pool = new Pool({ ...pg().adminConfig(CP), max: 1 });
    try {
      const error = await inTransaction(pool, async (c) => {
        await c.query("INSERT INTO events VALUES ('lost')");
        return terminatedBetweenQueries(c);
      }).catch((e) => e);
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error.message).toMatch(/^control plane: the database connection was lost \(.+\); nothing was committed$/);
      expect(pool.totalCount).toBe(0);
      await inTransaction(pool, (c) => c.query("INSERT INTO events VALUES ('next')"));
      expect(await pg().query('SELECT what FROM events ORDER BY what', [], CP)).toEqual([{ what: 'next' }]);
    } finally {
      await pool.end();
    }
  });

  test('an idle control-plane connection that is terminated is discarded; the next transaction succeeds', async () => {
    const pool = new Pool({ ...pg().adminConfig(CP), max: 1 });
    try {
      const pid = await inTransaction(pool, backendPid);
      const gone = removed(pool);
      await pg().query('SELECT pg_terminate_backend($1)', [pid]);
      await gone;
      expect(await inTransaction(pool, backendPid)).not.toBe(pid);
    } finally {
      await pool.end();
    }
  });
});

describe('post-apply hooks (DatabaseConnector)', () => {
  test('a hook whose session is ended between two queries fails; the next hook connects afresh', async () => {
    const connector = new DatabaseConnector({
      secrets: new StaticSecretResolver({ 'local:hook': { username: ROLE, password: PASSWORD } }),
      sslCaFile: pg().tls!.caFile,
    });
    const endpoint = { host: pg().host, port: pg().port, database: DB, secretRef: 'local:hook' };
    await expect(connector.withClient(endpoint, (c) => terminatedBetweenQueries(c as unknown as PoolClient))).rejects.toThrow(/not queryable|terminat/i);
    await expect(connector.withClient(endpoint, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one)).resolves.toBe(1);
  });
});
