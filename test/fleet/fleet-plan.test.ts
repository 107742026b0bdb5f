import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { parse, stringify } from 'yaml';
import { synthesize } from '../../lib/app/synthesize';
import { registerFleetCommand } from '../../lib/cli/fleet-command';
import { appliedContentOf, recordAppliedStack, recordStackDestroyed } from '../../lib/fleet/applied-stacks';
import { FleetPlanError, planFleet, type FleetPlan } from '../../lib/fleet/plan';
import { readStackArtifacts } from '../../lib/fleet/stack-artifact';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { runCommand } from '../support/cli';
import { FixtureProject, validTenant } from '../support/fixture-project';
import { repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

/**
 * `tenancy fleet plan` on a real control plane (migrated by an RDS-style master, read by a role
 * that is only a member of tenancy_control_plane): a fixture fleet synthesized and recorded as
 * applied (recordAppliedStack: what the onboarding deploy step and `tenancy post-apply` call), then
 * each kind of change made to the project and planned again.
 */
const pg = usePostgres();
const MASTER = { user: 'fleet_master', password: 'fleet-master-pw (test only)' };
const RUNTIME = { user: 'fleet_runtime', password: 'fleet-runtime-pw (test only)' };

let pool: Pool;
let project: FixtureProject;
let outdir: string;
const TENANTS = {
  bridge: validTenant({ slug: 'bravo', model: 'bridge' }),
  pool: validTenant({ slug: 'papa', model: 'pool', plan: 'starter' }),
  other: validTenant({ slug: 'oscar', model: 'pool', plan: 'pro' }),
};

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createRole(RUNTIME.user, { password: RUNTIME.password });
  await pg().createDatabase('control_plane', { owner: MASTER.user });
  const run = await migrateTargets({
    targets: [controlPlaneTarget({ connection: pg().clientConfig({ ...MASTER, database: 'control_plane' }) })],
    migrations: loadMigrationSets(join(repoRoot(), 'migrations')),
  });
  const failed = run.results.filter((r) => r.error);
  if (failed.length) throw new Error(`control-plane migration failed: ${failed.map((r) => r.error).join('; ')}`);
  await pg().query(`GRANT tenancy_control_plane TO ${RUNTIME.user}`);
  pool = new Pool({ ...pg().clientConfig({ ...RUNTIME, database: 'control_plane' }), max: 2 });
  // The cluster may stop before this file's afterAll ends the pool: its idle connections are then cut.
  pool.on('error', () => undefined);

  project = FixtureProject.empty();
  for (const t of Object.values(TENANTS)) project.writeTenant(t);
  outdir = join(project.root, 'cdktf.out');
  // The fleet as deployed: every stack recorded as the deploy step records a successful apply.
  synthesize({ root: project.root, outdir, select: '*' });
  for (const artifact of readStackArtifacts(outdir)) await recordAppliedStack(pool, appliedContentOf(artifact), 'fleet-test');
});

afterAll(async () => {
  await pool?.end();
  project?.remove();
});

/** Plans the project as it is now: synthesized into a scratch directory (the recorded fleet's output stays as deployed), or `dir` as it is. */
const plan = (options: { dir?: string } = {}) => planFleet({ db: pool, root: project.root, outdir: options.dir ?? join(project.root, 'scratch.out'), synth: !options.dir });
const changes = (p: FleetPlan) => Object.fromEntries(p.stacks.filter((s) => s.change !== 'unchanged').map((s) => [s.stack, { change: s.change, reasons: s.reasons }]));

/** Runs `fn` with a project file edited, restoring it afterwards. */
async function withEdit<T>(file: string, edit: (text: string) => string | undefined, fn: () => Promise<T>): Promise<T> {
  const path = join(project.root, file);
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === undefined) unlinkSync(path);
  else writeFileSync(path, after);
  try {
    return await fn();
  } finally {
    writeFileSync(path, before);
  }
}

const editYaml = (change: (doc: any) => void) => (text: string) => {
  const doc = parse(text);
  change(doc);
  return stringify(doc);
};

