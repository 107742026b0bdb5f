// Adding, editing or removing files in the repository's tenants/ or platform.yaml (the user's
// registry) changes no test's outcome. Three parts: every test file runs with a guard that makes
// reading the user's registry throw (so no test can depend on it, checked here); only the one
// shipped-sample test may copy it (checked over the test sources); and the registry-dependent
// test files, run by a child jest against a copy of the user's registry and against an edited
// copy (a tenant added, one removed, one edited, platform.yaml edited), have the same outcome
// test by test, while a broken copy fails exactly the shipped-sample test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises, readdirSync, readFileSync, rmSync, cpSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadRegistry } from '../../lib/registry/load-registry';
import { REPO_ROOT, SAMPLE_PROJECT, validTenant, type FixtureProject } from '../support/fixture-project';
import { copyUserRegistry, USER_REGISTRY_ENV } from '../support/user-registry-guard';

jest.setTimeout(900_000);

const USER_PLATFORM = join(REPO_ROOT, 'platform.yaml');
const USER_TENANTS = join(REPO_ROOT, 'tenants');
const REFUSED = /a test read the user's registry/;

describe("reading the user's registry fails in every test file", () => {
  test.each([
    ['readFileSync platform.yaml', () => readFileSync(USER_PLATFORM, 'utf8')],
    ['readFileSync a tenant file', () => readFileSync(join(USER_TENANTS, 'acme.yaml'), 'utf8')],
    ['readdirSync tenants/', () => readdirSync(USER_TENANTS)],
    ['existsSync platform.yaml', () => existsSync(USER_PLATFORM)],
    ['statSync tenants/', () => statSync(USER_TENANTS)],
    ['cpSync tenants/', () => cpSync(USER_TENANTS, '/nonexistent/never-written', { recursive: true })],
    ['a relative path from the repository root', () => readFileSync(relative(process.cwd(), USER_PLATFORM))],
    ['loadRegistry({ root: REPO_ROOT })', () => loadRegistry({ root: REPO_ROOT })],
  ])('%s', (_name, read) => {
    expect(read).toThrow(REFUSED);
  });

  test('the promise API too', async () => {
    await expect(promises.readFile(USER_PLATFORM)).rejects.toThrow(REFUSED);
  });

  test("the tests' own sample project and the generated tenant.schema.json stay readable", () => {
    expect(readdirSync(join(SAMPLE_PROJECT, 'tenants'))).toContain('acme.yaml');
    expect(readFileSync(join(USER_TENANTS, 'tenant.schema.json'), 'utf8')).toMatch(/"\$schema"/);
  });
});

/** Every .ts/.js file under test/, relative to the repository root. */
function testSources(dir = join(REPO_ROOT, 'test')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return path === join(REPO_ROOT, 'test', 'fixtures') ? [] : testSources(path);
    return /\.(ts|js)$/.test(e.name) ? [relative(REPO_ROOT, path)] : [];
  });
}

