/**
 * Tenant isolation in the pool, end to end, against a real PostgreSQL 15 and a real PgBouncer
 * 1.18 in transaction mode: a seeded random workload of many tenants runs as the app role through
 * withTenant, directly and through PgBouncer with 40 concurrent clients multiplexed over 5 server
 * connections. No read, update or delete ever touches another tenant's row, writes with a
 * foreign tenant_id are rejected by WITH CHECK, and the database ends up exactly as the model of
 * the workload says. Also: views with and without security_invoker, and why the context must be
 * transaction-local (a session SET leaks through PgBouncer; withTenant never sends one).
 *
 * TENANCY_TEST_SEED=<n> replays a run (the seed is in every failure message).
 */
import { randomUUID } from 'node:crypto';
import { Client, Pool, type PoolClient } from 'pg';
import { auditRls } from '../../lib/pool/rls-audit';
import { beginSql, endSql, withTenant } from '../../lib/runtime/with-tenant';
import type { TenantContext } from '../../lib/runtime/tenant-context';
import { createPoolDatabase, POOL_APP_PASSWORD } from '../support/pool-db';
import { usePgbouncer, type PgbouncerProcess } from '../support/pgbouncer';
import { usePostgres } from '../support/postgres';
import { prng } from '../support/seeded-random';

const DB = 'pool';
const SEED = Number(process.env.TENANCY_TEST_SEED ?? 20261126);
const TENANTS = 50;
const CLIENTS = 40;
const SERVER_CONNECTIONS = 5;
const OPS_PER_CLIENT = 25;

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];
/** A UUID from the seeded generator (v4 layout). */
const seededUuid = (): string => {
  const hex = Array.from({ length: 32 }, () => int(16).toString(16));
  hex[12] = '4';
  hex[16] = '89ab'[int(4)];
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
};

interface TenantModelState {
  readonly ctx: TenantContext & { model: 'pool' };
  readonly projects: string[];
  /** Tasks the tenant has now. */
  readonly tasks: Set<string>;
}
const tenants: TenantModelState[] = Array.from({ length: TENANTS }, (_, i) => ({
  ctx: { model: 'pool', id: seededUuid(), slug: `tenant-${String(i).padStart(2, '0')}` },
  projects: [],
  tasks: new Set<string>(),
}));
/** Every task id ever created, with its tenant (never reassigned). */
const taskOwner = new Map<string, string>();
const projectOwner = new Map<string, string>();

const pg = usePostgres();
beforeAll(async () => {
  await createPoolDatabase(pg(), DB);
});
const bouncer = usePgbouncer(async () => ({
  settings: { host: pg().host, port: pg().port, dbname: DB, serverTlsCaFile: pg().tls!.caFile, defaultPoolSize: SERVER_CONNECTIONS, maxClientConn: 200 },
  users: [{ name: 'pool_app', secret: await pg().storedPassword('pool_app') }],
}));

const directPool = () => new Pool({ ...pg().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 10 });
const bouncerPool = (b: PgbouncerProcess, max: number) => new Pool({ ...b.clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max });
const why = (what: string) => `${what} (TENANCY_TEST_SEED=${SEED})`;

/** The tenant in the transaction and the server connection serving it; checks the context is the expected tenant. */
async function context(client: PoolClient, tenant: TenantModelState): Promise<number> {
  const { rows } = await client.query<{ t: string; pid: number }>("SELECT current_setting('app.tenant_id') AS t, pg_backend_pid() AS pid");
  if (rows[0].t !== tenant.ctx.id) throw new Error(why(`${tenant.ctx.slug}: app.tenant_id is ${rows[0].t}`));
  return rows[0].pid;
}

function foreignTask(tenant: TenantModelState): string | undefined {
  const others = [...taskOwner.entries()].filter(([, owner]) => owner !== tenant.ctx.id);
  return others.length ? pick(others)[0] : undefined;
}
const otherTenant = (tenant: TenantModelState) => pick(tenants.filter((t) => t !== tenant));

