// Reproduces: a pool table without tenant_id. A pool migration adds `notes` (no tenant_id, not
// declared shared): on main the runner applies it, and since no row-level security applies to it,
// every tenant reads and writes every other tenant's notes; `tenancy audit rls` says OK (it only
// looked at tables with tenant_id), and the pool erasure of a tenant is "verified" (zero rows left
// in the tables with tenant_id) while its notes are still there. Unique constraints without
// tenant_id and serial/identity keys, which tell a tenant about other tenants, went unreported.
// Fails on 0f20909 (main before the fix): the migration with `notes` was applied (status
// "applied"), a table meant to be shared was writable by pool_app (the INSERT succeeded), and
// `tenancy audit rls` exited 0 over uncovered tables.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Pool } from 'pg';
import { runRlsAudit } from '../../lib/cli/audit-command';
import { migrationSetFromFiles } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { poolTarget } from '../../lib/migrate/targets';
import { countPoolTenantRows, erasePoolTenant } from '../../lib/offboarding/pool-erasure';
import { provisionPool } from '../../lib/pool/provision';
import type { RlsAuditReport } from '../../lib/pool/rls-audit';
import { withTenant } from '../../lib/runtime/with-tenant';
import type { TenantContext } from '../../lib/runtime/tenant-context';
import { POOL_APP_PASSWORD, poolMigrationFiles } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

const pg = usePostgres();
const A: TenantContext = { model: 'pool', id: randomUUID(), slug: 'tenant-a' };
const B: TenantContext = { model: 'pool', id: randomUUID(), slug: 'tenant-b' };
const DIR = '/virtual/migrations/pool';
/** The repository's pool migrations, plus `extra`, as the runner would load them. */
const poolSet = (extra: Record<string, string> = {}) => migrationSetFromFiles(DIR, {
  ...Object.fromEntries(poolMigrationFiles().map((m) => [m.file.split('/').pop()!, readFileSync(m.file, 'utf8')])),
  ...extra,
});

let n = 0;
/** A fresh provisioned pool database (no migration applied yet). */
async function freshPool(): Promise<string> {
  const db = `pool_cov_${++n}`;
  await pg().createDatabase(db);
  await pg().withAdmin((c) => provisionPool(c, { appPassword: POOL_APP_PASSWORD }), db);
  return db;
}
const migrate = (db: string, extra: Record<string, string> = {}) =>
  migrateTargets({ targets: [poolTarget({ connection: pg().adminConfig(db), role: 'pool_owner' })], migrations: poolSet(extra) });
const appPool = (db: string) => new Pool({ ...pg().clientConfig({ user: 'pool_app', password: POOL_APP_PASSWORD, database: db }), max: 1 });

async function audit(db: string): Promise<{ code: number; report: RlsAuditReport; text: string }> {
  const databaseUrl = `postgresql://postgres@localhost:${pg().port}/${db}?host=${encodeURIComponent(pg().socketDir)}`;
  const io = (sink: (t: string) => void) => ({ stdout: { write: (t: string) => sink(t) }, stderr: { write: (t: string) => sink(t) } });
  let json = '';
  let text = '';
  const code = await runRlsAudit({ databaseUrl, appRole: 'pool_app', json: true }, io((t) => (json += t)));
  await runRlsAudit({ databaseUrl, appRole: 'pool_app' }, io((t) => (text += t)));
  return { code, report: JSON.parse(json) as RlsAuditReport, text };
}

test('a pool migration that adds a table without tenant_id, undeclared, is refused and rolled back, naming the table and the file', async () => {
  const db = await freshPool();
  const run = await migrate(db, { '0002_notes.up.sql': 'CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL);' });
  const result = run.results[0];
  expect(result.status).toBe('failed');
  expect(result.error).toMatch(/^0002_notes\.up\.sql: .*pool\.notes \(0002_notes\.up\.sql\): table without a tenant_id column and not declared shared/s);
  expect(result.file).toBe(`${DIR}/0002_notes.up.sql`);
  // Nothing of the run was committed: the attack table does not exist, tenants cannot share it.
  expect(await pg().query("SELECT to_regclass('pool.notes') AS t, to_regclass('pool.projects') AS p", [], db)).toEqual([{ t: null, p: null }]);
  const pool = appPool(db);
  try {
    const written = await withTenant(pool, A, (c) => c.query("INSERT INTO notes VALUES (gen_random_uuid(), 'secret of A')")).catch((e) => e);
    expect(written).toMatchObject({ code: '42P01' }); // relation "notes" does not exist
  } finally {
    await pool.end();
  }
});

test('a table declared shared in its migration is applied, read-only for the app role, and listed as shared by the audit', async () => {
  const db = await freshPool();
  const run = await migrate(db, {
    '0002_plans.up.sql': `CREATE TABLE plans (code text PRIMARY KEY, seats int NOT NULL);
COMMENT ON TABLE plans IS 'tenancy:shared: the plan catalogue, the same for every tenant';
INSERT INTO plans VALUES ('starter', 5), ('business', 50);`,
  });
  expect(run.results[0]).toMatchObject({ status: 'applied', version: 2 });
  const pool = appPool(db);
  try {
    expect(await withTenant(pool, A, async (c) => (await c.query('SELECT code FROM plans ORDER BY code')).rows.map((r) => r.code))).toEqual(['business', 'starter']);
    for (const write of ["INSERT INTO plans VALUES ('free', 1)", 'UPDATE plans SET seats = 0', 'DELETE FROM plans', 'TRUNCATE plans']) {
      await expect(withTenant(pool, A, (c) => c.query(write))).rejects.toMatchObject({ code: '42501' });
    }
  } finally {
    await pool.end();
  }
  const { code, report, text } = await audit(db);
  expect(code).toBe(0);
  expect(report.relations.map((r) => [r.relation, r.coverage])).toEqual([
    ['pool.plans', 'shared'], ['pool.projects', 'tenant'], ['pool.tasks', 'tenant'],
  ]);
  expect(report.warnings).toEqual([]); // the sample schema: uuid keys, every unique led by tenant_id
  expect(text).toMatch(/pool\.plans\s*│?\s*table\s*│?\s*shared \(read-only for pool_app\)/);
});

