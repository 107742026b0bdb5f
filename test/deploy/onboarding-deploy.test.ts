// Reproduces: a tenant offboarded and then onboarded again with the same slug cannot be deployed.
// Fails on 0f20909 (main before the fix): its credentials secret was named
// tenancy/tenants/<slug>/db-credentials; the destroy only schedules the secret's deletion (30-day
// recovery window), so the second apply's CreateSecret is refused (the name is still reserved).
// Fails on 5599394 too, one step earlier: `tenancy onboard --slug <the same slug>` was refused
// (exit 2: the slug stayed taken by the offboarded tenant in the control plane and the registry).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import { parse } from 'yaml';
import { registerOffboardCommand } from '../../lib/cli/offboard-command';
import { registerOnboardCommand } from '../../lib/cli/onboard-command';
import { tenantStateKey } from '../../lib/naming';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { CdktfDeployer } from '../../lib/onboarding/stack-deployer';
import { startLifecycleWorker } from '../../lib/onboarding/worker';
import { tenantCredentialsSecretName } from '../../lib/tenant-credentials-secret';
import { runCommand } from '../support/cli';
import { AUDITOR, MASTERS, POOL_APP_PASSWORD, useLifecycleTestbed } from '../support/lifecycle';
import { createLocalSecret, getObject, localAwsEnv, localPlatformYaml, LocalStackRunner, useLocalAws } from '../support/moto';
import { repoRoot } from '../support/pool-db';

/**
 * The onboarding worker with the `cdktf` deployer against a local AWS API (moto): `tenancy
 * onboard --wait` with `tenancy worker` (in-process) takes a new bridge tenant from request to
 * `active` through a real `cdktf deploy` (S3 state in moto); `tenancy offboard --wait` destroys
 * its stack. The platform stack is not deployed (its Aurora clusters take minutes on moto): its
 * outputs point at the testbed's PostgreSQL, the master secrets created in moto's Secrets Manager.
 */
jest.setTimeout(15 * 60_000);

const aws = useLocalAws();
const bed = useLifecycleTestbed({ git: true });
const SLUG = 'bravo-deploy';
const STATE_PREFIX = `onboarding-${process.pid}`;
let services: LifecycleServices;
let worker: Worker;
let env: NodeJS.ProcessEnv;
let firstId: string;

const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
const state = async (tenantId: string) => JSON.parse((await getObject(aws().endpoint, aws().stateBucket, `${STATE_PREFIX}/${tenantStateKey(tenantId)}`)) ?? 'null');

beforeAll(async () => {
  const { endpoint, network, stateBucket } = aws();
  // The project: network ids of the local fixture, S3 state in moto's bucket, Kubernetes side off; a cdktf.json.
  const platformFile = join(bed().root, 'platform.yaml');
  writeFileSync(platformFile, localPlatformYaml({ base: parse(readFileSync(platformFile, 'utf8')), networks: [network], stateBucket, stateKeyPrefix: STATE_PREFIX }));
  new LocalStackRunner({ endpoint, root: bed().root });
  // cdktf and the hooks' Secrets Manager client (in this process) talk to moto; jest keeps process.env per file.
  for (const k of Object.keys(process.env)) if (/^(TF_|AWS_|CDKTF_)/.test(k)) delete process.env[k];
  Object.assign(process.env, localAwsEnv(endpoint, join(bed().dir, 'aws')));

  // The platform's outputs: the clusters are the testbed's server, their master secrets in moto.
  const secret = (name: string, value: { user: string; password: string }) => createLocalSecret(endpoint, 'us-east-1', name, { username: value.user, password: value.password });
  const host = { endpoint: bed().pg.host, port: bed().pg.port };
  const platformOutputs = join(bed().dir, 'platform-outputs.moto.json');
  writeFileSync(platformOutputs, JSON.stringify({
    'platform-us-east-1': {
      bridge_cluster_identifier: 'tenancy-bridge', bridge_endpoint: host.endpoint, bridge_port: host.port, bridge_database: MASTERS.bridge.database, bridge_master_secret_arn: await secret('rds!cluster-tenancy-bridge', MASTERS.bridge),
      pool_cluster_identifier: 'tenancy-pool', pool_endpoint: host.endpoint, pool_port: host.port, pool_database: MASTERS.pool.database, pool_master_secret_arn: await secret('rds!cluster-tenancy-pool', MASTERS.pool),
      control_plane_cluster_identifier: 'tenancy-control-plane', control_plane_endpoint: host.endpoint, control_plane_port: host.port, control_plane_database: MASTERS.controlPlane.database, control_plane_master_secret_arn: await secret('rds!cluster-tenancy-cp', MASTERS.controlPlane),
      tenant_secrets_key_arn: 'alias/tenancy/tenant-secrets',
    },
  }));
  await secret('tenancy/pool/app-credentials', { user: 'pool_app', password: POOL_APP_PASSWORD });
  await secret('tenancy/pool/auditor-credentials', AUDITOR);
  // No secrets file: every secret (the masters', the tenant's) is read from moto's Secrets Manager.
  env = bed().childEnv({ TENANCY_DEPLOY: 'cdktf', TENANCY_PLATFORM_OUTPUTS: platformOutputs, TENANCY_SECRETS_FILE: '' });
  services = bed().track(await bed().open({}, { deployer: new CdktfDeployer({ cdktf: join(repoRoot(), 'node_modules', '.bin', 'cdktf') }) }, env), (s) => s.close());
  // `tenancy worker`, in this process.
  worker = bed().track(startLifecycleWorker(services), (w) => w.close());
});

