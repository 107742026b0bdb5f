// Parallel synthesis (lib/app/synthesize-parallel.ts) through the real entry points, compiled
// (`npm start` = dist/bin/start.js, the cdktf app = dist/main.js) in fixture projects: the output
// of several processes is the output of one, byte for byte (the sample registry and a generated
// registry of 1,000 tenants); a failing slice or a synthesis process killed with SIGKILL fails the
// whole synth with an error that names the stacks, and writes nothing; one tenant, or a small
// registry, stays in one process.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { writeRegistry, type GeneratedRegistry } from '../../bench/generate-registry';
import type * as ParallelModule from '../../lib/app/synthesize-parallel';
import type * as RegistryModule from '../../lib/registry/load-registry';
import { FixtureProject, REPO_ROOT, SAMPLE_PROJECT } from '../support/fixture-project';
import { until } from '../support/worker-process';

const START = join(REPO_ROOT, 'dist', 'bin', 'start.js');
const APP = join(REPO_ROOT, 'dist', 'main.js');
/** Variables of the parent (a developer's shell, CI) that would change what the entry points do. */
const SCRUBBED = ['TENANCY_SELECT', 'CDKTF_OUTDIR', 'CDKTF_CONTEXT_JSON', 'TENANCY_DEBUG', 'NODE_OPTIONS', 'TENANCY_SYNTH_PROCESSES'];

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1', ...env };
  for (const name of SCRUBBED) if (!(name in env)) delete out[name];
  return out;
}

function run(script: string, cwd: string, env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [script], { cwd, env: childEnv(env), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectSuccess(r: Run): void {
  if (r.status !== 0) throw new Error(`exit ${r.status}\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-2000)}`);
}

/** `npm start`'s summary line says how many processes synthesized. */
const processesUsed = (r: Run) => Number(/stacks synthesized to .* \((\d+) process(?:es)?\)/.exec(r.stdout)?.[1]);

/** Every file and directory under `dir`, with each file's sha256: the whole tree, bytes included. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name);
      const rel = relative(dir, abs);
      if (lstatSync(abs).isDirectory()) {
        out[`${rel}/`] = 'dir';
        walk(abs);
      } else {
        out[rel] = createHash('sha256').update(readFileSync(abs)).digest('hex');
      }
    }
  };
  walk(dir);
  return out;
}

/** What a failed run must not leave in the project root: a new output, staging or slice directories. */
const leftovers = (root: string) => readdirSync(root).filter((n) => n.includes('staging') || n.includes('slice') || n.endsWith('.old'));

/** Synthesizes with one process and with two, and expects the same tree and the same policy notes. */
function expectSameOutput(root: string): { files: number } {
  const single = run(START, root, { TENANCY_SYNTH_PROCESSES: '1' });
  expectSuccess(single);
  expect(processesUsed(single)).toBe(1);
  renameSync(join(root, 'cdktf.out'), join(root, 'out-single'));
  const parallel = run(START, root, { TENANCY_SYNTH_PROCESSES: '2' });
  expectSuccess(parallel);
  expect(processesUsed(parallel)).toBe(2);

  const [a, b] = [tree(join(root, 'out-single')), tree(join(root, 'cdktf.out'))];
  expect(Object.keys(b)).toEqual(Object.keys(a));
  const differing = Object.keys(a).filter((f) => a[f] !== b[f]);
  expect(differing).toEqual([]);
  // The same policy warnings and suppressions, in the same order; the same summary table. (The
  // phase lines, which say how many processes and how long, differ: test/app/progress-feedback.test.ts.)
  const notes = (r: Run) => r.stderr.split('\n').filter((l) => !l.startsWith('npm start: ')).join('\n');
  expect(notes(parallel)).toBe(notes(single));
  const table = (r: Run) => r.stdout.replace(/ in [0-9.]+ s \(\d+ process(es)?\)/, '');
  expect(table(parallel)).toBe(table(single));
  expect(leftovers(root)).toEqual([]);
  return { files: Object.keys(a).length };
}

beforeAll(() => {
  // The entry points and the synthesis processes run from dist/: compile the current sources first.
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 170_000 });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`npx tsc -p tsconfig.json failed:\n${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`);
  }
  expect(existsSync(join(REPO_ROOT, 'dist', 'lib', 'app', 'synthesize-slice-child.js'))).toBe(true);
});

