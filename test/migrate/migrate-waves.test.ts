import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/tenancy';
import { assignWaves } from '../../lib/fleet/waves';
import { FixtureProject, validTenant } from '../support/fixture-project';
import { usePostgres } from '../support/postgres';
import { appliedVersions, slugs, tablesIn } from './helpers';

/**
 * `tenancy migrate --waves`: the same waves as a fleet rollout (lib/fleet/waves.ts) — canary
 * tenants first, then cumulative percentages — and a stop when a wave's failures exceed
 * --max-failures (default 0), the later waves reported "not started", a non-zero exit.
 */
const pg = usePostgres();
let work: string;
let migrationsDir: string;
const DB = 'waves_fleet';
const fleet = slugs('wave-', 20);
const nameOf = (slug: string) => `tenant_${slug.replace(/-/g, '_')}`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tenancy-migrate-waves-'));
  // A migration set on disk (the CLI reads directories): tenant/0001_items.
  migrationsDir = join(work, 'migrations');
  mkdirSync(join(migrationsDir, 'tenant'), { recursive: true });
  writeFileSync(join(migrationsDir, 'tenant', '0001_items.up.sql'), 'CREATE TABLE items (id int PRIMARY KEY);\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
  jest.restoreAllMocks();
});

async function tenancy(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; lines: any[] }> {
  let stdout = '';
  let stderr = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => ((stdout += String(chunk)), true));
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => ((stderr += String(chunk)), true));
  try {
    const code = await main(argv);
    return { code, stdout, stderr, lines: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) };
  } finally {
    jest.restoreAllMocks();
    process.exitCode = undefined;
  }
}

async function freshFleet(database: string): Promise<string> {
  await pg().createDatabase(database);
  await pg().query(fleet.map((s) => `CREATE SCHEMA ${nameOf(s)};`).join(''), [], database);
  const file = join(work, `${database}.json`);
  const connection = `postgres://postgres@/${database}?host=${encodeURIComponent(pg().socketDir)}&port=${pg().port}`;
  writeFileSync(file, JSON.stringify({ connections: { bridge: connection }, targets: fleet.map((slug) => ({ kind: 'bridge', slug, connection: 'bridge' })) }));
  return file;
}

