import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { registerPostApplyCommand } from '../../lib/cli/post-apply-command';
import { tenantStateKey } from '../../lib/naming';
import { AwsSecretsManagerResolver } from '../../lib/runtime/secret-resolver';
import { withTenant } from '../../lib/runtime/with-tenant';
import { runCommand } from '../support/cli';
import { validTenant } from '../support/fixture-project';
import { createLocalSecret, getObject, localDeployProject, LocalStackError, prepareLocalDatabases, standInPlatformOutputs, useLocalAws, type LocalDeployProject } from '../support/moto';
import { usePostgres } from '../support/postgres';

/**
 * Deploy tier, fast part: a bridge and a pool tenant stack applied for real with `cdktf deploy`
 * against a local AWS API (moto) with the S3 backend, then `tenancy post-apply` on the outputs
 * file against local PostgreSQL, the tenants used through withTenant, a second plan, destroy.
 * The shared clusters these tenants live on are the platform stack's: here their outputs are
 * provided by the test (databases on the local server, master secrets in the local Secrets
 * Manager); test/deploy/silo-platform-deploy.test.ts deploys the platform stack itself.
 */
jest.setTimeout(15 * 60_000);

const aws = useLocalAws();
const pg = usePostgres();

const BRIDGE = validTenant({ id: '5d7c0a61-3b2e-4f8a-9c1d-2e3f4a5b6c01', slug: 'bravo', model: 'bridge', plan: 'pro' });
const POOL = validTenant({ id: '5d7c0a61-3b2e-4f8a-9c1d-2e3f4a5b6c02', slug: 'papa', model: 'pool', plan: 'starter' });
const STACKS = ['tenant-bravo', 'tenant-papa'];

let deploy: LocalDeployProject;
let platformOutputsFile: string;
const outputs: Record<string, Record<string, any>> = {};
const stateKey = (t: Record<string, unknown>) => `${deploy.stateKeyPrefix}/${tenantStateKey(String(t.id))}`;

beforeAll(async () => {
  // In-process clients (post-apply's Secrets Manager resolver) talk to the local API; jest keeps process.env per file.
  Object.assign(process.env, { AWS_ENDPOINT_URL: aws().endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' });
  deploy = localDeployProject(aws(), [BRIDGE, POOL]);

  // The platform stack's outputs for region us-east-1, by the private DNS names it gives its clusters.
  const platform = await standInPlatformOutputs(aws().endpoint, 'us-east-1');
  platformOutputsFile = join(deploy.runner.logDir, 'platform.outputs.json');
  writeFileSync(platformOutputsFile, JSON.stringify({ 'platform-us-east-1': platform }));
});
afterAll(() => deploy?.remove());

/** The terraform processes running in `dir` (Linux /proc). */
function terraformProcessesIn(dir: string): number[] {
  return readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'terraform' && readlinkSync(`/proc/${pid}/cwd`) === dir;
    } catch {
      return false; // exited meanwhile, or not ours to read
    }
  });
}

