import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '../../lib/app/synthesize';
import { DatabaseConnector } from '../../lib/hooks/database-connector';
import { tenantStateKey } from '../../lib/naming';
import { CdktfDeployer, type StackContext } from '../../lib/onboarding/stack-deployer';
import { TenantSchema } from '../../lib/registry/tenant-schema';
import { AwsSecretsManagerResolver } from '../../lib/runtime/secret-resolver';
import { validTenant } from '../support/fixture-project';
import { getObject, localAwsEnv, localDeployProject, useLocalAws, type LocalDeployProject } from '../support/moto';
import { repoRoot } from '../support/pool-db';

/**
 * The onboarding pipeline's deployer (`TENANCY_DEPLOY=cdktf`) on a stack directory the job has
 * just synthesized, as every onboarding and offboarding job has: no `.terraform.lock.hcl` yet,
 * providers installed from the filesystem mirror only (no registry reachable). The deploy and
 * the destroy must succeed on their first attempt: before the fix, `cdktf deploy` ran
 * `terraform providers lock` there, which asks the origin registry (it ignores the CLI
 * configuration's mirror), so every job's first attempt failed and only BullMQ's retry, finding
 * the lock file the failed attempt's init had left, got through (bench:deploy's 8.6 s gap).
 */
jest.setTimeout(10 * 60_000);

const aws = useLocalAws();
const TENANT = validTenant({ id: '6e8d1b72-4c3f-4a9b-8d2e-3f4a5b6c7d01', slug: 'delta', model: 'bridge', plan: 'pro' });
let project: LocalDeployProject;
let workDir: string;
let deployer: CdktfDeployer;

beforeAll(() => {
  // The deployer's cdktf child inherits this process's environment (as `tenancy worker`'s does): the local API, the mirror only.
  for (const k of Object.keys(process.env)) if (/^(TF_|AWS_|CDKTF_)/.test(k)) delete process.env[k];
  workDir = mkdtempSync(join(tmpdir(), 'tenancy-cdktf-deployer-'));
  Object.assign(process.env, localAwsEnv(aws().endpoint, join(workDir, 'aws')));
  project = localDeployProject(aws(), [TENANT]);
  deployer = new CdktfDeployer({ cdktf: join(repoRoot(), 'node_modules', '.bin', 'cdktf') });
});
afterAll(() => {
  project?.remove();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const contextFor = (outdir: string, jobWorkDir: string): StackContext => ({
  tenant: TenantSchema.parse(TENANT),
  root: project.project.root,
  outdir,
  workDir: jobWorkDir,
  platform: { platforms: new Map(), localSilo: new Map() },
  databases: new DatabaseConnector({ secrets: new AwsSecretsManagerResolver() }),
  jobId: '00000000-0000-4000-8000-000000000001',
});

test('deploys a freshly synthesized stack (no provider lock file) on the first attempt, with the provider mirror only', async () => {
  const jobDir = mkdtempSync(join(workDir, 'onboard-'));
  const outputs = await deployer.deploy(contextFor(project.runner.outdir, jobDir));
  expect(outputs).toMatchObject({ tenant_id: TENANT.id, slug: 'delta' });
  expect(JSON.parse((await getObject(aws().endpoint, aws().stateBucket, `${project.stateKeyPrefix}/${tenantStateKey(String(TENANT.id))}`)) ?? 'null')?.resources?.length).toBeGreaterThan(0);
});

test('destroys from the offboarding job\'s own fresh synthesis on the first attempt', async () => {
  const jobDir = mkdtempSync(join(workDir, 'offboard-'));
  const outdir = join(jobDir, 'cdktf.out');
  synthesize({ root: project.project.root, outdir, select: 'delta' });
  await deployer.destroy(contextFor(outdir, jobDir));
  const state = JSON.parse((await getObject(aws().endpoint, aws().stateBucket, `${project.stateKeyPrefix}/${tenantStateKey(String(TENANT.id))}`)) ?? 'null');
  expect(state?.resources ?? []).toEqual([]);
});