beforeAll(async () => {
  // Seed through withTenant as the app role: WITH CHECK lets each tenant write its own rows.
  const pool = directPool();
  try {
    for (const tenant of tenants) {
      const projects = Array.from({ length: 1 + int(4) }, () => seededUuid());
      const tasks = Array.from({ length: 10 + int(50) }, () => ({ id: seededUuid(), project: pick(projects) }));
      await withTenant(pool, tenant.ctx, async (c) => {
        await c.query('INSERT INTO projects (tenant_id, id, name) SELECT $1, unnest($2::uuid[]), $3', [tenant.ctx.id, projects, `project of ${tenant.ctx.slug}`]);
        await c.query(
          'INSERT INTO tasks (tenant_id, id, project_id, title) SELECT $1, t.id, t.project, $3 FROM unnest($2::uuid[], $4::uuid[]) AS t(id, project)',
          [tenant.ctx.id, tasks.map((t) => t.id), `task of ${tenant.ctx.slug}`, tasks.map((t) => t.project)],
        );
      });
      tenant.projects.push(...projects);
      for (const p of projects) projectOwner.set(p, tenant.ctx.id);
      for (const t of tasks) {
        tenant.tasks.add(t.id);
        taskOwner.set(t.id, tenant.ctx.id);
      }
    }
  } finally {
    await pool.end();
  }
});

/** What a committed operation changed in the model. */
interface Effect {
  readonly inserted?: string;
  readonly deleted?: string;
}
type Op = (client: PoolClient, tenant: TenantModelState) => Promise<Effect | void>;

/** Operations that must succeed and stay inside the tenant. */
const SAFE_OPS: Record<string, Op> = {
  async readAll(c, t) {
    const { rows } = await c.query<{ tenant_id: string; id: string }>('SELECT tenant_id, id FROM tasks');
    for (const r of rows) {
      if (r.tenant_id !== t.ctx.id || taskOwner.get(r.id) !== t.ctx.id) throw new Error(why(`${t.ctx.slug} read task ${r.id} of tenant ${r.tenant_id}`));
    }
    const projects = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM projects');
    if (projects.rows.some((r) => r.tenant_id !== t.ctx.id)) throw new Error(why(`${t.ctx.slug} read another tenant's project`));
  },
  async readForeign(c, t) {
    const id = foreignTask(t);
    const other = otherTenant(t);
    const byId = await c.query('SELECT * FROM tasks WHERE id = $1', [id]);
    const byTenant = await c.query('SELECT * FROM tasks WHERE tenant_id = $1', [other.ctx.id]);
    const joined = await c.query('SELECT t.id FROM tasks t JOIN projects p ON p.tenant_id = t.tenant_id AND p.id = t.project_id WHERE p.id = ANY($1)', [other.projects]);
    if (byId.rowCount || byTenant.rowCount || joined.rowCount) throw new Error(why(`${t.ctx.slug} read rows of ${other.ctx.slug}`));
  },
  async updateForeign(c, t) {
    const id = foreignTask(t);
    const other = otherTenant(t);
    const a = await c.query("UPDATE tasks SET title = 'pwned' WHERE id = $1", [id]);
    const b = await c.query("UPDATE projects SET name = 'pwned' WHERE tenant_id = $1", [other.ctx.id]);
    if (a.rowCount || b.rowCount) throw new Error(why(`${t.ctx.slug} updated rows of another tenant`));
  },
  async deleteForeign(c, t) {
    const id = foreignTask(t);
    const other = otherTenant(t);
    const a = await c.query('DELETE FROM tasks WHERE id = $1', [id]);
    const b = await c.query('DELETE FROM tasks WHERE tenant_id = $1', [other.ctx.id]);
    if (a.rowCount || b.rowCount) throw new Error(why(`${t.ctx.slug} deleted rows of another tenant`));
  },
  async updateOwn(c, t) {
    const { rows } = await c.query<{ tenant_id: string }>('UPDATE tasks SET done = NOT done RETURNING tenant_id');
    if (rows.some((r) => r.tenant_id !== t.ctx.id)) throw new Error(why(`${t.ctx.slug} updated another tenant's row`));
  },
  async insertOwn(c, t) {
    const id = randomUUID();
    await c.query('INSERT INTO tasks (tenant_id, id, project_id, title) VALUES ($1, $2, $3, $4)', [t.ctx.id, id, pick(t.projects), `task of ${t.ctx.slug}`]);
    taskOwner.set(id, t.ctx.id); // the id is the tenant's from now on; it counts as a task of the tenant once committed
    return { inserted: id };
  },
  async deleteOwn(c, t) {
    const id = t.tasks.size ? pick([...t.tasks]) : undefined;
    if (!id) return;
    const { rowCount } = await c.query('DELETE FROM tasks WHERE id = $1', [id]);
    return rowCount ? { deleted: id } : {};
  },
};