test('only the shipped-sample test (and this one) copies the user registry', () => {
  const callers = testSources().filter((f) => /\bcopyUserRegistry\s*\(/.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
  expect(callers.sort()).toEqual(['test/registry/sample-registry.test.ts', 'test/registry/user-registry-independence.test.ts', 'test/support/user-registry-guard.ts']);
});

/** The test files that read the sample registry before it had its own fixture, and the shipped-sample test. */
const REGISTRY_DEPENDENT = [
  'test/registry/sample-registry.test.ts',
  'test/registry/platform.test.ts',
  'test/registry/registry-rules.test.ts',
  'test/onboarding/request.test.ts',
  'test/stacks/tenant-stack.test.ts',
  'test/kubernetes/tenant-namespace.test.ts',
];

interface JestRun {
  readonly status: number | null;
  readonly output: string;
  readonly results: { numFailedTests: number; testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[] };
}

/** `file › test name` → passed/failed/… for every test of a run. */
const outcomes = (run: JestRun): Record<string, string> =>
  Object.fromEntries(run.results.testResults.flatMap((f) => f.assertionResults.map((a) => [`${relative(REPO_ROOT, f.name)} › ${a.fullName}`, a.status])));


/** The child jests' cache (transpiled files), shared by the runs of this file and removed after them. */
let childJestCache: string | undefined;
afterAll(() => {
  if (childJestCache) rmSync(childJestCache, { recursive: true, force: true });
});

/** Runs `files` in a child jest whose "user registry" is `registry`. */
function jestWith(registry: FixtureProject, files: readonly string[], extra: readonly string[] = []): JestRun {
  const resultsFile = join(registry.root, 'jest-results.json');
  const env: NodeJS.ProcessEnv = { ...process.env, [USER_REGISTRY_ENV]: registry.root };
  delete env.JEST_WORKER_ID;
  childJestCache ??= mkdtempSync(join(tmpdir(), 'tenancy-child-jest-'));
  const run = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), '--runInBand', '--json', `--outputFile=${resultsFile}`, `--cacheDirectory=${childJestCache}`, ...extra, ...files], {
    cwd: REPO_ROOT, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${run.stdout}\n${run.stderr}`;
  if (!existsSync(resultsFile)) throw new Error(`the child jest wrote no results (exit ${run.status}):\n${output}`);
  return { status: run.status, output, results: JSON.parse(readFileSync(resultsFile, 'utf8')) as JestRun['results'] };
}

describe('an edited copy of the user registry changes no outcome', () => {
  const copies: FixtureProject[] = [];
  afterAll(() => copies.forEach((c) => c.remove()));
  const copy = () => {
    const c = copyUserRegistry();
    copies.push(c);
    return c;
  };

  test('a tenant added, one removed, one edited and platform.yaml edited: every registry-dependent test has the same outcome', () => {
    const pristine = copy();
    const edited = copy();
    edited.writeTenant(validTenant({ slug: 'zz-newcomer', company: 'Newcomer Ltd', adminEmail: 'ops@newcomer.example', model: 'pool', plan: 'free' }));
    const tenantFiles = readdirSync(edited.tenantsDir).filter((f) => /\.yaml$/.test(f) && !f.endsWith('.values.yaml')).sort();
    const [removed, changed] = tenantFiles.filter((f) => !existsSync(join(edited.tenantsDir, f.replace(/\.yaml$/, '.values.yaml'))));
    rmSync(join(edited.tenantsDir, removed));
    const text = readFileSync(join(edited.tenantsDir, changed), 'utf8');
    edited.writeTenantFile(changed, text.replace(/^company: .*$/m, 'company: Renamed By The User'));
    expect(readFileSync(join(edited.tenantsDir, changed), 'utf8')).not.toBe(text);
    edited.setKubernetesEnabled(false);
    expect(loadRegistry({ root: edited.root }).tenants.map((t) => t.slug)).toContain('zz-newcomer'); // the edit is valid

    const before = outcomes(jestWith(pristine, REGISTRY_DEPENDENT));
    const after = outcomes(jestWith(edited, REGISTRY_DEPENDENT));
    expect(new Set(Object.keys(after).map((k) => k.split(' › ')[0]))).toEqual(new Set(REGISTRY_DEPENDENT));
    expect(after).toEqual(before);
    // The shipped-sample test did validate the edited copy (it is the one that reads it).
    expect(after['test/registry/sample-registry.test.ts › the shipped sample registry platform.yaml and tenants/ of the repository validate']).toBe('passed');
  });

  test('a broken copy fails the shipped-sample test, naming the file: that test does read it', () => {
    const broken = copy();
    broken.writeTenantFile('broken.yaml', 'slug: Not A Slug\n');
    const run = jestWith(broken, ['test/registry/sample-registry.test.ts'], ['--testNamePattern', 'shipped sample registry']);
    expect(run.status).not.toBe(0);
    expect(run.results.numFailedTests).toBe(1);
    expect(run.output).toMatch(/tenants\/broken\.yaml/);
  });
});