test('the audit works from the database alone: every relation is listed, and one that is neither tenant nor shared fails it', async () => {
  const db = await freshPool();
  expect((await migrate(db)).results[0].status).toBe('applied');
  const pool = appPool(db);
  try {
    for (const t of [A, B]) await withTenant(pool, t, (c) => c.query('INSERT INTO projects (tenant_id, id, name) VALUES ($1, gen_random_uuid(), $2)', [t.id, `project of ${t.slug}`]));
  } finally {
    await pool.end();
  }
  // Created outside the migrations (as the owner): a plain table, a partitioned table with its
  // partition, a materialized view, a shared table someone granted writes on, and a tenant table
  // with a global UNIQUE and a serial column.
  await pg().withAdmin(async (c) => {
    await c.query('SET ROLE pool_owner');
    await c.query('CREATE TABLE pool.notes (id uuid PRIMARY KEY, body text)');
    await c.query('CREATE TABLE pool.events (at date NOT NULL, what text) PARTITION BY RANGE (at)');
    await c.query("CREATE TABLE pool.events_2026 PARTITION OF pool.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')");
    await c.query('CREATE MATERIALIZED VIEW pool.project_names AS SELECT 1 AS one');
    await c.query("CREATE TABLE pool.plans (code text PRIMARY KEY); COMMENT ON TABLE pool.plans IS 'tenancy:shared: plans'");
    // (the pool's default privileges grant the app role DML on every new table: enforcePoolRls revokes it on shared tables, nothing did here)
    await c.query('CREATE TABLE pool.invoices (tenant_id uuid NOT NULL, number serial, email text UNIQUE, PRIMARY KEY (tenant_id, number))');
    await c.query('RESET ROLE');
    await c.query(`ALTER TABLE pool.invoices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON pool.invoices USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid) WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)`);
  }, db);
  const { code, report, text } = await audit(db);
  expect(code).toBe(1);
  expect(report.ok).toBe(false);
  expect(report.relations.map((r) => [r.relation, r.kind, r.coverage])).toEqual([
    ['pool.events', 'partitioned table', 'uncovered'],
    ['pool.events_2026', 'table', 'uncovered'],
    ['pool.invoices', 'table', 'tenant'],
    ['pool.invoices_number_seq', 'sequence', 'sequence'],
    ['pool.notes', 'table', 'uncovered'],
    ['pool.plans', 'table', 'shared'],
    ['pool.project_names', 'materialized view', 'uncovered'],
    ['pool.projects', 'table', 'tenant'],
    ['pool.tasks', 'table', 'tenant'],
  ]);
  expect(report.relations.find((r) => r.relation === 'pool.events_2026')!.partitionOf).toBe('events');
  expect(report.problems).toEqual(expect.arrayContaining([
    expect.stringMatching(/^pool\.notes: table without a tenant_id column and not declared shared/),
    expect.stringMatching(/^pool\.plans: declared tenancy:shared but the app role can write it \(INSERT, UPDATE, DELETE\)/),
    expect.stringMatching(/^pool\.project_names: materialized view without a tenant_id column and not declared shared/),
  ]));
  expect(report.warnings).toEqual(expect.arrayContaining([
    expect.stringMatching(/^pool\.invoices: unique index invoices_email_key does not include tenant_id/),
    expect.stringMatching(/^pool\.invoices: column number is drawn from a sequence/),
    expect.stringMatching(/^pool\.invoices_number_seq: a sequence in the pool schema is shared by every tenant/),
  ]));
  expect(report.problems.join('\n')).not.toMatch(/invoices/); // warnings do not fail the audit
  expect(text).toMatch(/UNCOVERED/);
  expect(text).toMatch(/warnings? \(reported; the audit does not fail on them\)/);

  // The pool erasure and its verification refuse to claim "nothing left" over an uncovered table.
  await expect(pg().withAdmin((c) => countPoolTenantRows(c, A.id), db)).rejects.toThrow(/pool\.notes.*not declared shared/s);
  await expect(pg().withAdmin((c) => erasePoolTenant(c, A.id), db)).rejects.toThrow(/pool\.notes/);
  expect(await pg().query('SELECT count(*)::int AS n FROM pool.projects WHERE tenant_id = $1', [A.id], db)).toEqual([{ n: 1 }]); // rolled back

  // Declared and made read-only, or given up: the audit passes again (warnings aside).
  await pg().withAdmin(async (c) => {
    await c.query('DROP TABLE pool.notes, pool.events; DROP MATERIALIZED VIEW pool.project_names; REVOKE INSERT, UPDATE, DELETE ON pool.plans FROM pool_app');
  }, db);
  const again = await audit(db);
  expect(again.report.problems).toEqual([]);
  expect(again.code).toBe(0);
  const erased = await pg().withAdmin((c) => erasePoolTenant(c, A.id), db);
  expect(erased.deleted).toMatchObject({ projects: 1 });
  expect(await pg().withAdmin((c) => countPoolTenantRows(c, A.id), db)).toEqual({ invoices: 0, projects: 0, tasks: 0 });
});