/** Writes that must be rejected by the policy's WITH CHECK (42501), aborting the transaction. */
const REJECTED_OPS: Record<string, Op> = {
  async insertForeignTask(c, t) {
    const other = otherTenant(t);
    await c.query('INSERT INTO tasks (tenant_id, id, project_id, title) VALUES ($1, $2, $3, $4)', [other.ctx.id, randomUUID(), pick(other.projects), 'planted']);
  },
  async insertForeignProject(c, t) {
    await c.query("INSERT INTO projects (tenant_id, id, name) VALUES ($1, $2, 'planted')", [otherTenant(t).ctx.id, randomUUID()]);
  },
  async moveOwnToForeign(c, t) {
    // Every row of the tenant, moved to another tenant: WITH CHECK refuses the new rows.
    const { rowCount } = await c.query('UPDATE projects SET tenant_id = $1', [otherTenant(t).ctx.id]);
    if (rowCount === 0) throw Object.assign(new Error('no project to move'), { code: 'no-rows' });
  },
};

interface WorkloadStats {
  transactions: number;
  rejected: number;
  pids: Map<number, Set<string>>;
}

/** `clients` concurrent workers, each running `ops` random transactions through withTenant on `pool`. */
async function runWorkload(pool: Pool, clients: number, ops: number): Promise<WorkloadStats> {
  const stats: WorkloadStats = { transactions: 0, rejected: 0, pids: new Map() };
  const plans = Array.from({ length: clients }, () =>
    Array.from({ length: ops }, () => {
      const rejected = rand() < 0.2;
      const names = Object.keys(rejected ? REJECTED_OPS : SAFE_OPS);
      return { tenant: pick(tenants), rejected, name: pick(names) };
    }),
  );
  const seen = (pid: number, tenant: TenantModelState) => {
    if (!stats.pids.has(pid)) stats.pids.set(pid, new Set());
    stats.pids.get(pid)!.add(tenant.ctx.id);
  };
  await Promise.all(plans.map(async (plan) => {
    for (const step of plan) {
      const { tenant } = step;
      if (step.rejected) {
        const error = await withTenant(pool, tenant.ctx, async (c) => {
          seen(await context(c, tenant), tenant);
          await REJECTED_OPS[step.name](c, tenant);
          await context(c, tenant);
        }).then(() => undefined, (e: { code?: string; message: string }) => e);
        if (error?.code === 'no-rows') continue;
        if (!error || error.code !== '42501' || !/violates row-level security policy/.test(error.message)) {
          throw new Error(why(`${step.name} for ${tenant.ctx.slug} was not rejected by WITH CHECK: ${error ? error.message : 'it committed'}`));
        }
        stats.rejected++;
      } else {
        const effect = await withTenant(pool, tenant.ctx, async (c) => {
          seen(await context(c, tenant), tenant);
          const done = await SAFE_OPS[step.name](c, tenant);
          await context(c, tenant);
          return done ?? {};
        });
        if (effect.inserted) tenant.tasks.add(effect.inserted);
        if (effect.deleted) tenant.tasks.delete(effect.deleted);
      }
      stats.transactions++;
    }
  }));
  return stats;
}

/** The database as the superuser sees it, against the model. */
async function expectDatabaseMatchesModel(): Promise<void> {
  const rows = await pg().query<{ tenant_id: string; id: string; title: string }>('SELECT tenant_id, id, title FROM pool.tasks', [], DB);
  const byTenant = new Map<string, string[]>();
  for (const r of rows) {
    expect({ id: r.id, tenant: r.tenant_id }).toEqual({ id: r.id, tenant: taskOwner.get(r.id) });
    expect(r.title).not.toBe('pwned');
    byTenant.set(r.tenant_id, [...(byTenant.get(r.tenant_id) ?? []), r.id]);
  }
  for (const t of tenants) expect({ tenant: t.ctx.slug, tasks: (byTenant.get(t.ctx.id) ?? []).sort() }).toEqual({ tenant: t.ctx.slug, tasks: [...t.tasks].sort() });
  const projects = await pg().query<{ tenant_id: string; id: string; name: string }>('SELECT tenant_id, id, name FROM pool.projects', [], DB);
  expect(projects).toHaveLength(tenants.reduce((n, t) => n + t.projects.length, 0));
  for (const p of projects) {
    expect(p.tenant_id).toBe(projectOwner.get(p.id));
    expect(p.name).not.toBe('pwned');
  }
}

