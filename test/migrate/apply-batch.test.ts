import { migrateTargets } from '../../lib/migrate/runner';
import type { TargetResult } from '../../lib/migrate/result';
import { usePostgres } from '../support/postgres';
import { appliedVersions, bridgeFleet, set, slugs, tablesIn } from './helpers';

const pg = usePostgres();

const byTarget = (results: readonly TargetResult[]) => Object.fromEntries(results.map((r) => [r.target, r]));

/**
 * Many targets of one database travel in one message (lib/migrate/apply-batch.ts: one
 * connection, so the whole fleet is one batch); each must still be its own transaction, with its
 * own lock and state check, its failure its own.
 */
describe('batched migrations: several targets per round trip, each in its own transaction', () => {
  const migrations = set({
    '0001_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY);',
    '0002_notes.up.sql': 'CREATE TABLE notes (id int PRIMARY KEY);\nINSERT INTO notes VALUES (1);',
  });

  test('a failing, a locked, an already migrated and a missing schema in one batch: each its own result, the others applied', async () => {
    const fleet = slugs('batch-', 12);
    const { targets } = await bridgeFleet(pg(), 'batch_fleet', fleet);
    // 004: a conflicting table (fails in its second file); 009: dropped after the fleet was made (missing).
    await pg().query('CREATE TABLE tenant_batch_004.notes (id int)', [], 'batch_fleet');
    await pg().query('DROP SCHEMA tenant_batch_009', [], 'batch_fleet');
    // 006: already migrated (up to date from the state read: no transaction).
    await migrateTargets({ targets: [targets[5]], migrations });
    // 008: its lock held by another session in an open transaction.
    const holder = await pg().connect({ database: 'batch_fleet' });
    try {
      await holder.query("INSERT INTO tenancy.platform_locks (name) VALUES ('migrate:tenant_batch_008') ON CONFLICT DO NOTHING");
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM tenancy.platform_locks WHERE name = 'migrate:tenant_batch_008' FOR UPDATE");
      const run = await migrateTargets({ targets, migrations, concurrency: 1, lockRetries: 0 });
      const r = byTarget(run.results);
      expect(r.tenant_batch_004).toMatchObject({ status: 'failed', code: '42P07', migrations: [] });
      expect(r.tenant_batch_004.error).toMatch(/^0002_notes\.up\.sql: relation "notes" already exists/);
      expect(r.tenant_batch_004.file).toMatch(/0002_notes\.up\.sql$/);
      expect(r.tenant_batch_006).toMatchObject({ status: 'up-to-date', version: 2 });
      expect(r.tenant_batch_008).toMatchObject({ status: 'skipped-locked' });
      expect(r.tenant_batch_009).toMatchObject({ status: 'failed', code: '3F000' });
      expect(r.tenant_batch_009.error).toMatch(/schema "tenant_batch_009" does not exist/);
      const others = run.results.filter((x) => !['tenant_batch_004', 'tenant_batch_006', 'tenant_batch_008', 'tenant_batch_009'].includes(x.target));
      expect(others).toHaveLength(8);
      for (const x of others) expect([x.target, x.status, x.version, x.migrations.map((m) => m.version)]).toEqual([x.target, 'applied', 2, [1, 2]]);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    // The failed target's transaction rolled back as a whole (its first file too); the locked one was never touched.
    const state = await appliedVersions(pg(), 'batch_fleet');
    expect(state.tenant_batch_004).toBeUndefined();
    expect(state.tenant_batch_008).toBeUndefined();
    expect(await tablesIn(pg(), 'batch_fleet', 'tenant_batch_004')).toEqual(['notes']);
    expect(await tablesIn(pg(), 'batch_fleet', 'tenant_batch_008')).toEqual([]);
    expect(await tablesIn(pg(), 'batch_fleet', 'tenant_batch_012')).toEqual(['items', 'notes']);

    // Idempotent: after the fix, a rerun applies exactly the two that were left, once.
    await pg().query('DROP TABLE tenant_batch_004.notes', [], 'batch_fleet');
    const rerun = await migrateTargets({ targets: targets.filter((t) => t.name !== 'tenant_batch_009'), migrations, concurrency: 1 });
    expect(rerun.summary.counts).toMatchObject({ applied: 2, 'up-to-date': 9, failed: 0 });
    expect(byTarget(rerun.results).tenant_batch_004.status).toBe('applied');
    expect(await pg().query('SELECT count(*)::int AS n FROM tenancy.schema_migrations', [], 'batch_fleet')).toEqual([{ n: 22 }]);
  });

  test('a state changed after the read: the guard aborts that target alone, the rest of the batch goes on', async () => {
    const { connection, targets } = await bridgeFleet(pg(), 'stale_batch', slugs('stale-', 6));
    const v1 = set({ '0001_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY);' });
    // Target 3 was migrated by another runner after this run read the states (it believes 3 is at version 0).
    await migrateTargets({ targets: [targets[2]], migrations: v1 });
    const { Pool } = await import('pg');
    const { applyBatch } = await import('../../lib/migrate/apply-batch');
    const pool = new Pool({ ...connection, max: 1 });
    try {
      const items = targets.map((target) => ({ target, expected: [], steps: v1.migrations.map((m) => ({ migration: m, direction: 'up' as const, script: m.up })), createSchema: false }));
      const results = await applyBatch(pool, items, { lockTimeoutMs: 1000, statementTimeoutMs: 0, ensureStateTable: async () => undefined });
      expect(results.map((x) => [x.item.target.name, x.outcome.status])).toEqual([
        ['tenant_stale_001', 'applied'],
        ['tenant_stale_002', 'applied'],
        ['tenant_stale_003', 'run-alone'], // the runner re-reads it under its lock: up to date
        ['tenant_stale_004', 'applied'],
        ['tenant_stale_005', 'applied'],
        ['tenant_stale_006', 'applied'],
      ]);
    } finally {
      await pool.end();
    }
    const state = await appliedVersions(pg(), 'stale_batch');
    expect(Object.values(state)).toEqual(Array(6).fill([1]));
    expect(await pg().query('SELECT count(*)::int AS n FROM tenancy.schema_migrations', [], 'stale_batch')).toEqual([{ n: 6 }]);
  });

  test('a migration that does not parse: every target reports it, naming the file, and nothing commits', async () => {
    const { targets } = await bridgeFleet(pg(), 'syntax_batch', slugs('syntax-', 5));
    const broken = set({ '0001_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY);', '0002_bad.up.sql': 'CREATE TABLE bad (id int' });
    const run = await migrateTargets({ targets, migrations: broken, concurrency: 1 });
    for (const x of run.results) {
      expect(x).toMatchObject({ status: 'failed', code: '42601' });
      expect(x.error).toMatch(/^0002_bad\.up\.sql: syntax error/);
    }
    expect(await appliedVersions(pg(), 'syntax_batch')).toEqual({});
    for (const t of targets) expect(await tablesIn(pg(), 'syntax_batch', t.schema)).toEqual([]);
  });
  test('the guard function is the migrator\'s alone: a tenant role cannot call it, even given USAGE on schema tenancy', async () => {
    const { targets } = await bridgeFleet(pg(), 'guard_acl', slugs('acl-', 1));
    await migrateTargets({ targets, migrations });
    await pg().createRole('tenant_acl_role', { password: 'acl-secret' });
    await pg().query('GRANT CONNECT ON DATABASE guard_acl TO tenant_acl_role', [], 'guard_acl');
    const call = "SELECT tenancy.migrate_guard_v1('migrate:tenant_acl_001', 'tenant_acl_001', '', 'tenant_acl_001', false)";
    const tenant = await pg().connect({ user: 'tenant_acl_role', password: 'acl-secret', database: 'guard_acl' });
    try {
      await expect(tenant.query(call)).rejects.toMatchObject({ code: '42501', message: 'permission denied for schema tenancy' });
      await pg().query('GRANT USAGE ON SCHEMA tenancy TO tenant_acl_role', [], 'guard_acl'); // a misconfiguration: still no EXECUTE
      await expect(tenant.query(call)).rejects.toMatchObject({ code: '42501', message: 'permission denied for function migrate_guard_v1' });
    } finally {
      await tenant.end();
    }
    expect(await pg().query("SELECT count(*)::int AS n FROM tenancy.platform_locks WHERE holder_pid IS NOT NULL", [], 'guard_acl')).toEqual([{ n: 0 }]);
  });
});
