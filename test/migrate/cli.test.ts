import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { main } from '../../bin/tenancy';
import { registerMigrateCommand } from '../../lib/cli/migrate-command';
import { usePostgres } from '../support/postgres';
import { latestVersion } from '../../lib/migrate/migration-set';
import { REPO_MIGRATIONS, repoSets } from './helpers';

/** The repository's latest versions, so that a new migration does not break these tests. */
const repoLatest = { tenant: latestVersion(repoSets().tenant!), pool: latestVersion(repoSets().pool!), cp: latestVersion(repoSets()['control-plane']!) };

const pg = usePostgres();
let work: string;
const url = (database: string) => `postgres://postgres@/${database}?host=${encodeURIComponent(pg().socketDir)}&port=${pg().port}`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tenancy-migrate-cli-'));
  await pg().createDatabase('control_plane');
  await pg().createDatabase('cli_bridge');
  await pg().createDatabase('cli_pool');
  await pg().query(['a', 'b', 'c', 'd', 'e', 'f'].map((x) => `CREATE SCHEMA tenant_cli_${x};`).join(''), [], 'cli_bridge');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
  jest.restoreAllMocks();
});

/** Runs the real CLI entry point; returns its exit code and output (JSON lines parsed). */
async function tenancy(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; lines: any[] }> {
  let stdout = '';
  let stderr = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => ((stdout += String(chunk)), true));
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => ((stderr += String(chunk)), true));
  try {
    const code = await main(argv);
    const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    return { code, stdout, stderr, lines };
  } finally {
    jest.restoreAllMocks();
    process.exitCode = undefined;
  }
}

function targetsFile(name: string, targets: unknown[]): string {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify({ connections: { bridge: url('cli_bridge') }, targets }));
  return file;
}