describe(`randomized isolation (seed ${SEED}, ${TENANTS} tenants)`, () => {
  test('the seed data is in place, and each tenant sees exactly its own rows through withTenant', async () => {
    expect(taskOwner.size).toBeGreaterThan(TENANTS * 10);
    const pool = directPool();
    try {
      for (const t of tenants) {
        const ids = await withTenant(pool, t.ctx, async (c) => (await c.query<{ id: string }>('SELECT id FROM tasks')).rows.map((r) => r.id));
        expect(ids.sort()).toEqual([...t.tasks].sort());
      }
    } finally {
      await pool.end();
    }
  });

  test('directly to PostgreSQL: concurrent random transactions never cross tenants', async () => {
    const pool = directPool();
    try {
      const stats = await runWorkload(pool, 10, OPS_PER_CLIENT);
      expect(stats.transactions).toBe(10 * OPS_PER_CLIENT);
      expect(stats.rejected).toBeGreaterThan(0);
    } finally {
      await pool.end();
    }
    await expectDatabaseMatchesModel();
  });

  test(`through PgBouncer (transaction mode): ${CLIENTS} concurrent clients over ${SERVER_CONNECTIONS} server connections, tenants interleaved`, async () => {
    const pool = bouncerPool(bouncer(), CLIENTS);
    try {
      const stats = await runWorkload(pool, CLIENTS, OPS_PER_CLIENT);
      expect(stats.transactions).toBe(CLIENTS * OPS_PER_CLIENT);
      expect(stats.rejected).toBeGreaterThan(0);
      // PgBouncer multiplexed the clients: at most 5 server connections, each serving many tenants in turn.
      expect(stats.pids.size).toBeLessThanOrEqual(SERVER_CONNECTIONS);
      expect(Math.max(...[...stats.pids.values()].map((s) => s.size))).toBeGreaterThan(1);
      expect(pool.totalCount).toBeGreaterThan(SERVER_CONNECTIONS);
    } finally {
      await pool.end();
    }
    await expectDatabaseMatchesModel();
  });

  test('through PgBouncer afterwards: a transaction without tenant context sees nothing and cannot write', async () => {
    const clients = Array.from({ length: SERVER_CONNECTIONS * 2 }, () => new Client(bouncer().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB })));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      // Every server connection is visited (10 clients hold a transaction at once over 5 connections, in two waves).
      await Promise.all(clients.map(async (c) => {
        await c.query('BEGIN');
        const { rows } = await c.query("SELECT current_setting('app.tenant_id', true) AS t, (SELECT count(*) FROM tasks)::int AS tasks, (SELECT count(*) FROM projects)::int AS projects");
        expect({ tasks: rows[0].tasks, projects: rows[0].projects }).toEqual({ tasks: 0, projects: 0 });
        expect(rows[0].t === null || rows[0].t === '').toBe(true);
        await expect(c.query("INSERT INTO projects (tenant_id, id, name) VALUES ($1, $2, 'x')", [tenants[0].ctx.id, randomUUID()])).rejects.toMatchObject({ code: '42501' });
        await c.query('ROLLBACK');
      }));
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  });
});

