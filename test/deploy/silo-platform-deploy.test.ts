import { Pool } from 'pg';
import { registerPostApplyCommand } from '../../lib/cli/post-apply-command';
import { platformStateKey, tenantStateKey } from '../../lib/naming';
import { AwsSecretsManagerResolver } from '../../lib/runtime/secret-resolver';
import { withTenant } from '../../lib/runtime/with-tenant';
import { runCommand } from '../support/cli';
import { validTenant } from '../support/fixture-project';
import { getObject, liftDeletionProtection, localDeployProject, prepareLocalDatabases, useLocalAws, type LocalDeployProject } from '../support/moto';
import { usePostgres } from '../support/postgres';

/**
 * Deploy tier, slow part (its own file so jest runs it next to the others): a silo tenant and
 * its region's platform stack (shared Aurora clusters, control plane, KMS, private DNS) applied
 * for real with `cdktf deploy` against a local AWS API (moto) with the S3 backend. The AWS
 * provider waits a fixed ~60 s before it polls RDS, so each apply takes minutes: both stacks
 * are deployed, planned and destroyed in parallel.
 */
jest.setTimeout(30 * 60_000);

const aws = useLocalAws();
const pg = usePostgres();

const SILO = validTenant({ id: '7a1e4c3b-9d2f-4b6a-8c5e-1f0a2b3c4d01', slug: 'sierra', model: 'silo', plan: 'pro' });
const STACKS = ['platform-us-east-1', 'tenant-sierra'];

let deploy: LocalDeployProject;
const outputs: Record<string, Record<string, any>> = {};

beforeAll(() => {
  Object.assign(process.env, { AWS_ENDPOINT_URL: aws().endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' });
  deploy = localDeployProject(aws(), [SILO]);
});
afterAll(() => deploy?.remove());

test('cdktf deploy of the platform stack and a silo tenant (in parallel) writes the outputs the hooks read', async () => {
  const [platform, silo] = await Promise.all(STACKS.map((s) => deploy.runner.deploy(s)));
  outputs['platform-us-east-1'] = platform;
  outputs['tenant-sierra'] = silo;
  for (const key of ['bridge', 'pool', 'control_plane']) {
    expect(platform[`${key}_endpoint`]).toMatch(/\.rds\.amazonaws\.com$/);
    expect(platform[`${key}_master_secret_arn`]).toMatch(/^arn:aws:secretsmanager:us-east-1:/);
  }
  expect(platform).toMatchObject({ bridge_database: 'tenants', pool_database: 'pool', control_plane_database: 'control_plane' });
  expect(silo).toMatchObject({ tenant_id: SILO.id, slug: 'sierra', model: 'silo', db_identifier: 'tenant-sierra', db_name: 'tenant_sierra' });
  expect(silo.db_address).toMatch(/\.rds\.amazonaws\.com$/);
  expect(silo.app_credentials_secret_arn).toMatch(new RegExp(`^arn:aws:secretsmanager:us-east-1:[0-9]{12}:secret:tenancy/tenants/${SILO.id}/db-credentials-`));
  expect(JSON.parse((await getObject(aws().endpoint, aws().stateBucket, `${deploy.stateKeyPrefix}/${platformStateKey('us-east-1')}`))!).resources.length).toBeGreaterThan(0);
  expect(JSON.parse((await getObject(aws().endpoint, aws().stateBucket, `${deploy.stateKeyPrefix}/${tenantStateKey(String(SILO.id))}`))!).resources.length).toBeGreaterThan(0);
});

test('tenancy post-apply on both outputs files (control plane from the platform outputs) activates the silo tenant on local PostgreSQL', async () => {
  await prepareLocalDatabases({ endpoint: aws().endpoint, region: 'us-east-1', admin: pg().adminConfig(), outputs });
  const run = await runCommand(registerPostApplyCommand, [
    'post-apply', '--json', '--outputs', deploy.runner.outputsFile('platform-us-east-1'), '--outputs', deploy.runner.outputsFile('tenant-sierra'),
    '--database-host-map', `*.rds.amazonaws.com=localhost:${pg().port}`, '--ssl-ca', pg().tls!.caFile, '--registry', deploy.project.root,
  ], { env: { TENANCY_ACTOR: 'deploy-test' } });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const hooks = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.type === 'hook').map((l) => `${l.hook}:${l.status}`);
  expect(hooks).toEqual(expect.arrayContaining(['register:succeeded', 'provision:succeeded', 'migrate:succeeded', 'activate:succeeded']));
  expect(await pg().query('SELECT slug, status FROM tenancy.tenants', [], 'control_plane')).toEqual([{ slug: 'sierra', status: 'active' }]);
});

test('the silo tenant is usable through withTenant as its app role (credentials from the local Secrets Manager)', async () => {
  const creds = await new AwsSecretsManagerResolver().resolve(outputs['tenant-sierra'].app_credentials_secret_arn);
  const pool = new Pool({ ...pg().clientConfig({ user: creds.username, password: creds.password, database: 'tenant_sierra' }), max: 1 });
  try {
    const ctx = { model: 'silo' as const, id: String(SILO.id), slug: 'sierra' };
    await withTenant(pool, ctx, (c) => c.query("INSERT INTO projects (id, name) VALUES ('7a1e4c3b-9d2f-4b6a-8c5e-1f0a2b3c4dff', 'first')"));
    expect(await withTenant(pool, ctx, async (c) => (await c.query('SELECT current_user AS u, count(*)::int AS n FROM projects')).rows[0])).toEqual({ u: creds.username, n: 1 });
  } finally {
    await pool.end();
  }
});

test('a second plan of both stacks changes nothing but the attributes moto does not return (allowlist)', async () => {
  const drifts = await Promise.all(STACKS.map(async (stack) => ({ stack, unexpected: (await deploy.runner.plan(stack)).unexpected })));
  expect(drifts).toEqual(STACKS.map((stack) => ({ stack, unexpected: [] })));
});

test('with deletion protection lifted (as offboarding does), cdktf destroy removes both stacks; their state is empty', async () => {
  const destroyRefused = await deploy.runner.destroy('tenant-sierra').then(() => undefined, (e: Error) => e);
  expect(destroyRefused?.message).toMatch(/deletion protection/i);
  await liftDeletionProtection(aws().endpoint, 'us-east-1', { instances: ['tenant-sierra'], clusters: ['tenancy-bridge', 'tenancy-pool', 'tenancy-control-plane'] });
  await Promise.all(STACKS.map((s) => deploy.runner.destroy(s)));
  for (const key of [platformStateKey('us-east-1'), tenantStateKey(String(SILO.id))]) {
    const body = await getObject(aws().endpoint, aws().stateBucket, `${deploy.stateKeyPrefix}/${key}`);
    if (body !== undefined) expect(JSON.parse(body).resources).toEqual([]);
  }
});
