import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { planStack, type PlanStackOptions } from '../../lib/local/plan-stack';
import { FixtureProject, validTenant } from '../support/fixture-project';
import { PROVIDER_MIRROR } from '../support/terraform';

/**
 * `npm run plan -- <stack>` (bin/plan-stack.ts → lib/local/plan-stack.ts): one stack of a fixture
 * registry planned offline with real terraform and the provider mirror. The fixture keeps the
 * sample platform.yaml (kubernetes enabled), so the Kubernetes side is listed and left out.
 */

let project: FixtureProject;

beforeAll(() => {
  project = FixtureProject.empty();
  project.writeTenant(validTenant({ slug: 'acme', company: 'Acme', model: 'bridge' }));
  project.writeTenant(validTenant({ slug: 'globex', company: 'Globex', model: 'pool' }));
});

afterAll(() => project.remove());

async function plan(options: Omit<PlanStackOptions, 'root'>, env: NodeJS.ProcessEnv = process.env) {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write(chunk, _enc, done) { append(String(chunk)); done(); } });
  const code = await planStack({ root: project.root, mirror: PROVIDER_MIRROR, ...options }, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), env });
  return { code, stdout, stderr };
}

const planDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('tenancy-plan-stack-'));

test('--detailed-exitcode exits 2 for a stack with changes, prints the plan and names what is not planned', async () => {
  const before = planDirs();
  const result = await plan({ stack: 'tenant-acme', detailedExitcode: true });
  expect(result.stderr).toContain('plan: tenant-acme offline');
  expect(result.stderr).toMatch(/empty state/);
  expect(result.stderr).toMatch(/not planned offline .*helm_release\./);
  expect(result.stdout).toMatch(/Plan: \d+ to add, 0 to change, 0 to destroy/);
  expect(result.stdout).not.toContain('helm_release');
  expect(result.code).toBe(2);
  expect(planDirs()).toEqual(before);
});

test('without --detailed-exitcode a plan with changes exits 0 (a slug selects its tenant stack)', async () => {
  const result = await plan({ stack: 'globex' });
  expect(result.stdout).toMatch(/Plan: \d+ to add/);
  expect(result.code).toBe(0);
});

test('an unknown stack is an error naming it, with the nearest stack and the list', async () => {
  const result = await plan({ stack: 'tenant-acm' });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('no stack "tenant-acm" (did you mean tenant-acme?)');
  expect(result.stderr).toContain('platform-us-east-1');
  expect(result.stdout).toBe('');
});

test('a missing provider mirror is an error naming the directory and TENANCY_TF_MIRROR', async () => {
  const mirror = join(project.root, 'no-mirror');
  const result = await plan({ stack: 'tenant-acme', mirror });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`no provider mirror with hashicorp/aws at ${mirror}`);
  expect(result.stderr).toContain('TENANCY_TF_MIRROR');
});

test('terraform missing from the PATH is an error saying so', async () => {
  const result = await plan({ stack: 'tenant-acme' }, { ...process.env, PATH: join(project.root, 'empty-bin') });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('terraform is not on the PATH');
});
