// cdktf's jest matchers (toHaveResourceWithProperties, ...) for every test file; the import
// brings their type declarations into the type-check of the tests.
import 'cdktf/lib/testing/adapters/jest';
import { Testing } from 'cdktf';

Testing.setupJest();

// Tests never read the user's platform.yaml or tenants/ (test/support/user-registry-guard.ts).
import { guardUserRegistry } from './user-registry-guard';
guardUserRegistry();

// Testing.app() and Testing.fullSynth() make a temporary `cdktf.outdir.*` directory per call (in
// os.tmpdir()) and never remove it: thousands per run. They make it here in one directory per test
// file instead (also when the synth throws), removed after the file's tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
// The os core module itself (jest's sandboxed process.env does not reach os.tmpdir()); swapped
// only for the duration of one synchronous call.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const os = require('node:os') as typeof import('node:os');
let cdktfTmp: string | undefined;
function inCdktfTmp<T>(make: () => T): T {
  cdktfTmp ??= mkdtempSync(join(os.tmpdir(), 'tenancy-test-cdktf-'));
  const dir = cdktfTmp;
  const tmpdir = os.tmpdir;
  os.tmpdir = () => dir;
  try {
    return make();
  } finally {
    os.tmpdir = tmpdir;
  }
}
const testingApp = Testing.app.bind(Testing);
Testing.app = (options = {}) => inCdktfTmp(() => testingApp(options));
const fullSynth = Testing.fullSynth.bind(Testing);
Testing.fullSynth = (stack) => inCdktfTmp(() => fullSynth(stack));
afterAll(() => {
  if (cdktfTmp) rmSync(cdktfTmp, { recursive: true, force: true });
  cdktfTmp = undefined;
});
