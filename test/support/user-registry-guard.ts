/**
 * Tests never read the user's registry: the repository's `platform.yaml` and `tenants/` belong
 * to whoever cloned it, and adding, editing or removing a tenant there must not change any
 * test's outcome. Loaded for every test file by test/support/setup.ts, this makes every read of
 * those files through `fs` throw (in-process: what tests and the library code they call read).
 * Tests use the committed fixtures in test/fixtures/sample-project/ (SAMPLE_PROJECT) instead.
 *
 * The one exception is {@link copyUserRegistry}, used by exactly one test (the shipped sample
 * registry validates) and checked by test/registry/user-registry-independence.test.ts.
 * `tenants/tenant.schema.json` is generated from the schemas (`npm run schema`), not edited by
 * users, and stays readable for the check that it is up to date.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FixtureProject, REPO_ROOT } from './fixture-project';

// The fs core module itself: jest gives every test file the same object, so the guard is
// installed once per worker and its state lives on that object, not in this module (one
// instance per test file).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs') as typeof import('node:fs') & Record<symbol, GuardState | undefined>;

/**
 * Where the one shipped-sample test finds "the user's registry": the repository root unless
 * `TENANCY_TEST_USER_REGISTRY` names another project directory (the independence test points
 * it at an edited copy to show that such edits change no outcome).
 */
export const USER_REGISTRY_ENV = 'TENANCY_TEST_USER_REGISTRY';

interface GuardState {
  /** > 0 while copyUserRegistry() copies. */
  allowed: number;
}

const STATE = Symbol.for('tenancy.test.userRegistryGuard');
const PLATFORM_FILE = join(REPO_ROOT, 'platform.yaml');
const TENANTS_DIR = join(REPO_ROOT, 'tenants');
const GENERATED_SCHEMA = join(TENANTS_DIR, 'tenant.schema.json');

/** Whether `path` is (in) the user's registry. */
export function isUserRegistryPath(path: unknown): boolean {
  let p: string;
  if (typeof path === 'string') p = path;
  else if (Buffer.isBuffer(path)) p = path.toString();
  else if (path instanceof URL && path.protocol === 'file:') p = fileURLToPath(path);
  else return false; // a file descriptor
  p = resolve(p);
  if (p === GENERATED_SCHEMA) return false;
  return p === PLATFORM_FILE || p === TENANTS_DIR || p.startsWith(`${TENANTS_DIR}/`);
}

// Every fs entry point whose first argument is a path that is read (or listed, or copied from).
const GUARDED = [
  'readFileSync', 'readFile', 'readdirSync', 'readdir', 'opendirSync', 'opendir', 'openSync', 'open',
  'existsSync', 'statSync', 'stat', 'lstatSync', 'lstat', 'accessSync', 'access', 'realpathSync',
  'cpSync', 'cp', 'copyFileSync', 'copyFile', 'createReadStream', 'watch', 'watchFile',
] as const;
const GUARDED_PROMISES = ['readFile', 'readdir', 'opendir', 'open', 'stat', 'lstat', 'access', 'realpath', 'cp', 'copyFile'] as const;

function refuse(path: unknown): Error {
  return new Error(
    `a test read the user's registry (${String(path)}): tests must not depend on the repository's platform.yaml or tenants/, ` +
      'which users edit. Use FixtureProject.fromSample()/empty() or loadSampleRegistry() (test/fixtures/sample-project).',
  );
}

function install(state: GuardState): void {
  const wrap = (target: Record<string, unknown>, name: string, promised: boolean) => {
    const original = target[name];
    if (typeof original !== 'function') return;
    const guarded = function (this: unknown, ...args: unknown[]) {
      if (state.allowed === 0 && isUserRegistryPath(args[0])) {
        if (promised) return Promise.reject(refuse(args[0]));
        throw refuse(args[0]);
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    Object.defineProperties(guarded, Object.getOwnPropertyDescriptors(original)); // e.g. realpathSync.native
    target[name] = guarded;
  };
  for (const name of GUARDED) wrap(fs as unknown as Record<string, unknown>, name, false);
  for (const name of GUARDED_PROMISES) wrap(fs.promises as unknown as Record<string, unknown>, name, true);
}

function guardState(): GuardState {
  let state = fs[STATE];
  if (!state) {
    state = { allowed: 0 };
    fs[STATE] = state;
    install(state);
  }
  return state;
}

/** Installs the guard (once per process); setup.ts calls it for every test file. */
export function guardUserRegistry(): void {
  guardState();
}

/**
 * A temporary copy of the user's registry (platform.yaml and tenants/, see
 * {@link USER_REGISTRY_ENV}). Only for the one test that checks the shipped sample validates:
 * user-registry-independence.test.ts fails if any other test calls it.
 */
export function copyUserRegistry(): FixtureProject {
  const source = process.env[USER_REGISTRY_ENV] ? resolve(process.env[USER_REGISTRY_ENV]) : REPO_ROOT;
  const state = guardState();
  const project = FixtureProject.empty();
  state.allowed += 1;
  try {
    fs.cpSync(join(source, 'platform.yaml'), join(project.root, 'platform.yaml'));
    fs.cpSync(join(source, 'tenants'), project.tenantsDir, { recursive: true });
    return project;
  } catch (e) {
    project.remove();
    throw e;
  } finally {
    state.allowed -= 1;
  }
}
