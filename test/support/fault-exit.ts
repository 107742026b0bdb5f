import { join } from 'node:path';

/**
 * Fault injection into a `tenancy worker` child process, from the tests alone: the child is started
 * as `node --require FAULT_PRELOAD dist/bin/tenancy.js worker …` with TEST_FAULT_EXIT=<step> (exit
 * after the step's record) or <step>:unrecorded (after its effect, before its record). See
 * test/support/fault-exit-preload.js; production code has no such hook.
 */
export const FAULT_PRELOAD = join(__dirname, 'fault-exit-preload.js');
/** The exit code of a child killed by the preload (kept equal to FAULT_EXIT_CODE there). */
export const FAULT_EXIT_CODE = 86;
/** The child's node arguments before the CLI script. */
export const faultArgs = (env: NodeJS.ProcessEnv): string[] => (env.TEST_FAULT_EXIT || env.TEST_FAULT_SIGTERM ? ['--require', FAULT_PRELOAD] : []);