test('nothing changed: every stack, tenant and platform, is unchanged', async () => {
  const p = await plan();
  expect(p.summary).toEqual({ new: 0, changed: 0, unchanged: 4, removed: 0 });
  expect(p.stacks.map((s) => `${s.kind}:${s.stack}`)).toEqual(['platform:platform-us-east-1', 'tenant:tenant-bravo', 'tenant:tenant-oscar', 'tenant:tenant-papa']);
  expect(p.stacks.find((s) => s.stack === 'tenant-papa')).toMatchObject({ tenantId: TENANTS.pool.id, slug: 'papa', contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
});

test('differences in cdktf metadata, the backend path and key order only: unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-fleet-meta-'));
  try {
    cpSync(outdir, dir, { recursive: true });
    for (const stack of ['tenant-bravo', 'tenant-papa', 'platform-us-east-1']) {
      const file = join(dir, 'stacks', stack, 'cdk.tf.json');
      const json = JSON.parse(readFileSync(file, 'utf8'));
      json['//'].metadata.version = '0.99.0';
      json['//'].metadata.tenancy.libraryVersion = '9.9.9';
      json['//'].outputs = {};
      json.terraform.backend = { local: { path: '../../../../elsewhere/state.tfstate' } };
      for (const resources of Object.values<any>(json.resource)) for (const r of Object.values<any>(resources)) r['//'] = { metadata: { path: 'moved/in/the/tree', uniqueId: 'other' } };
      // Keys in reverse order, written compactly: other bytes, the same content.
      const reversed = Object.fromEntries(Object.entries(json).reverse());
      const text = JSON.stringify(reversed);
      expect(text).not.toBe(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
      writeFileSync(file, text);
    }
    const p = await plan({ dir });
    expect(p.summary).toEqual({ new: 0, changed: 0, unchanged: 4, removed: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a registry edit of one tenant: only its stack changed, for its registry entry', async () => {
  const p = await withEdit('tenants/papa.yaml', editYaml((t) => { t.workload = { replicas: 3 }; }), () => plan());
  expect(changes(p)).toEqual({ 'tenant-papa': { change: 'changed', reasons: ['registry entry'] } });
  expect(p.summary).toMatchObject({ changed: 1, unchanged: 3 });
});

test('a new tenant: its stack is new', async () => {
  const added = validTenant({ slug: 'november', model: 'bridge' });
  project.writeTenant(added);
  try {
    const p = await plan();
    expect(changes(p)).toEqual({ 'tenant-november': { change: 'new', reasons: [] } });
  } finally {
    unlinkSync(join(project.tenantsDir, 'november.yaml'));
  }
});

test('a tenant removed from the registry: its applied stack is removed', async () => {
  const p = await withEdit('tenants/oscar.yaml', () => undefined, () => plan());
  expect(changes(p)).toEqual({ 'tenant-oscar': { change: 'removed', reasons: [] } });
  expect(p.stacks.find((s) => s.stack === 'tenant-oscar')).toMatchObject({ tenantId: TENANTS.other.id, contentHash: null });
});

test('a chart change (the version every release pins): every tenant stack changed, for the chart; the platform stack unchanged', async () => {
  const p = await withEdit('platform.yaml', editYaml((doc) => { doc.kubernetes = { ...doc.kubernetes, chartVersion: '0.2.1' }; }), () => plan());
  expect(changes(p)).toEqual({
    'tenant-bravo': { change: 'changed', reasons: ['chart'] },
    'tenant-oscar': { change: 'changed', reasons: ['chart'] },
    'tenant-papa': { change: 'changed', reasons: ['chart'] },
  });
});

test('a stack applied by an older library (other construct output): changed, for the construct code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-fleet-old-'));
  try {
    // What the previous library version synthesized for bravo: another resource attribute, its own version and code hash.
    cpSync(outdir, dir, { recursive: true });
    const file = join(dir, 'stacks', 'tenant-bravo', 'cdk.tf.json');
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const firstType = Object.keys(json.resource)[0];
    const firstName = Object.keys(json.resource[firstType])[0];
    json.resource[firstType][firstName].tags = { ...json.resource[firstType][firstName].tags, 'tenancy:built-by': 'the older constructs' };
    json['//'].metadata.tenancy.libraryVersion = '0.0.9';
    json['//'].metadata.tenancy.components.construct = 'f'.repeat(64);
    writeFileSync(file, JSON.stringify(json));
    const old = readStackArtifacts(dir).find((a) => a.stack === 'tenant-bravo')!;
    await recordAppliedStack(pool, appliedContentOf(old), 'fleet-test (older library)');

    const p = await plan();
    expect(changes(p)).toEqual({ 'tenant-bravo': { change: 'changed', reasons: ['construct code'] } });
    expect(p.stacks.find((s) => s.stack === 'tenant-bravo')).toMatchObject({ appliedLibraryVersion: '0.0.9', libraryVersion: expect.not.stringMatching(/^0\.0\.9$/) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    // Back to the fleet as deployed.
    for (const artifact of readStackArtifacts(outdir)) await recordAppliedStack(pool, appliedContentOf(artifact), 'fleet-test');
  }
});

test('a destroyed stack (offboarding) is not listed as removed; a selection-only synthesis is refused', async () => {
  const p = await withEdit('tenants/oscar.yaml', () => undefined, async () => {
    await recordStackDestroyed(pool, 'tenant-oscar', String(TENANTS.other.id));
    return plan();
  });
  expect(p.summary).toEqual({ new: 0, changed: 0, unchanged: 3, removed: 0 });
  // oscar back as deployed
  await recordAppliedStack(pool, appliedContentOf(readStackArtifacts(outdir).find((a) => a.stack === 'tenant-oscar')!), 'fleet-test');

  const dir = mkdtempSync(join(tmpdir(), 'tenancy-fleet-partial-'));
  try {
    synthesize({ root: project.root, outdir: dir, select: 'papa,platform' });
    const error = await plan({ dir }).then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(FleetPlanError);
    expect(error.message).toMatch(/holds 1 of the registry's 3 tenant stacks/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('tenancy fleet plan (CLI)', () => {
  const url = () => `postgres://${RUNTIME.user}:${encodeURIComponent(RUNTIME.password)}@${pg().host}:${pg().port}/control_plane?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;
  const fleet = (...args: string[]) => runCommand(registerFleetCommand, ['fleet', 'plan', ...args], { env: { TENANCY_CONTROL_PLANE_URL: url() } });
  const scratch = () => join(project.root, 'cli.out');

  test('counts per class and one line per stack to deploy, with its reasons; --detailed-exitcode 2 when something changed', async () => {
    const [human, detailed, json] = await withEdit('tenants/papa.yaml', editYaml((t) => { t.plan = 'pro'; }), async () => [
      await fleet('--synth', '--root', project.root, '--outdir', scratch()),
      await fleet('--outdir', scratch(), '--detailed-exitcode'),
      await fleet('--outdir', scratch(), '--json'),
    ]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Fleet plan of 4 stacks .*: 0 new, 1 changed, 3 unchanged, 0 removed/);
    expect(human.stdout).toMatch(/^ {2}changed +tenant-papa +registry entry$/m);
    expect(human.stdout).not.toMatch(/tenant-bravo/);
    expect(detailed.code).toBe(2);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'stack').map((l) => [l.stack, l.change, l.reasons])).toEqual([
      ['platform-us-east-1', 'unchanged', []], ['tenant-bravo', 'unchanged', []], ['tenant-oscar', 'unchanged', []], ['tenant-papa', 'changed', ['registry entry']],
    ]);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', stacks: 4, new: 0, changed: 1, unchanged: 3, removed: 0 });
  });

  test('nothing changed: exit 0 with --detailed-exitcode; no control plane: a clear usage error; no output: exit 1', async () => {
    const same = await fleet('--outdir', outdir, '--detailed-exitcode');
    expect(same.stdout).toMatch(/Nothing to deploy/);
    expect(same.code).toBe(0);
    const none = await runCommand(registerFleetCommand, ['fleet', 'plan', '--outdir', outdir], { env: {} });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no control plane/);
    const missing = await fleet('--outdir', join(project.root, 'nowhere'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nowhere.*manifest\.json does not exist/);
  });
});