test('two deploys of the same stack at once: the second fails on the S3 state lock, the first applies, the state stays valid', async () => {
  // A second checkout of the same project (same state keys), as a second pipeline would have.
  const second = localDeployProject(aws(), [BRIDGE, POOL], { stateKeyPrefix: deploy.stateKeyPrefix });
  const lock = `${stateKey(BRIDGE)}.tflock`;
  let frozen: number[] = [];
  try {
    const first = deploy.runner.deploy('tenant-bravo');
    let firstEnded: unknown;
    first.then(() => (firstEnded = 'applied'), (e: Error) => (firstEnded = e));
    // Once the first deploy holds the lock (its lock object exists), its terraform is paused
    // (SIGSTOP) while the second runs, so the two overlap however fast the first would be.
    while ((await getObject(aws().endpoint, aws().stateBucket, lock)) === undefined) {
      if (firstEnded !== undefined) throw new Error(`the first deploy ended before it was seen holding the lock: ${String(firstEnded)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    frozen = terraformProcessesIn(deploy.runner.stackDir('tenant-bravo'));
    expect(frozen.length).toBeGreaterThan(0);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const secondError = await second.runner.deploy('tenant-bravo').then(() => undefined, (e: Error) => e);
    for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
    expect(secondError).toBeInstanceOf(LocalStackError);
    expect(secondError!.message).toMatch(/Error acquiring the state lock/);
    expect(secondError!.message).toMatch(/412|PreconditionFailed/i);

    outputs['tenant-bravo'] = await first;
    expect(await getObject(aws().endpoint, aws().stateBucket, lock)).toBeUndefined();
    const state = JSON.parse((await getObject(aws().endpoint, aws().stateBucket, stateKey(BRIDGE)))!);
    expect(state.resources.map((r: any) => r.type)).toEqual(expect.arrayContaining(['aws_secretsmanager_secret', 'aws_secretsmanager_secret_version']));
    // Nothing corrupted: the second checkout plans against the same state and finds nothing to do.
    expect((await second.runner.plan('tenant-bravo')).unexpected).toEqual([]);
  } finally {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    second.remove();
  }
});

test('cdktf deploy of the pool tenant writes the outputs the hooks read; both stacks keep their state in the bucket', async () => {
  outputs['tenant-papa'] = await deploy.runner.deploy('tenant-papa');
  expect(outputs['tenant-bravo']).toMatchObject({ tenant_id: BRIDGE.id, slug: 'bravo', model: 'bridge', cluster_identifier: 'tenancy-bridge', db_name: 'tenants', schema: 'tenant_bravo', role: 'tenant_bravo_app' });
  expect(outputs['tenant-bravo'].credentials_secret_arn).toMatch(new RegExp(`^arn:aws:secretsmanager:us-east-1:[0-9]{12}:secret:tenancy/tenants/${BRIDGE.id}/db-credentials-`));
  expect(outputs['tenant-papa']).toEqual(expect.objectContaining({ tenant_id: POOL.id, slug: 'papa', model: 'pool', cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' }));
  for (const t of [BRIDGE, POOL]) expect(JSON.parse((await getObject(aws().endpoint, aws().stateBucket, stateKey(t)))!).serial).toBeGreaterThan(0);
});

test('tenancy post-apply on the outputs files registers, provisions, migrates and activates both tenants on local PostgreSQL', async () => {
  // The local server stands in for the clusters; the pool application's secret is the platform team's.
  const all = JSON.parse(readFileSync(platformOutputsFile, 'utf8'));
  await prepareLocalDatabases({ endpoint: aws().endpoint, region: 'us-east-1', admin: pg().adminConfig(), outputs: { ...all, ...outputs } });
  const run = await runCommand(registerPostApplyCommand, [
    'post-apply', '--json', '--outputs', deploy.runner.outputsFile('tenant-bravo'), '--outputs', deploy.runner.outputsFile('tenant-papa'), '--outputs', platformOutputsFile,
    '--database-host-map', `*.db.tenancy.internal=localhost:${pg().port}`, '--ssl-ca', pg().tls!.caFile, '--registry', deploy.project.root,
  ], { env: { TENANCY_ACTOR: 'deploy-test' } });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const hooks = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.type === 'hook').map((l) => `${l.tenant}:${l.hook}:${l.status}`);
  expect(hooks).toEqual(expect.arrayContaining(['bravo:activate:succeeded', 'papa:activate:succeeded']));
  expect(hooks.filter((h) => h.endsWith(':failed'))).toEqual([]);
  const rows = await pg().query("SELECT slug, status, placement->>'host' AS host FROM tenancy.tenants ORDER BY slug", [], 'control_plane');
  // The control plane records the mapped address: the runtime connects where the hooks did.
  expect(rows).toEqual([{ slug: 'bravo', status: 'active', host: 'localhost' }, { slug: 'papa', status: 'active', host: 'localhost' }]);
});

test('each tenant is usable through withTenant with the credentials Terraform stored in the local Secrets Manager', async () => {
  const secrets = new AwsSecretsManagerResolver();
  const bravo = await secrets.resolve(outputs['tenant-bravo'].credentials_secret_arn);
  const papa = await secrets.resolve('tenancy/pool/app-credentials');
  const bridgePool = new Pool({ ...pg().clientConfig({ user: bravo.username, password: bravo.password, database: 'tenants' }), max: 1 });
  const poolPool = new Pool({ ...pg().clientConfig({ user: papa.username, password: papa.password, database: 'pool' }), max: 1 });
  try {
    const project = '5d7c0a61-3b2e-4f8a-9c1d-2e3f4a5b6cff';
    await withTenant(bridgePool, { model: 'bridge', id: String(BRIDGE.id), slug: 'bravo' }, (c) => c.query("INSERT INTO projects (id, name) VALUES ($1, 'first')", [project]));
    const bridgeRows = await withTenant(bridgePool, { model: 'bridge', id: String(BRIDGE.id), slug: 'bravo' }, async (c) => (await c.query('SELECT current_schema() AS s, count(*)::int AS n FROM projects')).rows[0]);
    expect(bridgeRows).toEqual({ s: 'tenant_bravo', n: 1 });
    await withTenant(poolPool, { model: 'pool', id: String(POOL.id), slug: 'papa' }, (c) => c.query("INSERT INTO projects (tenant_id, id, name) VALUES ($1, $2, 'first')", [POOL.id, project]));
    const poolRows = await withTenant(poolPool, { model: 'pool', id: String(POOL.id), slug: 'papa' }, async (c) => (await c.query('SELECT tenant_id FROM projects')).rows);
    expect(poolRows).toEqual([{ tenant_id: POOL.id }]);
  } finally {
    await bridgePool.end();
    await poolPool.end();
  }
});

test('a second plan of each stack is empty (terraform plan -detailed-exitcode)', async () => {
  for (const stack of STACKS) {
    const drift = await deploy.runner.plan(stack);
    expect({ stack, unexpected: drift.unexpected, exitCode: drift.exitCode }).toEqual({ stack, unexpected: [], exitCode: 0 });
  }
});

test('cdktf destroy removes both stacks; their state objects are gone or empty', async () => {
  await Promise.all(STACKS.map((s) => deploy.runner.destroy(s)));
  for (const t of [BRIDGE, POOL]) {
    const body = await getObject(aws().endpoint, aws().stateBucket, stateKey(t));
    if (body !== undefined) expect(JSON.parse(body).resources).toEqual([]);
  }
});

test('a broken stack (a subnet id that does not exist in platform.yaml) fails the deploy with the provider\'s error', async () => {
  const broken = localDeployProject(aws(), [], { editPlatformYaml: (yaml) => yaml.replace(aws().network.privateSubnetIds[0], 'subnet-0000000000000dead') });
  try {
    const error = await broken.runner.deploy('platform-us-east-1').then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(LocalStackError);
    expect(error!.message).toMatch(/aws_db_subnet_group/);
    expect(error!.message).toMatch(/subnet-0000000000000dead/);
  } finally {
    broken.remove();
  }
});

test('post-apply reads a secret ARN in the ARN\'s own region, whatever the pipeline\'s region (a tenant in another region)', async () => {
  const arn = await createLocalSecret(aws().endpoint, 'eu-central-1', 'tenancy/tenants/berlin/db-credentials', { username: 'tenant_berlin_app', password: 'pw-eu' });
  expect(process.env.AWS_REGION).toBe('us-east-1');
  await expect(new AwsSecretsManagerResolver().resolve(arn)).resolves.toMatchObject({ username: 'tenant_berlin_app', password: 'pw-eu' });
});