describe('tenancy migrate', () => {
  test('a targets file, JSON lines, and the run recorded in the control plane', async () => {
    const file = targetsFile('targets.json', [
      { kind: 'control-plane', connection: url('control_plane') },
      { kind: 'bridge', slug: 'cli-a', connection: 'bridge' },
      { kind: 'bridge', slug: 'cli-b', connection: 'bridge' },
      { kind: 'pool', connection: url('cli_pool') },
    ]);
    const r = await tenancy('migrate', '--targets', file, '--control-plane-url', url('control_plane'), '--actor', 'ci-job-1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.filter((l) => l.type === 'target').map((l) => [l.target, l.status, l.version]).sort()).toEqual([
      ['control-plane', 'applied', repoLatest.cp],
      ['pool', 'applied', repoLatest.pool],
      ['tenant_cli_a', 'applied', repoLatest.tenant],
      ['tenant_cli_b', 'applied', repoLatest.tenant],
    ]);
    const summary = r.lines.at(-1);
    expect(summary).toMatchObject({ type: 'summary', direction: 'up', dryRun: false, total: 4, ok: true, recorded: true, counts: { applied: 4 } });
    const runs = await pg().query('SELECT id::text, direction, dry_run, actor, summary FROM tenancy.migration_runs', [], 'control_plane');
    expect(runs).toEqual([{ id: summary.runId, direction: 'up', dry_run: false, actor: 'ci-job-1', summary: expect.objectContaining({ total: 4, ok: true, failures: [] }) }]);
    const latest = await pg().query('SELECT target, kind, version, status, run_id::text FROM tenancy.tenant_migrations ORDER BY target', [], 'control_plane');
    expect(latest).toEqual([
      { target: 'control-plane', kind: 'control-plane', version: repoLatest.cp, status: 'applied', run_id: summary.runId },
      { target: 'pool', kind: 'pool', version: repoLatest.pool, status: 'applied', run_id: summary.runId },
      { target: 'tenant_cli_a', kind: 'bridge', version: repoLatest.tenant, status: 'applied', run_id: summary.runId },
      { target: 'tenant_cli_b', kind: 'bridge', version: repoLatest.tenant, status: 'applied', run_id: summary.runId },
    ]);

    // Rerun: up to date everywhere, recorded as such.
    const again = await tenancy('migrate', '--targets', file, '--control-plane-url', url('control_plane'), '--json');
    expect(again.code).toBe(0);
    expect(again.lines.at(-1)).toMatchObject({ counts: { 'up-to-date': 4 }, recorded: true });
    expect(await pg().query(`SELECT DISTINCT status FROM tenancy.tenant_migrations`, [], 'control_plane')).toEqual([{ status: 'up-to-date' }]);
  });

  test('bridge and silo tenants listed from the control plane placement, with --tenant selection', async () => {
    const placement = (schema: string) => JSON.stringify({ host: pg().socketDir, port: pg().port, database: 'cli_bridge', schema });
    await pg().query(
      `INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES
         ('00000000-0000-4000-8000-00000000000c', 'cli-c', 'bridge', 'pro', 'active', 'us-east-1', $1),
         ('00000000-0000-4000-8000-00000000000d', 'cli-d', 'bridge', 'pro', 'active', 'us-east-1', $2),
         ('00000000-0000-4000-8000-00000000000e', 'cli-e', 'bridge', 'pro', 'offboarded', 'us-east-1', $3),
         ('00000000-0000-4000-8000-0000000000f0', 'cli-pool', 'pool', 'free', 'active', 'us-east-1', '{}')`,
      [placement('tenant_cli_c'), placement('tenant_cli_d'), placement('tenant_cli_e')],
      'control_plane',
    );
    const credentials = 'postgres://postgres@ignored.example/ignored';
    const one = await tenancy('migrate', '--control-plane-url', url('control_plane'), '--tenant-credentials-url', credentials, '--tenant', 'cli-d', '--json');
    expect(one.code).toBe(0);
    expect(one.lines.filter((l) => l.type === 'target').map((l) => [l.target, l.tenantId, l.status])).toEqual([['tenant_cli_d', '00000000-0000-4000-8000-00000000000d', 'applied']]);
    const all = await tenancy('migrate', '--control-plane-url', url('control_plane'), '--tenant-credentials-url', credentials, '--json');
    expect(all.lines.filter((l) => l.type === 'target').map((l) => [l.target, l.status]).sort()).toEqual([['tenant_cli_c', 'applied'], ['tenant_cli_d', 'up-to-date']]);
    expect(await pg().query(`SELECT target, tenant_id::text FROM tenancy.tenant_migrations WHERE target LIKE 'tenant_cli_%' AND tenant_id IS NOT NULL ORDER BY 1`, [], 'control_plane')).toEqual([
      { target: 'tenant_cli_c', tenant_id: '00000000-0000-4000-8000-00000000000c' },
      { target: 'tenant_cli_d', tenant_id: '00000000-0000-4000-8000-00000000000d' },
    ]);
    const unknown = await tenancy('migrate', '--control-plane-url', url('control_plane'), '--tenant', 'cli-zzz', '--json');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no bridge or silo tenant "cli-zzz" in the control plane/);
  });

  test('dry run: pending targets listed, exit 0, nothing changed but the run row', async () => {
    const file = targetsFile('dry.json', [{ kind: 'bridge', slug: 'cli-f', connection: 'bridge' }]);
    const r = await tenancy('migrate', '--targets', file, '--dry-run', '--control-plane-url', url('control_plane'));
    expect(r.code).toBe(0);
    expect(r.lines[0]).toMatchObject({ type: 'target', target: 'tenant_cli_f', status: 'pending' });
    expect(r.lines[0].migrations).toHaveLength(repoSets().tenant!.migrations.length);
    expect(r.lines[1]).toMatchObject({ type: 'summary', dryRun: true, counts: { pending: 1 } });
    expect(await pg().query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'tenant_cli_f'`, [], 'cli_bridge')).toEqual([{ n: 0 }]);
    expect(await pg().query(`SELECT count(*)::int AS n FROM tenancy.tenant_migrations WHERE target = 'tenant_cli_f'`, [], 'control_plane')).toEqual([{ n: 0 }]);
    expect(await pg().query(`SELECT dry_run FROM tenancy.migration_runs WHERE id = $1`, [r.lines[1].runId], 'control_plane')).toEqual([{ dry_run: true }]);
  });

  test('down --to through the CLI', async () => {
    const file = targetsFile('down.json', [{ kind: 'bridge', slug: 'cli-a', connection: 'bridge' }]);
    const r = await tenancy('migrate', 'down', '--to', '1', '--targets', file);
    expect(r.code).toBe(0);
    expect(r.lines[0]).toMatchObject({ target: 'tenant_cli_a', status: 'applied', direction: 'down', version: 1 });
    expect(r.lines[0].migrations.map((m: { version: number }) => m.version)).toEqual(Array.from({ length: repoLatest.tenant - 1 }, (_, i) => repoLatest.tenant - i));
    expect((await tenancy('migrate', 'up', '--targets', file)).lines[0]).toMatchObject({ status: 'applied', version: repoLatest.tenant });
  });

  test('exit 1 when a target is edited (or failed); exit 2 for bad usage and input', async () => {
    const root = join(work, 'edited-migrations');
    cpSync(REPO_MIGRATIONS, root, { recursive: true });
    writeFileSync(join(root, 'tenant', '0001_projects.up.sql'), 'CREATE TABLE projects (id bigint PRIMARY KEY);');
    const file = targetsFile('edited.json', [{ kind: 'bridge', slug: 'cli-a', connection: 'bridge' }, { kind: 'bridge', slug: 'cli-b', connection: 'bridge' }]);
    const edited = await tenancy('migrate', '--targets', file, '--migrations', root);
    expect(edited.code).toBe(1);
    expect(edited.lines.slice(0, 2).map((l) => [l.status, l.edited])).toEqual([['edited', [{ version: 1, name: 'projects' }]], ['edited', [{ version: 1, name: 'projects' }]]]);

    const usage = async (argv: string[], message: RegExp) => {
      const r = await tenancy(...argv);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(message)]);
    };
    await usage(['migrate'], /give --targets <file> or --control-plane-url <url>/);
    await usage(['migrate', 'down', '--targets', file], /down needs --to <version>/);
    await usage(['migrate', 'sideways', '--targets', file], /value 'sideways' is invalid for argument 'direction'/);
    await usage(['migrate', '--targets', file, '--concurrency', '0'], /--concurrency.*expected an integer ≥ 1/);
    await usage(['migrate', '--targets', file, '--tenant', 'cli-q'], /--tenant cli-q: not in/);
    await usage(['migrate', '--targets', join(work, 'missing.json')], /ENOENT/);
    await usage(['migrate', '--targets', file, '--migrations', join(work, 'nothing')], /none of tenant\/, pool\/, control-plane\/ exists/);
    writeFileSync(join(root, 'tenant', '0003_bad name.up.sql'), 'SELECT 1;');
    await usage(['migrate', '--targets', file, '--migrations', root], /0003_bad name\.up\.sql: bad file name/);
    const noDown = join(work, 'no-down');
    cpSync(REPO_MIGRATIONS, noDown, { recursive: true });
    rmSync(join(noDown, 'tenant', '0002_tasks.down.sql'));
    await usage(['migrate', 'down', '--to', '0', '--targets', file, '--migrations', noDown], /cannot migrate down to 0: missing .*0002_tasks\.down\.sql/);
  });

  test('on a terminal: a progress bar and the summary tables', async () => {
    let out = '';
    const stdout = Object.assign(new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } }), { isTTY: true, columns: 120 });
    const stderr = new Writable({ write(_c, _e, cb) { cb(); } });
    const program = new Command('tenancy').exitOverride();
    registerMigrateCommand(program, { stdout, stderr, env: {} });
    const file = targetsFile('tty.json', [{ kind: 'bridge', slug: 'cli-a', connection: 'bridge' }, { kind: 'bridge', slug: 'cli-e', connection: 'bridge' }]);
    await program.parseAsync(['migrate', '--targets', file], { from: 'user' });
    expect(process.exitCode).toBe(0);
    expect(out).toMatch(/migrating \[.*\] 2\/2 targets \| 1 applied, 0 not ok/);
    expect(out).toMatch(/│ applied +│ 1 +│/);
    expect(out).toMatch(/│ up-to-date +│ 1 +│/);
    expect(out).toMatch(new RegExp(`│ tenant_cli_e +│ bridge +│ applied +│ ${repoLatest.tenant} +│ ↑1 ↑2`));
    expect(out).not.toMatch(/^\{/m);
  });
});