describe('views over tenant tables', () => {
  const [a, b] = [tenants[0], tenants[1]];

  afterAll(async () => {
    await pg().query('DROP VIEW IF EXISTS pool.owner_view, pool.superuser_view, pool.invoker_view', [], DB);
  });

  test('a view without security_invoker owned by the table owner does not leak (FORCE binds the owner), and the audit flags it', async () => {
    await pg().withAdmin(async (c) => {
      await c.query('SET ROLE pool_owner');
      await c.query('CREATE VIEW pool.owner_view AS SELECT tenant_id, id, title FROM pool.tasks');
      await c.query('GRANT SELECT ON pool.owner_view TO pool_app');
    }, DB);
    const pool = directPool();
    try {
      const seenByA = await withTenant(pool, a.ctx, async (c) => (await c.query<{ tenant_id: string; id: string }>('SELECT tenant_id, id FROM owner_view')).rows);
      expect(seenByA.map((r) => r.id).sort()).toEqual([...a.tasks].sort());
      expect(new Set(seenByA.map((r) => r.tenant_id))).toEqual(new Set([a.ctx.id]));
      const app = await pool.connect();
      try {
        expect((await app.query('SELECT count(*)::int AS n FROM owner_view')).rows[0].n).toBe(0); // no tenant: nothing
      } finally {
        app.release();
      }
    } finally {
      await pool.end();
    }
    const report = await pg().withAdmin((c) => auditRls(c, { appRole: 'pool_app' }), DB);
    expect(report.views).toEqual([
      expect.objectContaining({ view: 'pool.owner_view', kind: 'view', owner: 'pool_owner', securityInvoker: false, over: ['pool.tasks'], problems: [expect.stringMatching(/without security_invoker.*FORCE ROW LEVEL SECURITY/)] }),
    ]);
    expect(report.ok).toBe(false);
  });

  test('the same view owned by a superuser leaks every tenant, unless it is security_invoker; the audit tells them apart', async () => {
    await pg().withAdmin(async (c) => {
      await c.query('CREATE VIEW pool.superuser_view AS SELECT tenant_id, id FROM pool.tasks');
      await c.query('CREATE VIEW pool.invoker_view WITH (security_invoker = true) AS SELECT tenant_id, id FROM pool.tasks');
      await c.query('GRANT SELECT ON pool.superuser_view, pool.invoker_view TO pool_app');
    }, DB);
    const pool = directPool();
    try {
      const [leaked, invoker] = await withTenant(pool, a.ctx, async (c) => [
        (await c.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM superuser_view')).rows,
        (await c.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM invoker_view')).rows,
      ]);
      expect(leaked.map((r) => r.tenant_id)).toContain(b.ctx.id); // the leak the audit exists to catch
      expect(invoker).toEqual([{ tenant_id: a.ctx.id }]);
    } finally {
      await pool.end();
    }
    const report = await pg().withAdmin((c) => auditRls(c, { appRole: 'pool_app' }), DB);
    const byName = Object.fromEntries(report.views.map((v) => [v.view, v]));
    expect(byName['pool.superuser_view'].problems).toEqual([expect.stringMatching(/owned by postgres who bypasses RLS: it shows every tenant's rows/)]);
    expect(byName['pool.invoker_view']).toMatchObject({ securityInvoker: true, problems: [] });
  });
});

describe('tenant context is transaction-local: one shared server connection (PgBouncer pool of 1)', () => {
  const single = usePgbouncer(async () => ({
    settings: { host: pg().host, port: pg().port, dbname: DB, serverTlsCaFile: pg().tls!.caFile, defaultPoolSize: 1, maxClientConn: 20 },
    users: [{ name: 'pool_app', secret: await pg().storedPassword('pool_app') }],
  }));
  const connect = async () => {
    const c = new Client(single().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }));
    await c.connect();
    return c;
  };
  const probe = 'SELECT pg_backend_pid() AS pid, current_setting($1, true) AS t, (SELECT count(*) FROM tasks)::int AS n';

  test('a session-level SET would leak the tenant to the next client of the server connection', async () => {
    const [x, y] = [await connect(), await connect()];
    try {
      await x.query('SET app.tenant_id = ' + `'${tenants[0].ctx.id}'`);
      const seenByY = (await y.query(probe, ['app.tenant_id'])).rows[0];
      expect(seenByY.t).toBe(tenants[0].ctx.id); // y now runs as tenant 0 ...
      expect(seenByY.n).toBe(tenants[0].tasks.size); // ... and sees its rows
      await y.query('RESET ALL');
    } finally {
      await Promise.all([x.end(), y.end()]);
    }
  });

  test('withTenant never does: after it, a fresh transaction on the same server connection sees nothing', async () => {
    const pool = new Pool({ ...single().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB }), max: 2 });
    const sent: string[] = [];
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: any[]) => any;
      (client as any).query = (...args: any[]) => {
        sent.push(typeof args[0] === 'string' ? args[0] : args[0].text);
        return query(...args);
      };
    });
    const y = await connect();
    try {
      for (const t of tenants.slice(0, 5)) {
        sent.length = 0;
        const inside = await withTenant(pool, t.ctx, async (c) => (await c.query(probe, ['app.tenant_id'])).rows[0]);
        expect(inside).toMatchObject({ t: t.ctx.id, n: t.tasks.size });
        // Only transaction-scoped statements: BEGIN with set_config(..., true), the work, COMMIT
        // (each with read-only session checks in the same message).
        expect(sent).toEqual([`BEGIN; SELECT current_setting('search_path') AS search_path; SELECT set_config('app.tenant_id', '${t.ctx.id}', true)`, probe, endSql('COMMIT')]);
        expect(beginSql(t.ctx)).toBe(sent[0]);
        await y.query('BEGIN');
        const after = (await y.query(probe, ['app.tenant_id'])).rows[0];
        await y.query('COMMIT');
        expect(after.pid).toBe(inside.pid); // the very server connection withTenant used
        expect(after.t === '' || after.t === null).toBe(true);
        expect(after.n).toBe(0);
      }
      // Also after a failed transaction (rolled back by withTenant).
      await expect(withTenant(pool, tenants[0].ctx, async (c) => c.query('SELECT 1/0'))).rejects.toThrow(/division by zero/);
      const after = (await y.query(probe, ['app.tenant_id'])).rows[0];
      expect(after.t === '' || after.t === null).toBe(true);
      expect(after.n).toBe(0);
    } finally {
      await y.end();
      await pool.end();
    }
  });
});
