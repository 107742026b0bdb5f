// Fault injection for test/onboarding/fault-injection.test.ts, loaded into a `tenancy worker` child
// with `node --require <this file> dist/bin/tenancy.js worker …`: production code has no fault hook.
//
// TEST_FAULT_EXIT=<step> makes the process exit (FAULT_EXIT_CODE) right after that step is
// recorded; TEST_FAULT_EXIT=<step>:unrecorded right after its effect, before the record. The exit
// is a real process.exit, not an exception: nothing after it runs. The seam is the store's
// recordStep, which the job runner calls once a step's effect is done (lib/onboarding/job-runner.ts).
// TEST_FAULT_EXIT=registry-temp exits in the middle of writing a registry entry (its temporary
// file written, not yet in place).
'use strict';
const { join } = require('node:path');

const FAULT_EXIT_CODE = 86;
const spec = process.env.TEST_FAULT_EXIT;
if (spec === 'registry-temp') {
  // A worker killed while writing a registry entry: exit once the entry's temporary file is
  // written, before it is linked or renamed into place (lib/onboarding/directory-registry-source.ts).
  const fs = require('node:fs');
  for (const name of ['linkSync', 'renameSync']) {
    const original = fs[name];
    fs[name] = function (from, ...rest) {
      if (/[\\/]tenants[\\/](?:.*[\\/])?\.[^\\/]+\.tmp$/.test(String(from))) process.exit(FAULT_EXIT_CODE);
      return original.call(this, from, ...rest);
    };
  }
} else if (spec) {
  const [step, when] = spec.split(':');
  const recorded = when !== 'unrecorded';
  const { LifecycleStore } = require(join(__dirname, '..', '..', 'dist', 'lib', 'onboarding', 'lifecycle-store.js'));
  const recordStep = LifecycleStore.prototype.recordStep;
  LifecycleStore.prototype.recordStep = async function (job, name, ...rest) {
    if (name === step && !recorded) process.exit(FAULT_EXIT_CODE);
    const out = await recordStep.call(this, job, name, ...rest);
    if (name === step && recorded) process.exit(FAULT_EXIT_CODE);
    return out;
  };
}
// TEST_FAULT_SIGTERM=<step> sends this process SIGTERM right after that step is recorded (as an
// orchestrator stopping the worker mid-job would), for test/reliability/worker-sigterm.test.ts.
const sigtermAfter = process.env.TEST_FAULT_SIGTERM;
if (sigtermAfter) {
  const { LifecycleStore } = require(join(__dirname, '..', '..', 'dist', 'lib', 'onboarding', 'lifecycle-store.js'));
  const recordStep = LifecycleStore.prototype.recordStep;
  LifecycleStore.prototype.recordStep = async function (job, name, ...rest) {
    const out = await recordStep.call(this, job, name, ...rest);
    if (name === sigtermAfter) process.kill(process.pid, 'SIGTERM');
    return out;
  };
}
// FAULT_EXIT_CODE is also exported by test/support/fault-exit.ts for the tests.
