/**
 * Issue 12, item 4: a worker that exits while `cdktf deploy`/`destroy` runs (its SIGTERM stop bound
 * expired) must not leave terraform running unattended, holding the tenant's state lock. The
 * command runs in its own process group and the exiting worker sends SIGTERM to the whole group,
 * so terraform (a grandchild, under cdktf) stops gracefully and releases the lock.
 *
 * Before the fix the grandchild never heard of the worker's exit and ran on.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/pool-db';

const STACK_DEPLOYER = join(repoRoot(), 'dist', 'lib', 'onboarding', 'stack-deployer.js');
let dir: string;

beforeAll(() => {
  if (!existsSync(STACK_DEPLOYER)) throw new Error(`${STACK_DEPLOYER} is missing: run \`npx tsc -p tsconfig.json\` (npm test does) before this test`);
  dir = mkdtempSync(join(tmpdir(), 'deploy-child-stop-'));
});

afterAll(() => {
  // Never leave the stand-in running, whatever happened.
  const pidFile = join(dir, 'started');
  if (existsSync(pidFile)) {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves once `file` exists (checked every 50 ms), rejects after `limitMs` naming it. */
async function appears(file: string, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a worker that exits mid-deploy sends SIGTERM to the command and the terraform under it', async () => {
  const started = join(dir, 'started');
  const terminated = join(dir, 'terminated');
  // The stand-in for terraform under cdktf: a grandchild that records its pid, then waits; on SIGTERM it records that and exits.
  const terraform = `trap 'echo term > ${terminated}; exit 0' TERM; echo $$ > ${started}.tmp; mv ${started}.tmp ${started}; sleep 600 & wait`;
  const cdktf = `bash -c "${terraform.replace(/"/g, '\\"')}"; echo cdktf-after-terraform`;
  // The worker: runs the command through runCommand, and exits (as when its stop bound expires) once the grandchild runs.
  const worker = `
    const { existsSync } = require('node:fs');
    const { runCommand } = require(${JSON.stringify(STACK_DEPLOYER)});
    runCommand('bash', ['-c', ${JSON.stringify(cdktf)}], { cwd: ${JSON.stringify(dir)}, env: {}, logFile: ${JSON.stringify(join(dir, 'deploy.log'))} }).catch(() => undefined);
    const wait = setInterval(() => { if (existsSync(${JSON.stringify(started)})) { clearInterval(wait); process.exit(1); } }, 20);
  `;
  const child = spawn(process.execPath, ['-e', worker], { stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  expect(code).toBe(1);
  await appears(terminated, 30_000);
  expect(readFileSync(terminated, 'utf8').trim()).toBe('term');
});
