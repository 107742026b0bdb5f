import { migrateTargets } from '../../lib/migrate/runner';
import { bridgeTarget, poolTarget, siloTarget, TargetError, type MigrationTarget } from '../../lib/migrate/targets';
import type { TargetResult } from '../../lib/migrate/result';
import { usePostgres } from '../support/postgres';
import { appliedVersions, bridgeFleet, repoSets, set, slugs, tablesIn } from './helpers';

const pg = usePostgres();

const byTarget = (results: readonly TargetResult[]) => Object.fromEntries(results.map((r) => [r.target, r]));

describe('migrateTargets against PostgreSQL 15', () => {
  test('one broken tenant out of many fails alone; a rerun after the fix applies only what is pending', async () => {
    const fleet = slugs('broken-', 12);
    const { targets } = await bridgeFleet(pg(), 'broken_fleet', fleet);
    // tenant_broken_005 already has a "tasks" table: 0002_tasks fails there, and only there.
    await pg().query('CREATE TABLE tenant_broken_005.tasks (id int)', [], 'broken_fleet');
    await pg().createDatabase('tenant_silo_one');
    await pg().query('CREATE SCHEMA tenant_silo_one', [], 'tenant_silo_one');
    await pg().createDatabase('pool_db');
    const all: MigrationTarget[] = [
      ...targets,
      siloTarget({ slug: 'silo-one', connection: pg().adminConfig('tenant_silo_one') }),
      poolTarget({ connection: pg().adminConfig('pool_db') }),
    ];
    const seen: string[] = [];
    const run = await migrateTargets({ targets: all, migrations: repoSets(), concurrency: 4, onResult: (r) => seen.push(r.target) });

    const results = byTarget(run.results);
    expect(seen.sort()).toEqual(all.map((t) => t.name).sort());
    const broken = results.tenant_broken_005;
    expect(broken.status).toBe('failed');
    expect(broken.code).toBe('42P07');
    expect(broken.error).toMatch(/^0002_tasks\.up\.sql: relation "tasks" already exists/);
    expect(broken.file).toMatch(/0002_tasks\.up\.sql$/);
    for (const r of run.results.filter((x) => x.target !== 'tenant_broken_005')) {
      expect([r.target, r.status, r.version]).toEqual([r.target, 'applied', r.kind === 'pool' ? 1 : 2]);
    }
    expect(run.summary.counts).toMatchObject({ applied: 13, failed: 1 });
    expect(run.summary.ok).toBe(false);
    // The failed target's transaction was rolled back as a whole (0001 and 0002 run together).
    const state = await appliedVersions(pg(), 'broken_fleet');
    expect(state.tenant_broken_005).toBeUndefined();
    expect(state.tenant_broken_004).toEqual([1, 2]);
    expect(await tablesIn(pg(), 'broken_fleet', 'tenant_broken_005')).toEqual(['tasks']);
    expect(await tablesIn(pg(), 'broken_fleet', 'tenant_broken_004')).toEqual(['projects', 'tasks']);
    expect(await appliedVersions(pg(), 'tenant_silo_one')).toEqual({ tenant_silo_one: [1, 2] });
    expect(await appliedVersions(pg(), 'pool_db')).toEqual({ pool: [1] });
    expect(await tablesIn(pg(), 'pool_db', 'pool')).toEqual(['projects', 'tasks']);
    // Pool tables get row-level security (lib/pool enforcePoolRls) in the migration's transaction.
    expect(await pg().query(`SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'pool'::regnamespace AND relkind = 'r' ORDER BY 1`, [], 'pool_db')).toEqual([
      { relname: 'projects', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'tasks', relrowsecurity: true, relforcerowsecurity: true },
    ]);
    expect(await pg().query(`SELECT count(*)::int AS n FROM pg_policies WHERE schemaname = 'pool' AND policyname = 'tenant_isolation'`, [], 'pool_db')).toEqual([{ n: 2 }]);

    // Fix the tenant and rerun: it alone is applied, everything else is up to date without a transaction.
    await pg().query('DROP TABLE tenant_broken_005.tasks', [], 'broken_fleet');
    // Up-to-date targets are settled by the one state read: never locked, no transaction. Another
    // session holds the lock of one of them, which would make any lock attempt report skipped-locked.
    const holder = await pg().connect({ database: 'broken_fleet' });
    let rerun;
    try {
      await holdTargetLock(holder, 'tenant_broken_004');
      rerun = await migrateTargets({ targets: all, migrations: repoSets(), concurrency: 4, lockRetries: 0 });
    } finally {
      await holder.end();
    }
    const again = byTarget(rerun.results);
    expect(again.tenant_broken_005).toMatchObject({ status: 'applied', version: 2, attempts: 1, migrations: [{ version: 1, direction: 'up' }, { version: 2, direction: 'up' }] });
    expect(again.tenant_broken_004).toMatchObject({ status: 'up-to-date', attempts: 0 });
    expect(rerun.results.filter((r) => r.status === 'up-to-date')).toHaveLength(all.length - 1);
    expect(rerun.summary.ok).toBe(true);
    expect((await appliedVersions(pg(), 'broken_fleet')).tenant_broken_005).toEqual([1, 2]);
  });

  test('two runners started together apply each migration exactly once', async () => {
    const fleet = slugs('race-', 30);
    const { targets } = await bridgeFleet(pg(), 'race_fleet', fleet);
    await pg().query('CREATE TABLE public.side_effects (schema text NOT NULL, version int NOT NULL)', [], 'race_fleet');
    const migrations = set({
      '0001_first.up.sql': "INSERT INTO public.side_effects VALUES (current_schema(), 1);\nCREATE TABLE first (id int PRIMARY KEY);",
      '0002_second.up.sql': "INSERT INTO public.side_effects VALUES (current_schema(), 2);\nALTER TABLE first ADD COLUMN note text;",
    });
    const options = { targets, migrations, concurrency: 6, lockRetryDelayMs: 5 };
    const [a, b] = await Promise.all([migrateTargets(options), migrateTargets(options)]);

    const effects = await pg().query<{ schema: string; version: number; n: string }>('SELECT schema, version, count(*) AS n FROM public.side_effects GROUP BY 1, 2', [], 'race_fleet');
    expect(effects).toHaveLength(60);
    expect(effects.every((e) => e.n === '1')).toBe(true);
    const state = await pg().query<{ n: string }>('SELECT count(*) AS n FROM tenancy.schema_migrations', [], 'race_fleet');
    expect(state[0].n).toBe('60');
    for (let i = 0; i < targets.length; i++) {
      const pair = [a.results[i].status, b.results[i].status];
      expect(pair.filter((s) => s === 'applied')).toHaveLength(1);
      expect(pair.every((s) => ['applied', 'up-to-date', 'skipped-locked'].includes(s))).toBe(true);
    }
  });

  test('an edited migration is reported as edited and nothing runs for that target', async () => {
    const { targets } = await bridgeFleet(pg(), 'edited_fleet', slugs('edit-', 3));
    const v1 = { '0001_a.up.sql': 'CREATE TABLE a (id int);' };
    await migrateTargets({ targets, migrations: set(v1) });
    const edited = set({ '0001_a.up.sql': 'CREATE TABLE a (id bigint);', '0002_b.up.sql': 'CREATE TABLE b (id int);' });
    const run = await migrateTargets({ targets, migrations: edited });
    for (const r of run.results) {
      expect(r).toMatchObject({ status: 'edited', version: 1, edited: [{ version: 1, name: 'a' }], migrations: [] });
    }
    expect(run.summary.ok).toBe(false);
    expect(await tablesIn(pg(), 'edited_fleet', 'tenant_edit_001')).toEqual(['a']);
    expect((await appliedVersions(pg(), 'edited_fleet')).tenant_edit_001).toEqual([1]);
  });

  test('a tenant whose table is locked by another session fails with the lock timeout; the others apply', async () => {
    const { targets } = await bridgeFleet(pg(), 'locked_fleet', slugs('lock-', 6));
    const v1 = { '0001_projects.up.sql': 'CREATE TABLE projects (id int PRIMARY KEY);' };
    await migrateTargets({ targets, migrations: set(v1) });
    const v2 = set({ ...v1, '0002_projects_name.up.sql': 'ALTER TABLE projects ADD COLUMN name text;' });

    const holder = await pg().connect({ database: 'locked_fleet' });
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM tenant_lock_003.projects'); // ACCESS SHARE until ROLLBACK: ALTER TABLE must wait
      const run = await migrateTargets({ targets, migrations: v2, lockTimeoutMs: 300 });
      const results = byTarget(run.results);
      expect(results.tenant_lock_003).toMatchObject({ status: 'failed', code: '55P03', version: 1 });
      expect(results.tenant_lock_003.error).toMatch(/^0002_projects_name\.up\.sql: canceling statement due to lock timeout/);
      expect(run.results.filter((r) => r.status === 'applied').map((r) => r.target)).toEqual(targets.map((t) => t.name).filter((n) => n !== 'tenant_lock_003'));
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const rerun = await migrateTargets({ targets, migrations: v2 });
    expect(byTarget(rerun.results).tenant_lock_003).toMatchObject({ status: 'applied', version: 2, migrations: [{ version: 2 }] });
    expect(rerun.results.filter((r) => r.status === 'up-to-date')).toHaveLength(5);
  });

  test('a target locked by another runner is retried, then reported skipped-locked', async () => {
    const { targets } = await bridgeFleet(pg(), 'advisory_fleet', slugs('adv-', 3));
    const migrations = set({ '0001_a.up.sql': 'CREATE TABLE a (id int);' });
    const other = await pg().connect({ database: 'advisory_fleet' });
    try {
      await holdTargetLock(other, 'tenant_adv_002');
      const run = await migrateTargets({ targets, migrations, lockRetries: 2, lockRetryDelayMs: 1 });
      const results = byTarget(run.results);
      expect(results.tenant_adv_002).toMatchObject({ status: 'skipped-locked', attempts: 3, version: 0 });
      expect(results.tenant_adv_001.status).toBe('applied');
      expect(results.tenant_adv_003.status).toBe('applied');
      expect(run.summary.ok).toBe(false);
    } finally {
      await other.end();
    }
    expect(await tablesIn(pg(), 'advisory_fleet', 'tenant_adv_002')).toEqual([]);
  });

  test('no-transaction migrations run statement by statement under a session lock and are recorded after success', async () => {
    const { targets } = await bridgeFleet(pg(), 'notx_fleet', slugs('notx-', 3));
    const files = {
      '0001_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY, sku text, name text);',
      '0002_indexes.up.sql': '-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_sku ON items (sku);\n/* ; in a comment */\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_name ON items (name);\n',
      '0003_more.up.sql': "ALTER TABLE items ADD COLUMN note text DEFAULT 'a;b';",
    };
    const run = await migrateTargets({ targets, migrations: set(files) });
    for (const r of run.results) expect(r).toMatchObject({ status: 'applied', version: 3, migrations: [{ version: 1 }, { version: 2 }, { version: 3 }] });
    const indexes = await pg().query<{ indexrelid: string; indisvalid: boolean }>(
      `SELECT indexrelid::regclass::text AS indexrelid, indisvalid FROM pg_index WHERE indrelid = 'tenant_notx_002.items'::regclass ORDER BY 1`, [], 'notx_fleet');
    expect(indexes).toEqual([
      { indexrelid: 'tenant_notx_002.items_name', indisvalid: true },
      { indexrelid: 'tenant_notx_002.items_pkey', indisvalid: true },
      { indexrelid: 'tenant_notx_002.items_sku', indisvalid: true },
    ]);
    expect((await appliedVersions(pg(), 'notx_fleet')).tenant_notx_002).toEqual([1, 2, 3]);
    // No session hold is left behind by the session-level path.
    expect(await pg().query('SELECT name FROM tenancy.platform_locks WHERE holder_pid IS NOT NULL', [], 'notx_fleet')).toEqual([]);

    // A failure in the middle: what ran stays (it was outside a transaction), nothing is recorded, the rerun finishes it.
    const failing = set({ ...files, '0004_broken.up.sql': '-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_note ON items (note);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_bad ON items (no_such_column);\n' });
    const bad = await migrateTargets({ targets, migrations: failing });
    for (const r of bad.results) {
      expect(r).toMatchObject({ status: 'failed', code: '42703', version: 3, migrations: [] });
      expect(r.error).toMatch(/^0004_broken\.up\.sql: column "no_such_column" does not exist/);
    }
    expect((await appliedVersions(pg(), 'notx_fleet')).tenant_notx_001).toEqual([1, 2, 3]);
    expect(await pg().query("SELECT 1 FROM pg_indexes WHERE schemaname = 'tenant_notx_001' AND indexname = 'items_note'", [], 'notx_fleet')).toHaveLength(1);
    const fixedFiles = { ...files, '0004_broken.up.sql': '-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_note ON items (note);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_bad ON items (name, note);\n' };
    const fixed = set(fixedFiles);
    // The file changed before it was ever recorded, so it is pending, not edited.
    const rerun = await migrateTargets({ targets, migrations: fixed });
    for (const r of rerun.results) expect(r).toMatchObject({ status: 'applied', version: 4, migrations: [{ version: 4 }] });

    // The same statement in a transactional file cannot run: which is why the directive exists.
    const inTx = await migrateTargets({ targets: targets.slice(0, 1), migrations: set({ ...fixedFiles, '0005_tx.up.sql': 'CREATE INDEX CONCURRENTLY items_x ON items (sku, name);' }) });
    expect(inTx.results[0]).toMatchObject({ status: 'failed', code: '25001', version: 4 });
    expect(inTx.results[0].error).toMatch(/^0005_tx\.up\.sql: CREATE INDEX CONCURRENTLY cannot run inside a transaction block/);
  });

  test('down migrations revert to --to, and a missing .down.sql refuses the run before anything changes', async () => {
    const { targets } = await bridgeFleet(pg(), 'down_fleet', slugs('down-', 4));
    await migrateTargets({ targets, migrations: repoSets() });
    const down1 = await migrateTargets({ targets, migrations: repoSets(), direction: 'down', toVersion: 1 });
    for (const r of down1.results) expect(r).toMatchObject({ status: 'applied', direction: 'down', version: 1, migrations: [{ version: 2, direction: 'down' }] });
    expect(await tablesIn(pg(), 'down_fleet', 'tenant_down_001')).toEqual(['projects']);
    expect((await appliedVersions(pg(), 'down_fleet')).tenant_down_001).toEqual([1]);
    const noop = await migrateTargets({ targets, migrations: repoSets(), direction: 'down', toVersion: 1 });
    expect(noop.results.every((r) => r.status === 'up-to-date')).toBe(true);

    const withoutDownFiles = {
      '0001_projects.up.sql': 'CREATE TABLE projects (id uuid PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());',
      '0001_projects.down.sql': 'DROP TABLE projects;',
      '0002_x.up.sql': 'CREATE TABLE x (id int);',
    };
    const withoutDown = set(withoutDownFiles);
    const { targets: other } = await bridgeFleet(pg(), 'down_fleet2', slugs('dtwo-', 2));
    await migrateTargets({ targets: other, migrations: withoutDown });
    await expect(migrateTargets({ targets: other, migrations: withoutDown, direction: 'down', toVersion: 0 })).rejects.toThrow(/cannot migrate down to 0: missing .*0002_x\.down\.sql/);
    expect((await appliedVersions(pg(), 'down_fleet2')).tenant_dtwo_001).toEqual([1, 2]);
    // With the down file (the up checksum is unchanged) it reverts, newest first.
    const partial = await migrateTargets({ targets: other, migrations: set({ ...withoutDownFiles, '0002_x.down.sql': 'DROP TABLE x;' }), direction: 'down', toVersion: 0 });
    for (const r of partial.results) expect(r).toMatchObject({ status: 'applied', version: 0, migrations: [{ version: 2, direction: 'down' }, { version: 1, direction: 'down' }] });
    expect(await tablesIn(pg(), 'down_fleet2', 'tenant_dtwo_001')).toEqual([]);
    expect(await appliedVersions(pg(), 'down_fleet2')).toEqual({});
  });

  test('dry run reports what would be applied and changes nothing', async () => {
    const { targets } = await bridgeFleet(pg(), 'dry_fleet', slugs('dry-', 3));
    const run = await migrateTargets({ targets, migrations: repoSets(), dryRun: true });
    for (const r of run.results) expect(r).toMatchObject({ status: 'pending', version: 0, migrations: [{ version: 1, name: 'projects' }, { version: 2, name: 'tasks' }] });
    expect(run.summary.ok).toBe(true);
    expect(await pg().query(`SELECT to_regnamespace('tenancy') AS n`, [], 'dry_fleet')).toEqual([{ n: null }]);
    expect(await tablesIn(pg(), 'dry_fleet', 'tenant_dry_001')).toEqual([]);

    await migrateTargets({ targets, migrations: set({ '0001_projects.up.sql': 'CREATE TABLE projects (id int);' }) });
    const before = await pg().query('SELECT * FROM tenancy.schema_migrations ORDER BY target', [], 'dry_fleet');
    const second = await migrateTargets({ targets, migrations: set({ '0001_projects.up.sql': 'CREATE TABLE projects (id int);', '0002_more.up.sql': 'CREATE TABLE more (id int);' }), dryRun: true });
    for (const r of second.results) expect(r).toMatchObject({ status: 'pending', version: 1, migrations: [{ version: 2 }] });
    expect(await pg().query('SELECT * FROM tenancy.schema_migrations ORDER BY target', [], 'dry_fleet')).toEqual(before);
    expect(await tablesIn(pg(), 'dry_fleet', 'tenant_dry_001')).toEqual(['projects']);
  });

  test('identifiers are always quoted: hostile schema names create exactly that schema, hostile slugs are refused', async () => {
    await pg().createDatabase('quoting');
    await pg().query('CREATE SCHEMA victim; CREATE TABLE victim.keep (id int)', [], 'quoting');
    const connection = pg().adminConfig('quoting');
    const hostile = `evil"; DROP SCHEMA victim CASCADE; --`;
    const dollar = `we'ird$x$ $$`;
    // A pool table has tenant_id (or is declared shared): the runner refuses anything else.
    const migrations = set({ '0001_t.up.sql': 'CREATE TABLE t (tenant_id uuid NOT NULL, id int);' });
    const run = await migrateTargets({
      targets: [poolTarget({ connection, name: 'pool-a', schema: hostile }), poolTarget({ connection, name: 'pool-b', schema: dollar })],
      migrations,
    });
    expect(run.results.map((r) => r.status)).toEqual(['applied', 'applied']);
    expect(await tablesIn(pg(), 'quoting', hostile)).toEqual(['t']);
    expect(await tablesIn(pg(), 'quoting', dollar)).toEqual(['t']);
    expect(await tablesIn(pg(), 'quoting', 'victim')).toEqual(['keep']);

    const bad = (t: Partial<MigrationTarget>) => migrateTargets({ targets: [{ kind: 'bridge', name: 'tenant_acme', schema: 'tenant_acme', slug: 'acme', connection, ...t } as MigrationTarget], migrations });
    await expect(bad({ slug: 'acme"; DROP SCHEMA victim; --' })).rejects.toThrow(TargetError);
    await expect(bad({ slug: 'Acme' })).rejects.toThrow(/not a safe tenant slug/);
    await expect(bad({ schema: 'victim' })).rejects.toThrow(/has name and schema "tenant_acme"/);
    await expect(bad({ name: "x'); DROP SCHEMA victim; --" })).rejects.toThrow(/name must match/);
    await expect(bad({ role: 'x'.repeat(64) })).rejects.toThrow(/longer than 63 bytes/);
    expect(() => bridgeTarget({ slug: 'a;b', connection })).toThrow(/not a safe tenant slug/);
    expect(await tablesIn(pg(), 'quoting', 'victim')).toEqual(['keep']);
  });

  test('a missing tenant schema or an unreachable database fails its targets only', async () => {
    const { connection, targets } = await bridgeFleet(pg(), 'missing_fleet', slugs('miss-', 2));
    const ghost = bridgeTarget({ slug: 'ghost', connection });
    const unreachable = siloTarget({ slug: 'nowhere', connection: { ...pg().adminConfig('tenant_nowhere') } });
    const run = await migrateTargets({ targets: [...targets, ghost, unreachable], migrations: repoSets() });
    const results = byTarget(run.results);
    expect(results.tenant_ghost).toMatchObject({ status: 'failed', code: '3F000' });
    expect(results.tenant_ghost.error).toMatch(/schema "tenant_ghost" does not exist/);
    expect(results.tenant_nowhere).toMatchObject({ status: 'failed', code: '3D000' });
    expect(results.tenant_nowhere.error).toMatch(/database "tenant_nowhere" does not exist/);
    expect(results.tenant_miss_001.status).toBe('applied');
    expect(results.tenant_miss_002.status).toBe('applied');
    expect(await pg().query(`SELECT to_regnamespace('tenant_ghost') AS n`, [], 'missing_fleet')).toEqual([{ n: null }]);
  });

  test('a stale state read is caught by the server-side guard: the target is re-read under its lock', async () => {
    const { connection, targets } = await bridgeFleet(pg(), 'stale_fleet', slugs('stale-', 1));
    const v1 = set({ '0001_a.up.sql': "INSERT INTO public.effects VALUES (current_schema()); CREATE TABLE a (id int);" });
    await pg().query('CREATE TABLE public.effects (schema text)', [], 'stale_fleet');
    await migrateTargets({ targets, migrations: v1 });
    const { Pool } = await import('pg');
    const { applyTarget } = await import('../../lib/migrate/apply-target');
    const pool = new Pool({ ...connection, max: 1 });
    try {
      const options = { direction: 'up' as const, lockTimeoutMs: 1000, statementTimeoutMs: 0, ensureStateTable: async () => undefined };
      // Believed never migrated, though it is: the guard aborts the optimistic transaction, the re-read finds nothing to do.
      expect(await applyTarget(pool, targets[0], v1, { ...options, expected: [] })).toEqual({ status: 'up-to-date', version: 1 });
      const v2 = set({ ...{ '0001_a.up.sql': "INSERT INTO public.effects VALUES (current_schema()); CREATE TABLE a (id int);" }, '0002_b.up.sql': 'CREATE TABLE b (id int);' });
      const outcome = await applyTarget(pool, targets[0], v2, { ...options, expected: [] });
      expect(outcome).toMatchObject({ status: 'applied', version: 2 });
      expect(outcome.status === 'applied' && outcome.steps.map((x) => x.migration.version)).toEqual([2]);
    } finally {
      await pool.end();
    }
    expect(await pg().query('SELECT count(*)::int AS n FROM public.effects', [], 'stale_fleet')).toEqual([{ n: 1 }]);
    expect((await appliedVersions(pg(), 'stale_fleet')).tenant_stale_001).toEqual([1, 2]);
  });

  test('afterApply runs in the transaction of the last migration of a changed target', async () => {
    const { targets } = await bridgeFleet(pg(), 'hook_fleet', slugs('hook-', 3));
    const migrations = set({ '0001_a.up.sql': 'CREATE TABLE a (id int);' });
    const calls: string[] = [];
    const run = await migrateTargets({
      targets,
      migrations,
      afterApply: async (client, target) => {
        calls.push(target.name);
        const { rows } = await client.query('SELECT count(*)::int AS n FROM a');
        expect(rows[0].n).toBe(0);
        if (target.name === 'tenant_hook_002') throw new Error('hook refused');
      },
    });
    expect(calls.sort()).toEqual(['tenant_hook_001', 'tenant_hook_002', 'tenant_hook_003']);
    expect(byTarget(run.results).tenant_hook_002).toMatchObject({ status: 'failed', error: 'hook refused' });
    expect(await tablesIn(pg(), 'hook_fleet', 'tenant_hook_002')).toEqual([]); // rolled back with the migration
    expect(await tablesIn(pg(), 'hook_fleet', 'tenant_hook_001')).toEqual(['a']);
    const rerun = await migrateTargets({ targets, migrations, afterApply: async () => void calls.push('again') });
    expect(calls.filter((c) => c === 'again')).toHaveLength(1); // only the target that changed
    expect(rerun.summary.counts).toMatchObject({ applied: 1, 'up-to-date': 2 });
  });
});


/** Holds a target's platform lock as another runner would: the row locked in an open transaction (the caller ends the client). */
async function holdTargetLock(client: { query: (sql: string) => Promise<unknown> }, target: string): Promise<void> {
  const { prepareLock } = await import('../../lib/db/platform-locks');
  const { targetLockName } = await import('../../lib/migrate/state');
  await prepareLock(client as never, targetLockName(target));
  await client.query('BEGIN');
  await client.query(`SELECT 1 FROM tenancy.platform_locks WHERE name = '${targetLockName(target)}' FOR UPDATE`);
}