test('tenancy onboard --wait takes a new bridge tenant to active through a real cdktf deploy', async () => {
  const run = await runCommand(registerOnboardCommand, [
    'onboard', '--email', 'ops@bravo.example', '--company', 'Bravo Deploy', '--plan', 'pro', '--model', 'bridge', '--region', 'us-east-1', '--payment-method', 'pm_card_visa', '--wait',
  ], { env });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const [tenant] = await cp('SELECT id::text, status, placement FROM tenancy.tenants WHERE slug = $1', [SLUG]);
  expect(tenant).toMatchObject({ status: 'active', placement: expect.objectContaining({ schema: 'tenant_bravo_deploy', role: 'tenant_bravo_deploy_app' }) });
  firstId = tenant.id;
  // Really applied: the state in moto's bucket holds the credentials secret, named by the tenant id.
  const applied = await state(firstId);
  const secrets = applied.resources.filter((r: any) => r.type === 'aws_secretsmanager_secret');
  expect(secrets.map((r: any) => r.instances[0].attributes.name)).toEqual([tenantCredentialsSecretName(firstId)]);
  expect(tenant.placement.secret_ref).toBe(secrets[0].instances[0].attributes.arn);
  const [job] = await cp("SELECT id FROM tenancy.lifecycle_jobs WHERE tenant_id = $1 AND kind = 'onboard'", [firstId]);
  expect((await services.store.steps(job.id)).map((s) => s.step)).toEqual(['registry', 'synthesize', 'deploy', 'register', 'provision', 'migrate', 'billing', 'welcome', 'activate']);
});

test('tenancy offboard --wait destroys the stack: its state is empty afterwards', async () => {
  const run = await runCommand(registerOffboardCommand, ['offboard', SLUG, '--yes', '--wait', '--reason', 'deploy test'], { env, tty: true });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  expect((await cp('SELECT status FROM tenancy.tenants WHERE id = $1', [firstId]))[0].status).toBe('offboarded');
  expect((await state(firstId)).resources).toEqual([]);
});

test('tenancy onboard --slug <the same slug> --wait: a new tenant (new id) is deployed to active, with its own state and credentials secret', async () => {
  // The customer comes back: the same slug, asked for explicitly.
  const run = await runCommand(registerOnboardCommand, [
    'onboard', '--email', 'ops@bravo.example', '--company', 'Bravo Deploy', '--slug', SLUG, '--plan', 'pro', '--model', 'bridge', '--region', 'us-east-1', '--payment-method', 'pm_card_visa', '--wait',
  ], { env });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const rows = await cp('SELECT id::text, status FROM tenancy.tenants WHERE slug = $1 ORDER BY created_at', [SLUG]);
  expect(rows).toEqual([{ id: firstId, status: 'offboarded' }, { id: expect.any(String), status: 'active' }]);
  const secondId = rows[1].id;
  expect(secondId).not.toBe(firstId);
  // Really applied, into its own state (keyed by the new id), with its own credentials secret.
  const applied = await state(secondId);
  const secrets = applied.resources.filter((r: any) => r.type === 'aws_secretsmanager_secret');
  expect(secrets.map((r: any) => r.instances[0].attributes.name)).toEqual([tenantCredentialsSecretName(secondId)]);
  // The old tenant's state stays empty; its registry entry is archived.
  expect((await state(firstId)).resources).toEqual([]);
  expect(existsSync(join(bed().root, 'tenants', 'offboarded', `${SLUG}.${firstId}.yaml`))).toBe(true);

  // Clean up through the product's path too: its stack destroyed, its state empty.
  const off = await runCommand(registerOffboardCommand, ['offboard', SLUG, '--yes', '--wait', '--reason', 'deploy test cleanup'], { env, tty: true });
  expect(off).toMatchObject({ code: 0, stderr: '' });
  expect(off.stdout).toContain(secondId);
  expect((await state(secondId)).resources).toEqual([]);
});
