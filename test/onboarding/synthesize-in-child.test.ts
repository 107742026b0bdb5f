/**
 * Synthesis in resident child processes (lib/onboarding/synthesize-in-child.ts): the compiled
 * module forks the compiled child, keeps it for the next request, survives its death, and never
 * keeps the worker's process alive.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistry } from '../../lib/registry/load-registry';
import { FixtureProject, validTenant } from '../support/fixture-project';
import { repoRoot } from '../support/pool-db';
import { assertDistIsCurrent, until } from '../support/worker-process';

type Module = typeof import('../../lib/onboarding/synthesize-in-child');
const COMPILED = join(repoRoot(), 'dist', 'lib', 'onboarding', 'synthesize-in-child.js');

let project: FixtureProject;
let out: string;
let compiled: Module;
beforeAll(() => {
  assertDistIsCurrent();
  compiled = require(COMPILED) as Module;
  project = FixtureProject.empty().setKubernetesEnabled(false);
  project.writeTenant(validTenant({ slug: 'alpha' }));
  project.writeTenant(validTenant({ slug: 'beta' }));
  out = mkdtempSync(join(tmpdir(), 'tenancy-synth-child-'));
});
afterAll(() => {
  for (const pid of compiled?.idleSynthesisChildren() ?? []) process.kill(pid, 'SIGKILL');
  project?.remove();
  if (out) rmSync(out, { recursive: true, force: true });
});

const request = (slug: string) => ({ root: project.root, outdir: join(out, slug), select: slug, registry: loadRegistry({ root: project.root }) });
const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

test('a child that answered serves the next request', async () => {
  const first = await compiled.synthesizeInChild(request('alpha'));
  const second = await compiled.synthesizeInChild(request('beta'));
  expect(first).toMatchObject({ isolated: true, stacks: ['tenant-alpha'] });
  expect(second).toMatchObject({ isolated: true, stacks: ['tenant-beta'], pid: first.pid });
  expect(existsSync(join(out, 'beta', 'stacks', 'tenant-beta', 'cdk.tf.json'))).toBe(true);
});

test('an idle child killed -9: the next request gets a new child', async () => {
  compiled.prewarmSynthesisChild();
  const [pid] = compiled.idleSynthesisChildren();
  process.kill(pid, 'SIGKILL');
  await until(async () => gone(pid), `child ${pid} ended`);
  const result = await compiled.synthesizeInChild(request('alpha'));
  expect(result.isolated).toBe(true);
  expect(result.pid).not.toBe(pid);
});

test('a child killed -9 during a request fails that request, naming the tenant; the next one succeeds', async () => {
  compiled.prewarmSynthesisChild();
  const [pid] = compiled.idleSynthesisChildren();
  const running = compiled.synthesizeInChild(request('beta')); // takes the idle child
  process.kill(pid, 'SIGKILL');
  await expect(running).rejects.toThrow(/^synthesis of beta: its child process ended \(SIGKILL\) without a result/);
  await expect(compiled.synthesizeInChild(request('beta'))).resolves.toMatchObject({ isolated: true, stacks: ['tenant-beta'] });
});

test('an idle child does not keep its parent process alive', async () => {
  const script = `require(${JSON.stringify(COMPILED)}).synthesizeInChild(${JSON.stringify({ ...request('alpha'), outdir: join(out, 'parent') })}).then((r) => console.log(JSON.stringify(r)))`;
  const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  parent.stdout.on('data', (c) => (stdout += c));
  const code = await new Promise((resolve) => parent.once('exit', resolve));
  expect(code).toBe(0);
  const result = JSON.parse(stdout);
  expect(result).toMatchObject({ isolated: true, stacks: ['tenant-alpha'] });
  // The child went with its parent.
  await until(async () => gone(result.pid), `child ${result.pid} ended with its parent`);
});
