/**
 * withTenant against a real PostgreSQL 15: the statements per model, COMMIT/ROLLBACK, a broken
 * connection destroyed rather than pooled, an aborted transaction never reported as committed,
 * and contexts validated before a connection is taken.
 */
import { randomUUID } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';
import { ConnectionLostError } from '../../lib/db/lost-connections';
import { TenantContextError, type TenantContext } from '../../lib/runtime/tenant-context';
import { beginSql, endSql, withTenant } from '../../lib/runtime/with-tenant';
import { usePostgres } from '../support/postgres';

const DB = 'bridge';
const ROLE = 'runtime_app';
const PASSWORD = 'runtime app password';
const pg = usePostgres();

const acme: TenantContext = { model: 'bridge', id: randomUUID(), slug: 'acme' };
const globex: TenantContext = { model: 'bridge', id: randomUUID(), slug: 'globex-corp' };

beforeAll(async () => {
  await pg().createRole(ROLE, { password: PASSWORD });
  await pg().createDatabase(DB);
  await pg().withAdmin(async (c) => {
    for (const schema of ['tenant_acme', 'tenant_globex_corp']) {
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.query(`CREATE TABLE ${schema}.items (name text NOT NULL)`);
      await c.query(`INSERT INTO ${schema}.items VALUES ('item of ${schema}')`);
      await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${ROLE}`);
      await c.query(`GRANT SELECT, INSERT ON ${schema}.items TO ${ROLE}`);
    }
  }, DB);
});

/** A pool of one connection as the app role, recording every statement sent. */
function recordingPool(): { pool: Pool; sent: { text: string; values?: unknown[] }[] } {
  const pool = new Pool({ ...pg().clientConfig({ user: ROLE, password: PASSWORD, database: DB }), max: 1 });
  const sent: { text: string; values?: unknown[] }[] = [];
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: any[]) => any;
    (client as any).query = (...args: any[]) => {
      sent.push({ text: typeof args[0] === 'string' ? args[0] : args[0].text, ...(Array.isArray(args[1]) ? { values: args[1] } : {}) });
      return query(...args);
    };
  });
  return { pool, sent };
}

describe('withTenant', () => {
  test('bridge: search_path is the tenant schema inside the transaction only', async () => {
    const { pool, sent } = recordingPool();
    try {
      const inAcme = await withTenant(pool, acme, async (c) => (await c.query('SELECT name, current_schemas(false)::text[] AS path FROM items')).rows[0]);
      expect(inAcme).toEqual({ name: 'item of tenant_acme', path: ['tenant_acme'] });
      expect(sent).toEqual([
        { text: `BEGIN; SELECT current_setting('search_path') AS search_path; SELECT set_config('search_path', '"tenant_acme"', true)` },
        { text: 'SELECT name, current_schemas(false)::text[] AS path FROM items' },
        { text: endSql('COMMIT') },
      ]);
      const inGlobex = await withTenant(pool, globex, async (c) => (await c.query('SELECT name FROM items')).rows[0].name);
      expect(inGlobex).toBe('item of tenant_globex_corp');
      // The same (only) connection, outside withTenant: back to the default search_path.
      const client = await pool.connect();
      try {
        expect((await client.query('SHOW search_path')).rows[0].search_path).toBe('"$user", public');
        await expect(client.query('SELECT * FROM items')).rejects.toThrow(/relation "items" does not exist/);
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });

  test('silo: BEGIN, the work, COMMIT; nothing else is set', async () => {
    const { pool, sent } = recordingPool();
    try {
      const initech = { model: 'silo', id: randomUUID(), slug: 'initech' } as const;
      const n = await withTenant(pool, initech, async (c) => (await c.query('SELECT 42 AS n')).rows[0].n);
      expect(n).toBe(42);
      expect(sent.map((s) => s.text)).toEqual([beginSql(initech), 'SELECT 42 AS n', endSql('COMMIT')]);
      expect(beginSql(initech)).toBe("BEGIN; SELECT current_setting('search_path') AS search_path");
    } finally {
      await pool.end();
    }
  });

  test('an error in fn rolls back, is rethrown, and the connection goes back to the pool', async () => {
    const { pool, sent } = recordingPool();
    try {
      await expect(withTenant(pool, acme, async (c) => {
        await c.query("INSERT INTO items VALUES ('rolled back')");
        throw new Error('boom');
      })).rejects.toThrow('boom');
      expect(sent.map((s) => s.text).slice(-1)).toEqual([endSql('ROLLBACK')]);
      expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 1 });
      const rows = await pg().query("SELECT count(*)::int AS n FROM tenant_acme.items WHERE name = 'rolled back'", [], DB);
      expect(rows[0].n).toBe(0);
    } finally {
      await pool.end();
    }
  });

  test('an error swallowed inside fn aborts the transaction: withTenant throws instead of reporting a commit', async () => {
    const { pool } = recordingPool();
    try {
      await expect(withTenant(pool, acme, async (c) => {
        await c.query("INSERT INTO items VALUES ('never committed')");
        await c.query('SELECT 1/0').catch(() => undefined);
        return 'fine';
      })).rejects.toThrow(/aborted by an earlier error .* rolled back, not committed/);
      const rows = await pg().query("SELECT count(*)::int AS n FROM tenant_acme.items WHERE name = 'never committed'", [], DB);
      expect(rows[0].n).toBe(0);
    } finally {
      await pool.end();
    }
  });

  test('when ROLLBACK fails (the server ended the connection), the connection is destroyed, not pooled', async () => {
    const { pool } = recordingPool();
    try {
      let firstPid = 0;
      // No 'error' listener here: withTenant handles the termination notice that arrives while the client is checked out.
      const error = await withTenant(pool, acme, async (c: PoolClient) => {
        firstPid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        const ended = new Promise((resolve) => c.once('end', resolve));
        await pg().query('SELECT pg_terminate_backend($1)', [firstPid]);
        await ended;
        throw new Error('work failed');
      }).catch((e) => e);
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error.message).toMatch(/^withTenant acme: the database connection was lost \(.+\); nothing was committed/);
      expect(error.cause.message).toBe('work failed');
      expect(pool.totalCount).toBe(0);
      // The pool opens a fresh connection for the next unit of work.
      const pid = await withTenant(pool, acme, async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      expect(pid).not.toBe(firstPid);
    } finally {
      await pool.end();
    }
  });

  test.each([
    ['an id that is not a UUID', { model: 'pool', id: "1' OR '1'='1", slug: 'acme' }, /is not a UUID/],
    ['an unsafe slug', { model: 'pool', id: randomUUID(), slug: 'Acme; DROP' }, /not a safe tenant slug/],
    ['an unknown model', { model: 'shared', id: randomUUID(), slug: 'acme' }, /is not pool, bridge or silo/],
    ['a bridge schema that is not an identifier', { model: 'bridge', id: randomUUID(), slug: 'acme', schema: 'x"; DROP SCHEMA y; --' }, /is not a lowercase SQL identifier/],
  ])('refuses %s before taking a connection', async (_what, tenant, message) => {
    const connect = jest.fn();
    const error = await withTenant({ connect } as unknown as Pool, tenant as TenantContext, async () => 1).catch((e) => e);
    expect(error).toBeInstanceOf(TenantContextError);
    expect(error.message).toMatch(message);
    expect(connect).not.toHaveBeenCalled();
  });

  test('a tenant setting that is not namespaced is refused', async () => {
    const connect = jest.fn();
    await expect(withTenant({ connect } as unknown as Pool, { model: 'pool', id: randomUUID(), slug: 'acme' }, async () => 1, { tenantSetting: 'search_path' })).rejects.toThrow(/must look like "app.tenant_id"/);
    expect(connect).not.toHaveBeenCalled();
  });
});
