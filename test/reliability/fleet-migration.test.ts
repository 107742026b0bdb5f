/**
 * Issue 12, item 2: a fleet migration run (`tenancy migrate`, in-process) always finishes with a
 * result per target, under real faults on two real PostgreSQL 15 clusters:
 *
 * - the backend migrating one target is terminated (pg_terminate_backend) while its migration
 *   waits on a gate (an advisory lock the test holds, found in pg_stat_activity);
 * - the cluster holding half of the targets restarts (pg_ctl restart -m fast) while the run's
 *   connections to it are all busy.
 *
 * Each time: the lost targets are `failed` with the connection error, the others (other
 * databases, and on the restarted cluster the targets that connect afresh) are applied, the JSON
 * lines, the summary and the control-plane records are complete, the exit code is 1, and a
 * rerun applies exactly what is pending. Before the fix the run died on an unhandled 'error'
 * event ("Connection terminated unexpectedly") with none of it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import { registerMigrateCommand } from '../../lib/cli/migrate-command';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { runCommand } from '../support/cli';
import { usePostgres, type PostgresCluster } from '../support/postgres';
import { appliedVersions, repoSets, slugs } from '../migrate/helpers';

const GATE = 912_012;
const CONCURRENCY = 4;
/** Holds the faulted databases. */
const a = usePostgres();
/** Holds the healthy databases and the control plane. */
const b = usePostgres();

let work: string;
let migrationsDir: string;
const url = (cluster: PostgresCluster, database: string) => `postgres://postgres@/${database}?host=${encodeURIComponent(cluster.socketDir)}&port=${cluster.port}`;
const controlPlaneUrl = () => url(b(), 'control_plane');
const schemaOf = (slug: string) => `tenant_${slug.replace(/-/g, '_')}`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tenancy-fleet-faults-'));
  migrationsDir = join(work, 'migrations');
  mkdirSync(join(migrationsDir, 'tenant'), { recursive: true });
  writeFileSync(join(migrationsDir, 'tenant', '0001_items.up.sql'), 'CREATE TABLE items (id int PRIMARY KEY);\n');
  // The gate: a function of each database (created by the test) that blocks the targets it is told to.
  writeFileSync(join(migrationsDir, 'tenant', '0002_gated.up.sql'), 'SELECT public.migration_gate();\nCREATE TABLE gated (id int PRIMARY KEY);\n');
  await b().createDatabase('control_plane');
  const cp = await migrateTargets({ targets: [controlPlaneTarget({ connection: b().adminConfig('control_plane') })], migrations: repoSets(), concurrency: 1 });
  expect(cp.summary.ok).toBe(true);
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A database of bridge schemas whose gate blocks the schemas in `blocked` ('all': every one) on the advisory lock GATE. */
async function fleetDatabase(cluster: PostgresCluster, database: string, tenantSlugs: readonly string[], blocked: readonly string[] | 'all'): Promise<void> {
  await cluster.createDatabase(database);
  const condition = blocked === 'all' ? 'true' : `current_schema() = ANY (ARRAY[${blocked.map((s) => `'${schemaOf(s)}'`).join(', ') || "''"}])`;
  await cluster.query(
    `${tenantSlugs.map((s) => `CREATE SCHEMA ${schemaOf(s)};`).join('\n')}
     CREATE FUNCTION public.migration_gate() RETURNS void LANGUAGE plpgsql AS $$
     BEGIN IF ${condition} THEN
       -- Names the waiting target in pg_stat_activity (a batch's query text holds several targets, and is truncated).
       PERFORM set_config('application_name', current_schema(), true);
       PERFORM pg_advisory_xact_lock_shared(${GATE});
     END IF; END $$;`,
    [],
    database,
  );
}

/** A targets file: the bridge schemas of `fleets` (connection name → slugs). */
function targetsFile(name: string, fleets: Record<string, { url: string; slugs: readonly string[] }>): string {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify({
    connections: Object.fromEntries(Object.entries(fleets).map(([key, f]) => [key, f.url])),
    targets: Object.entries(fleets).flatMap(([key, f]) => f.slugs.map((slug) => ({ kind: 'bridge', slug, connection: key }))),
  }));
  return file;
}