describe('the sample registry', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.fromSample()));
  afterEach(() => project.remove());

  test('synthesized by two processes is byte-identical to one process', () => {
    const { files } = expectSameOutput(project.root);
    expect(files).toBeGreaterThan(10);
  });

  test('one selected tenant, or a registry this small, stays in one process', () => {
    const selected = run(START, project.root, { TENANCY_SELECT: 'acme', TENANCY_SYNTH_PROCESSES: '2' });
    expectSuccess(selected);
    expect(processesUsed(selected)).toBe(1);
    expect(readdirSync(join(project.root, 'cdktf.out', 'stacks'))).toEqual(['tenant-acme']);
    // No process count given: the automatic choice keeps a registry below PARALLEL_MIN_TENANTS in one process.
    const small = run(START, project.root);
    expectSuccess(small);
    expect(processesUsed(small)).toBe(1);
  });

  test('policy errors in tenants of different slices: the same error as one process, every finding listed, nothing written', () => {
    // A public /8: valid in the registry, refused at synth time by the policy (TENANCY-K8S-3).
    for (const slug of ['globex', 'tinyco']) {
      const tenant = project.readTenant(slug);
      project.writeTenant({ ...tenant, workload: { egress: [{ cidr: '11.0.0.0/8', ports: [443] }] } });
    }
    const single = run(APP, project.root, { TENANCY_SYNTH_PROCESSES: '1' });
    const parallel = run(APP, project.root, { TENANCY_SYNTH_PROCESSES: '2' });
    expect([single.status, parallel.status]).toEqual([1, 1]);
    expect(parallel.stderr).toContain('Synthesis failed; nothing was written.');
    expect(parallel.stderr).toContain('[TENANCY-K8S-3] tenant-globex/namespace/release');
    expect(parallel.stderr).toContain('[TENANCY-K8S-3] tenant-tinyco/namespace/release');
    expect(parallel.stderr).toBe(single.stderr);
    expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
    expect(leftovers(project.root)).toEqual([]);
  });
});

describe('a generated registry of 1,000 tenants', () => {
  let work: string;
  let registry: GeneratedRegistry;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'tenancy-parallel-synth-'));
    registry = writeRegistry(join(work, 'project'), 1000, join(SAMPLE_PROJECT, 'platform.yaml'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('synthesized by two processes is byte-identical to one process', () => {
    const { files } = expectSameOutput(registry.root);
    // manifest.json, stacks/, and a directory and a file per stack (every live tenant and two platform stacks).
    expect(files).toBe(2 + 2 * (registry.liveTenants + 2));
  });

  test('a stack that fails in a slice of several tenants: the error names that tenant, nothing is written', async () => {
    // The compiled library (its processes run compiled code), given a registry from another source
    // that skipped validation: a slug the constructs refuse only when they build the stack.
    const { synthesizeParallel } = require(join(REPO_ROOT, 'dist', 'lib', 'app', 'synthesize-parallel.js')) as typeof ParallelModule;
    const { loadRegistry } = require(join(REPO_ROOT, 'dist', 'lib', 'registry', 'load-registry.js')) as typeof RegistryModule;
    const loaded = loadRegistry({ root: registry.root });
    const live = loaded.tenants.filter((t) => t.status !== 'offboarded');
    const victim = live[5].slug; // in the first slice, with dozens of others
    const bad = { ...loaded, tenants: loaded.tenants.map((t) => (t.slug === victim ? { ...t, slug: `${victim.toUpperCase()}` } : t)) };
    const outdir = join(registry.root, 'cdktf.out');
    const before = existsSync(outdir) ? tree(outdir) : undefined;
    await expect(synthesizeParallel({ root: registry.root, registry: bad, processes: 2 })).rejects.toThrow(
      new RegExp(`^synthesis of tenant ${victim.toUpperCase()} failed: .*not a safe tenant slug`),
    );
    expect(leftovers(registry.root)).toEqual([]);
    if (before) expect(tree(outdir)).toEqual(before);
    else expect(existsSync(outdir)).toBe(false);
  });

  test('a synthesis process killed with SIGKILL fails the synth, names its tenants, and leaves the previous output as it was', async () => {
    const outdir = join(registry.root, 'cdktf.out');
    const before = existsSync(outdir) ? tree(outdir) : undefined;
    const app = spawn(process.execPath, [APP], { cwd: registry.root, env: childEnv({ TENANCY_SYNTH_PROCESSES: '2' }), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    app.stderr!.on('data', (c) => (stderr += String(c)));
    const exited = new Promise<number | null>((r) => app.once('exit', (code) => r(code)));

    // Once the first slice is merged into the staging directory, the processes are synthesizing: kill one of them.
    const firstSliceMerged = () => {
      try {
        return readdirSync(registry.root)
          .filter((n) => n.includes('staging'))
          .some((s) => existsSync(join(registry.root, s, 'stacks')) && readdirSync(join(registry.root, s, 'stacks')).length > 0);
      } catch {
        return false; // the staging directory went away between the listing and the read
      }
    };
    await until(async () => firstSliceMerged() || app.exitCode !== null, 'the first slice to be merged', 150_000, 20);
    const children = readFileSync(`/proc/${app.pid}/task/${app.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    expect(children).toHaveLength(2);
    process.kill(children[0], 'SIGKILL');

    expect(await exited).toBe(1);
    expect(stderr).toContain('Synthesis failed; nothing was written.');
    expect(stderr).toMatch(new RegExp(`synthesis of .*tenants [a-z0-9-]+ to [a-z0-9-]+ \\(\\d+\\).* failed: its process ${children[0]} ended \\(SIGKILL\\) without a result`));
    expect(leftovers(registry.root)).toEqual([]);
    if (before) expect(tree(outdir)).toEqual(before);
    else expect(existsSync(outdir)).toBe(false);
    // The other process was stopped (and reaped) too.
    expect(existsSync(`/proc/${children[1]}`)).toBe(false);
  });
});
