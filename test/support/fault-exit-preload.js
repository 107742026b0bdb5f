// Fault injection for test/onboarding/fault-injection.test.ts, loaded into a `tenancy worker` child
// with `node --require <this file> dist/bin/tenancy.js worker …`: production code has no fault hook.
//
// TEST_FAULT_EXIT=<step> makes the process exit (FAULT_EXIT_CODE) right after that step is
// recorded; TEST_FAULT_EXIT=<step>:unrecorded right after its effect, before the record. The exit
// is a real process.exit, not an exception: nothing after it runs. The seam is the store's
// recordStep, which the job runner calls once a step's effect is done (lib/onboarding/job-runner.ts).
'use strict';
const { join } = require('node:path');

const FAULT_EXIT_CODE = 86;
const spec = process.env.TEST_FAULT_EXIT;
if (spec) {
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
// FAULT_EXIT_CODE is also exported by test/support/fault-exit.ts for the tests.
