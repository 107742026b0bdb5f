/**
 * `tenancy worker` child processes on a lifecycle testbed (compiled CLI, dist/bin/tenancy.js:
 * `npm test` compiles the sources before jest runs), with the fault preload when the
 * environment asks for a fault (test/support/fault-exit.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { faultArgs } from './fault-exit';
import type { LifecycleTestbed } from './lifecycle';
import { repoRoot } from './pool-db';

export const CLI = join(repoRoot(), 'dist', 'bin', 'tenancy.js');

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null: killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Everything written to stderr so far. */
  stderr(): string;
}

/** A `tenancy worker` consuming the queue; resolves once it says it is processing. */
export function startQueueWorker(bed: LifecycleTestbed, env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...faultArgs(env), CLI, 'worker'], { env: bed.childEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let err = '';
    const handle: WorkerProcess = { child, exited, stderr: () => err };
    child.stderr!.on('data', (c) => {
      err += String(c);
      if (/processing /.test(err)) resolve(handle);
    });
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready: ${err}`)));
  });
}

/** Waits until `condition` holds, checking every `everyMs`; throws `message` after `timeoutMs`. */
export async function until(condition: () => Promise<boolean>, message: string, timeoutMs = 120_000, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for: ${message}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The children run the compiled CLI: fail early with the fix when it is missing. */
export function assertDistIsCurrent(): void {
  for (const file of [CLI, join(repoRoot(), 'dist', 'lib', 'onboarding', 'job-runner.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -p tsconfig.json\` (npm test does) before this test`);
  }
}
