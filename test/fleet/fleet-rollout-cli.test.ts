import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { parse, stringify } from 'yaml';
import { synthesize } from '../../lib/app/synthesize';
import { registerFleetRolloutCommand } from '../../lib/cli/fleet-rollout-command';
import { appliedContentOf, recordAppliedStack } from '../../lib/fleet/applied-stacks';
import { createRollout, stopRollout, tryLockRollout, type NewRolloutStack } from '../../lib/fleet/rollout-store';
import { readStackArtifacts } from '../../lib/fleet/stack-artifact';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { runCommand } from '../support/cli';
import { FixtureProject, validTenant } from '../support/fixture-project';
import { repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

/**
 * `tenancy fleet deploy | status | resume` as a user meets them: bad options and inputs (a clear
 * error naming the option or field, exit 2, nothing written), `status` output, `deploy` with
 * nothing changed. Against a real control plane (migrated, used by a member of
 * tenancy_control_plane); the rollouts `status` shows are written with the store's functions, as
 * the coordinator writes them. Deploys that run are test/fleet/rollout-coordinator.test.ts.
 */
const pg = usePostgres();
const MASTER = { user: 'cli_master', password: 'cli-master-pw (test only)' };
const RUNTIME = { user: 'cli_runtime', password: 'cli-runtime-pw (test only)' };

let pool: Pool;
let project: FixtureProject;
let outdir: string;
const TENANTS = [validTenant({ slug: 'bravo', model: 'bridge' }), validTenant({ slug: 'papa', model: 'pool', plan: 'starter' })];

const url = () => `postgres://${RUNTIME.user}:${encodeURIComponent(RUNTIME.password)}@${pg().host}:${pg().port}/control_plane?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;
const fleet = (args: string[], env: NodeJS.ProcessEnv = { TENANCY_CONTROL_PLANE_URL: url() }) => runCommand(registerFleetRolloutCommand, ['fleet', ...args], { env });
const deploy = (...args: string[]) => fleet(['deploy', '--root', project.root, '--outdir', outdir, ...args]);
const rolloutCount = async () => (await pool.query('SELECT count(*)::int AS n FROM tenancy.rollouts')).rows[0].n;

function editPlatform(change: (doc: any) => void): () => void {
  const file = join(project.root, 'platform.yaml');
  const before = readFileSync(file, 'utf8');
  const doc = parse(before);
  change(doc);
  project.writePlatform(stringify(doc));
  return () => project.writePlatform(before);
}

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
  pool.on('error', () => undefined);

  project = FixtureProject.empty();
  project.setKubernetesEnabled(false);
  editPlatform((doc) => { doc.state = { backend: 's3', bucket: 'tenancy-cli-test-state', region: 'us-east-1', keyPrefix: 'cli-test' }; });
  for (const t of TENANTS) project.writeTenant(t);
  outdir = join(project.root, 'cdktf.out');
  synthesize({ root: project.root, outdir, select: '*' });
  // The fleet as deployed: nothing to do until something changes.
  for (const artifact of readStackArtifacts(outdir)) await recordAppliedStack(pool, appliedContentOf(artifact), 'cli-test');
});

afterAll(async () => {
  await pool?.end();
  project?.remove();
});

describe('bad inputs: a clear error naming the option or field, exit 2, no rollout written', () => {
  test.each([
    [['--waves', '10,5,100'], /--waves: the percentages are cumulative and must ascend/],
    [['--waves', '1,x,100'], /--waves: "x" is not a number/],
    [['--waves', '10,50'], /--waves: the last wave must reach 100/],
    [['--waves', '0,100'], /--waves: 0 is not a percentage/],
    [['--max-failures', 'some'], /--max-failures: "some" is neither a count .* nor a percentage/],
    [['--max-failures', '150%'], /--max-failures: 150% is more than 100%/],
    [['--max-failures', '-1'], /--max-failures: "-1" is neither a count/],
    [['--parallel', '0'], /--parallel: "0" is not a whole number from 1 to 10000/],
    [['--parallel', 'many'], /--parallel: "many" is not a whole number/],
    [['--canary', 'Not A Slug'], /--canary: "Not A Slug" is not a tenant slug/],
    [['--canary', 'nobody'], /--canary: no tenant "nobody" in the registry/],
    [['--stack', 'tenant-nobody'], /--stack: no stack "tenant-nobody" in /],
    [['--stack', '../etc'], /--stack: "..\/etc" is not a stack name/],
    [['--artifacts', 'ftp://x/y'], /--artifacts: "ftp:\/\/x\/y" is neither s3:\/\/bucket\/prefix nor an absolute directory/],
  ])('deploy %j', async (args, message) => {
    const r = await deploy(...args);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(message) });
    expect(r.stderr).toMatch(/^tenancy fleet deploy: /);
    expect(await rolloutCount()).toBe(0);
  });

  test('no control plane; a platform.yaml fleet field; a canary that is not in the registry; the local state backend without --artifacts', async () => {
    const none = await fleet(['deploy', '--root', project.root, '--outdir', outdir], {});
    expect({ code: none.code, stderr: none.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL/) });
    for (const command of ['status', 'resume']) {
      const r = await fleet([command], {});
      expect({ command, code: r.code, stderr: r.stderr }).toEqual({ command, code: 2, stderr: expect.stringMatching(new RegExp(`^tenancy fleet ${command}: no control plane`)) });
    }

    let restore = editPlatform((doc) => { doc.fleet = { waves: [50, 10, 100] }; });
    try {
      const r = await deploy();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/platform\.yaml.*fleet\.waves.*cumulative and must ascend/s) });
    } finally {
      restore();
    }
    restore = editPlatform((doc) => { doc.fleet = { maxFailures: 'half' }; });
    try {
      const r = await deploy();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/fleet\.maxFailures.*"half" is neither a count/s) });
    } finally {
      restore();
    }
    restore = editPlatform((doc) => { doc.fleet = { canary: { tenants: ['ghost'] } }; });
    try {
      const r = await deploy();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/platform\.yaml fleet\.canary\.tenants: no tenant "ghost" in the registry/) });
    } finally {
      restore();
    }
    restore = editPlatform((doc) => { doc.state = { backend: 'local', directory: 'state' }; });
    try {
      const r = await deploy();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/fleet rollouts on workers need the s3 state backend \(platform\.yaml state\.backend: s3\), or give --artifacts/) });
    } finally {
      restore();
    }
    expect(await rolloutCount()).toBe(0);
  });

  test('status and resume of a rollout id that is malformed or unknown', async () => {
    for (const command of ['status', 'resume']) {
      const malformed = await fleet([command, 'latest; DROP TABLE x']);
      expect({ command, code: malformed.code, stderr: malformed.stderr }).toEqual({ command, code: 2, stderr: expect.stringMatching(/"latest; DROP TABLE x" is not a rollout id \(a UUID/) });
      const unknown = await fleet([command, '00000000-0000-4000-8000-00000000dead']);
      expect({ command, code: unknown.code, stderr: unknown.stderr }).toEqual({ command, code: 2, stderr: expect.stringMatching(/no rollout "00000000-0000-4000-8000-00000000dead" in the control plane/) });
    }
  });
});

test('deploy with nothing changed says so and exits 0, without a rollout', async () => {
  const human = await deploy();
  expect({ code: human.code, stdout: human.stdout, stderr: human.stderr }).toEqual({ code: 0, stdout: 'Nothing to deploy: every stack is as last applied (3 unchanged).\n', stderr: '' });
  const json = await deploy('--json');
  expect(json.code).toBe(0);
  expect(JSON.parse(json.stdout)).toEqual({ type: 'outcome', status: 'nothing', unchanged: 3 });
  expect(await rolloutCount()).toBe(0);
});

test('a bridge tenant moved to another shard by a registry edit: deploy refuses before planning, naming it (exit 2), no rollout', async () => {
  // The control plane has bravo's data on shard "b"; its registry entry names no shard (the default).
  const bravo = TENANTS[0] as { id: string; slug: string };
  await pg().query(
    `INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, 'bridge', 'pro', 'active', 'us-east-1', '{"bridge_shard": "b"}')`,
    [bravo.id, bravo.slug], 'control_plane',
  );
  try {
    const result = await deploy();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('refusing to deploy: a bridge tenant was moved by a registry edit:\n  tenant bravo: placement.bridgeShard is "default", but its data is on bridge shard "b" (control plane)');
    expect(await rolloutCount()).toBe(0);
  } finally {
    await pg().query('DELETE FROM tenancy.tenants WHERE id = $1', [bravo.id], 'control_plane');
  }
});

describe('status and resume of recorded rollouts', () => {
  const ID = '3b6f1c2e-8a4d-4c1b-9e7f-0a1b2c3d4e5f';
  const stacks = (): NewRolloutStack[] => readStackArtifacts(outdir).map((a) => ({
    stack: a.stack, kind: a.kind, tenantId: a.tenantId, wave: a.kind === 'platform' ? 0 : 1, change: 'changed', reasons: ['chart'],
    contentHash: a.contentHash, fileHash: a.fileHash, components: a.components as Record<string, string>, libraryVersion: a.libraryVersion,
    fleetTenants: a.fleetTenants, artifactKey: `${a.stack}.artifact.json.gz`,
  }));

  beforeAll(async () => {
    const client = await pool.connect();
    try {
      await createRollout(client, {
        id: ID, waves: [{ index: 0, name: 'platform', size: 1 }, { index: 1, name: '50%', size: 2 }], parallel: 2, maxFailures: '0',
        artifacts: 's3://tenancy-cli-test-state/cli-test/rollouts/3b6f1c2e-8a4d-4c1b-9e7f-0a1b2c3d4e5f/', outdir, libraryVersion: '0.1.0', createdBy: 'alice',
      }, async () => stacks());
    } finally {
      client.release();
    }
    await pool.query(`UPDATE tenancy.rollout_stacks SET status = 'applied', round = 1, attempts = 1, worker = 'host-a:101', started_at = now(), finished_at = now() WHERE stack = 'platform-us-east-1'`);
    await pool.query(`UPDATE tenancy.rollout_stacks SET status = 'failed', round = 1, attempts = 3, worker = 'host-b:202', error = E'terraform apply failed:\\n  Error: boom', finished_at = now() WHERE stack = 'tenant-bravo'`);
  });

  test('a running rollout without a coordinator shows as interrupted; while a coordinator holds it, resume is refused (exit 1)', async () => {
    const status = await fleet(['status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).rollout).toMatchObject({ id: ID, status: 'running', coordinator: null, interrupted: true });
    expect((await fleet(['status'])).stdout).toMatch(new RegExp(`^Rollout ${ID}: running, interrupted: its coordinator is gone \\(tenancy fleet resume ${ID}\\)$`, 'm'));

    const holder = new Client(pg().clientConfig({ ...RUNTIME, database: 'control_plane' }));
    await holder.connect();
    try {
      expect(await tryLockRollout(holder, ID)).toBe(true);
      const pid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      expect((await fleet(['status'])).stdout).toMatch(new RegExp(`^Rollout ${ID}: running \\(coordinator: control-plane session ${pid}\\)$`, 'm'));
      const resumed = await fleet(['resume', ID]);
      expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 1, stderr: `tenancy fleet resume: rollout ${ID} is being run by another coordinator (control-plane session ${pid}): it continues by itself; resume only a rollout whose coordinator is gone\n` });
    } finally {
      await holder.end();
    }
  });

  test('status: the rollout, each wave\'s counts, each stack\'s status, attempts, worker and error; --json the same as data', async () => {
    await stopRollout(pool, ID, 'wave 1 (50%): 1 of 2 stacks failed, more than max-failures 0: tenant-bravo');
    const human = await fleet(['status', ID]);
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      `Rollout ${ID}: stopped`,
      '  stopped: wave 1 (50%): 1 of 2 stacks failed, more than max-failures 0: tenant-bravo',
      expect.stringMatching(/^ {2}created \d{4}-\d\d-\d\dT[\d:.]+Z by alice; parallel 2; max failures per wave 0$/),
      `  artifacts s3://tenancy-cli-test-state/cli-test/rollouts/${ID}/`,
    ]);
    expect(lines.slice(4, 8)).toEqual([
      'Waves:',
      '  #  wave      applied  failed  in progress  pending  total',
      '  0  platform        1       0            0        0      1',
      '  1  50%             0       1            0        1      2',
    ]);
    expect(lines.slice(8)).toEqual([
      'Stacks:',
      '  stack               wave  status   attempts  worker      error',
      '  platform-us-east-1     0  applied         1  host-a:101',
      '  tenant-bravo           1  failed          3  host-b:202  terraform apply failed: Error: boom',
      '  tenant-papa            1  pending         0  -',
      '',
    ]);

    const json = JSON.parse((await fleet(['status', '--json'])).stdout);
    expect(json.rollout).toMatchObject({ id: ID, status: 'stopped', parallel: 2, maxFailures: '0', createdBy: 'alice', coordinator: null, interrupted: false });
    expect(json.waves).toEqual([
      { index: 0, name: 'platform', total: 1, applied: 1, failed: 0, inProgress: 0, pending: 0 },
      { index: 1, name: '50%', total: 2, applied: 0, failed: 1, inProgress: 0, pending: 1 },
    ]);
    expect(json.stacks.map((s: any) => [s.stack, s.wave, s.status, s.attempts, s.worker, s.error])).toEqual([
      ['platform-us-east-1', 0, 'applied', 1, 'host-a:101', null],
      ['tenant-bravo', 1, 'failed', 3, 'host-b:202', 'terraform apply failed:\n  Error: boom'],
      ['tenant-papa', 1, 'pending', 0, null, null],
    ]);
  });
});