describe('tenancy migrate --waves', () => {
  test('a failure in the second wave stops the run before the third; a rerun after the fix finishes it', async () => {
    const file = await freshFleet(DB);
    // The waves the runner will use (the pure function, keyed by target name): canary wave-07, then 10%, 50%, 100%.
    const waves = assignWaves(fleet.map(nameOf), { canary: [nameOf('wave-007')], percents: [10, 50, 100] });
    expect(waves.map((w) => w.name)).toEqual(['canary', '10%', '50%', '100%']);
    const second = waves[1].keys;
    const later = [...waves[2].keys, ...waves[3].keys];
    // One schema of the second wave already has a conflicting "items" table.
    const broken = second[0];
    await pg().query(`CREATE TABLE ${broken}.items (id int)`, [], DB);

    const run = await tenancy('migrate', '--targets', file, '--migrations', migrationsDir, '--json', '--waves', '10,50,100', '--canary', 'wave-007');
    expect(run.code).toBe(1);
    const targets = Object.fromEntries(run.lines.filter((l) => l.type === 'target').map((l) => [l.target, l]));
    expect(targets[nameOf('wave-007')].status).toBe('applied');
    expect(targets[broken]).toMatchObject({ status: 'failed', code: '42P07' });
    for (const t of second.slice(1)) expect(targets[t].status).toBe('applied');
    for (const t of later) expect(targets[t]).toMatchObject({ status: 'not-started', migrations: [{ version: 1, name: 'items', direction: 'up' }] });
    const waveLines = run.lines.filter((l) => l.type === 'wave' && l.status !== 'running');
    expect(waveLines.map((w) => [w.name, w.status, w.failures])).toEqual([['canary', 'finished', 0], ['10%', 'stopped', 1], ['50%', 'not-started', 0], ['100%', 'not-started', 0]]);
    const summary = run.lines.at(-1);
    expect(summary).toMatchObject({ type: 'summary', ok: false, stopped: { wave: '10%', failures: 1, maxFailures: '0' } });
    expect(summary.counts).toMatchObject({ applied: second.length, failed: 1, 'not-started': later.length });
    // The report names the failed tenant and every tenant not started.
    const slugOf = (name: string) => name.replace(/^tenant_/, '').replace(/_/g, '-');
    expect(run.stderr).toContain(`stopped after wave 10%: 1 failed (${slugOf(broken)})`);
    for (const t of later) expect(run.stderr).toContain(slugOf(t));
    // Nothing ran in the later waves: no table, no state.
    const state = await appliedVersions(pg(), DB);
    for (const t of later) {
      expect(state[t]).toBeUndefined();
      expect(await tablesIn(pg(), DB, t)).toEqual([]);
    }

    // Fix and rerun: the same waves, every target migrated once (the earlier ones are up to date).
    await pg().query(`DROP TABLE ${broken}.items`, [], DB);
    const rerun = await tenancy('migrate', '--targets', file, '--migrations', migrationsDir, '--json', '--waves', '10,50,100', '--canary', 'wave-007');
    expect(rerun.code).toBe(0);
    const after = rerun.lines.at(-1);
    expect(after).toMatchObject({ ok: true, stopped: null, counts: { applied: 1 + later.length, 'up-to-date': 1 + second.length - 1, 'not-started': 0 } });
    expect(Object.values(await appliedVersions(pg(), DB))).toEqual(Array(20).fill([1]));
  });

  test('--max-failures lets a wave tolerate failures; a percentage counts against the wave', async () => {
    const file = await freshFleet('waves_tolerant');
    const waves = assignWaves(fleet.map(nameOf), { canary: [], percents: [50, 100] });
    await pg().query(`CREATE TABLE ${waves[0].keys[0]}.items (id int)`, [], 'waves_tolerant');
    // 1 failure of 10 in the first wave: "10%" tolerates it, the second wave runs; the exit is still 1 (a target failed).
    const run = await tenancy('migrate', '--targets', file, '--migrations', migrationsDir, '--json', '--waves', '50,100', '--max-failures', '10%');
    expect(run.code).toBe(1);
    expect(run.lines.at(-1)).toMatchObject({ stopped: null, counts: { applied: 19, failed: 1, 'not-started': 0 } });
  });

  test('canary tenants marked in the registry go first', async () => {
    const file = await freshFleet('waves_registry');
    const project = FixtureProject.empty();
    try {
      project.writeTenant(validTenant({ slug: 'wave-013', canary: true }));
      const waves = assignWaves(fleet.map(nameOf), { canary: [nameOf('wave-013')], percents: [100] });
      expect(waves[0]).toMatchObject({ name: 'canary', keys: [nameOf('wave-013')] });
      const run = await tenancy('migrate', '--targets', file, '--migrations', migrationsDir, '--json', '--waves', '100', '--registry', project.root);
      expect(run.code).toBe(0);
      const started = run.lines.filter((l) => l.type === 'wave' && l.status === 'running').map((l) => [l.name, l.targets]);
      expect(started[0]).toEqual(['canary', [nameOf('wave-013')]]);
      expect(started[1][1]).toHaveLength(19);
    } finally {
      project.remove();
    }
  });

  test('bad wave options: a clear usage error naming the option, nothing run', async () => {
    const file = await freshFleet('waves_usage');
    const cases: [string[], RegExp][] = [
      [['--waves', '10,5,100'], /--waves: .*ascend/],
      [['--waves', '10,50'], /--waves: the last wave must reach 100/],
      [['--waves', 'ten'], /--waves: "ten" is not a number/],
      [['--waves', '100', '--max-failures', 'many'], /--max-failures: "many" is neither a count/],
      [['--waves', '100', '--canary', 'nobody'], /--canary nobody: not among the targets/],
      [['--max-failures', '1'], /go with --waves/],
    ];
    for (const [args, message] of cases) {
      const run = await tenancy('migrate', '--targets', file, '--migrations', migrationsDir, '--json', ...args);
      expect([args.join(' '), run.code]).toEqual([args.join(' '), 2]);
      expect(run.stderr).toMatch(message);
    }
    expect(await appliedVersions(pg(), 'waves_usage')).toEqual({});
  });
});