/** `tenancy migrate up` in-process, JSON lines parsed. */
async function migrate(file: string): Promise<{ code: number; stderr: string; targets: any[]; summary: any }> {
  const r = await runCommand(registerMigrateCommand, [
    'migrate', '--targets', file, '--control-plane-url', controlPlaneUrl(), '--migrations', migrationsDir,
    '--concurrency', String(CONCURRENCY), '--database-concurrency', String(CONCURRENCY), '--lock-timeout', '0', '--json', '--actor', 'fault-test',
  ]);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { code: r.code, stderr: r.stderr, targets: lines.filter((l) => l.type === 'target'), summary: lines.find((l) => l.type === 'summary') };
}

/**
 * Polls `probe` on the test's admin session until it returns a value; fails if the run ended
 * first (it would never come). The interval paces a condition check, it synchronises nothing.
 */
async function waitFor<T>(what: string, run: { done: boolean }, probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (run.done) throw new Error(`the run ended before ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Backends of the runner in `database` waiting on the gate, with the schema each is migrating (set by the gate). */
const GATED_BACKENDS = `SELECT pid, application_name AS schema FROM pg_stat_activity
  WHERE datname = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory' ORDER BY pid`;

/** Targets in the control plane's latest records, as { target: [status, version, error?] }. */
async function recorded(targets: readonly string[]): Promise<Record<string, { status: string; version: number; error: string | null; run: string }>> {
  const rows = await b().query<{ target: string; status: string; version: number; error: string | null; run_id: string }>(
    'SELECT target, status, version, error, run_id::text FROM tenancy.tenant_migrations WHERE target = ANY($1) ORDER BY target', [targets], 'control_plane');
  return Object.fromEntries(rows.map((r) => [r.target, { status: r.status, version: r.version, error: r.error, run: r.run_id }]));
}

/** What every run must be: one JSON line per target, a summary counting them, the same in the control plane. */
async function expectCompleteRun(r: Awaited<ReturnType<typeof migrate>>, targets: readonly string[]): Promise<void> {
  expect(r.targets.map((t) => t.target).sort()).toEqual([...targets].sort());
  expect(r.summary).toMatchObject({ type: 'summary', total: targets.length, recorded: true });
  const counted = Object.values(r.summary.counts as Record<string, number>).reduce((x, y) => x + y, 0);
  expect(counted).toBe(targets.length);
  const runs = await b().query('SELECT summary FROM tenancy.migration_runs WHERE id = $1', [r.summary.runId], 'control_plane');
  expect(runs).toHaveLength(1);
  expect(runs[0].summary).toMatchObject({ total: targets.length, counts: r.summary.counts, ok: r.summary.ok });
  const records = await recorded(targets);
  expect(Object.keys(records).sort()).toEqual([...targets].sort());
  for (const t of r.targets) expect(records[t.target]).toEqual({ status: t.status, version: t.version, error: t.error ?? null, run: r.summary.runId });
}

/** The rerun: exactly the targets that had not finished are applied (every migration they lacked); the others are up to date. */
async function expectRerunAppliesPending(file: string, failed: readonly string[], targets: readonly string[]): Promise<void> {
  const rerun = await migrate(file);
  expect(rerun.stderr).toBe('');
  expect(rerun.code).toBe(0);
  await expectCompleteRun(rerun, targets);
  for (const t of rerun.targets) {
    if (failed.includes(t.target)) expect(t).toMatchObject({ status: 'applied', version: 2, migrations: [{ version: 1 }, { version: 2 }] });
    else expect(t).toMatchObject({ status: 'up-to-date', version: 2, migrations: [] });
  }
}

const LOST = /the connection to the database was lost: .*(terminating connection due to administrator command|Connection terminated)/;

test('a target whose backend is terminated mid-migration is failed; every other target is applied; a rerun applies it', async () => {
  const fleetA = slugs('ta-', 5);
  const fleetB = slugs('tb-', 5);
  const victim = schemaOf(fleetA[2]);
  await fleetDatabase(a(), 'term_a', fleetA, [fleetA[2]]);
  await fleetDatabase(b(), 'term_b', fleetB, []);
  const file = targetsFile('terminate.json', { a: { url: url(a(), 'term_a'), slugs: fleetA }, b: { url: url(b(), 'term_b'), slugs: fleetB } });
  const targets = [...fleetA, ...fleetB].map(schemaOf);

  const gate = await a().connect({ database: 'term_a' });
  let r: Awaited<ReturnType<typeof migrate>>;
  try {
    await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
    const run = { done: false };
    const running = migrate(file).finally(() => (run.done = true));
    const [blocked] = await waitFor('the victim waited on the gate', run, async () => {
      const rows = (await gate.query<{ pid: number; schema: string }>(GATED_BACKENDS, ['term_a'])).rows;
      return rows.length ? rows : undefined;
    });
    expect(blocked.schema).toBe(victim);
    await gate.query('SELECT pg_terminate_backend($1)', [blocked.pid]);
    await gate.query('SELECT pg_advisory_unlock($1)', [GATE]);
    r = await running;
  } finally {
    await gate.end();
  }

  expect(r.code).toBe(1);
  await expectCompleteRun(r, targets);
  const byTarget = Object.fromEntries(r.targets.map((t) => [t.target, t]));
  expect(byTarget[victim]).toMatchObject({ status: 'failed', version: 0, code: '57P01', error: expect.stringMatching(LOST) });
  for (const t of targets.filter((x) => x !== victim)) expect(byTarget[t]).toMatchObject({ status: 'applied', version: 2 });
  expect(r.summary).toMatchObject({ ok: false, counts: { applied: targets.length - 1, failed: 1 } });
  // Nothing of the victim's transaction committed.
  expect((await appliedVersions(a(), 'term_a'))[victim]).toBeUndefined();

  await expectRerunAppliesPending(file, [victim], targets);
  expect(await appliedVersions(a(), 'term_a')).toEqual(Object.fromEntries(fleetA.map((s) => [schemaOf(s), [1, 2]])));
});

test('a cluster restarted during a run of many targets: its busy targets fail, the run finishes every other target; a rerun applies the rest', async () => {
  const fleetA = slugs('ra-', 8);
  const fleetB = slugs('rb-', 8);
  await fleetDatabase(a(), 'restart_a', fleetA, 'all');
  await fleetDatabase(b(), 'restart_b', fleetB, []);
  const file = targetsFile('restart.json', { a: { url: url(a(), 'restart_a'), slugs: fleetA }, b: { url: url(b(), 'restart_b'), slugs: fleetB } });
  const targets = [...fleetA, ...fleetB].map(schemaOf);

  const gate: Client = await a().connect({ database: 'restart_a' });
  gate.on('error', () => undefined); // the test's own session ends with the restart
  await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
  const run = { done: false };
  const running = migrate(file).finally(() => (run.done = true));
  // Every connection the run may hold is busy on the gated cluster: the restart hits all of them.
  const blocked = await waitFor(`${CONCURRENCY} targets waited on the gate`, run, async () => {
    const rows = (await gate.query<{ pid: number; schema: string }>(GATED_BACKENDS, ['restart_a'])).rows;
    return rows.length === CONCURRENCY ? rows : undefined;
  });
  const busy = fleetA.map(schemaOf).filter((schema) => blocked.some((row) => row.schema === schema));
  expect(busy).toHaveLength(CONCURRENCY);
  a().restart();
  const r = await running;
  await gate.end().catch(() => undefined);

  expect(r.code).toBe(1);
  await expectCompleteRun(r, targets);
  const failed = r.targets.filter((t) => t.status === 'failed');
  // The busy targets lost their connection; the others connected afresh after the restart (or, had
  // they raced the restart's aftermath, failed with the connection error too).
  for (const schema of busy) expect(failed.map((t) => t.target)).toContain(schema);
  for (const t of failed) {
    expect(t.target).toMatch(/^tenant_ra_/);
    expect(t).toMatchObject({ version: 0, error: expect.stringMatching(/connection|terminat|shutting down|starting up/i) });
  }
  for (const t of r.targets.filter((x) => x.status !== 'failed')) expect(t).toMatchObject({ status: 'applied', version: 2 });
  for (const t of r.targets.filter((x) => busy.includes(x.target))) expect(t.error).toMatch(LOST);
  expect(r.summary.ok).toBe(false);

  await expectRerunAppliesPending(file, failed.map((t) => t.target), targets);
  expect(await appliedVersions(a(), 'restart_a')).toEqual(Object.fromEntries(fleetA.map((s) => [schemaOf(s), [1, 2]])));
  expect(await appliedVersions(b(), 'restart_b')).toEqual(Object.fromEntries(fleetB.map((s) => [schemaOf(s), [1, 2]])));
});
