import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { validTenant } from '../support/fixture-project';
import { getObject, useLocalAws } from '../support/moto';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { RolloutFleet } from '../support/rollout-fleet';
import { assertDistIsCurrent, until } from '../support/worker-process';

/**
 * A `tenancy worker` process killed (SIGKILL) while its terraform apply of a rollout stack runs
 * loses nothing: BullMQ's stalled-job check hands the job to another worker process, whose apply
 * waits on the S3 state lock that the orphaned apply still holds (never two applies of one stack
 * at once), then finds nothing left to do; the stack ends applied once, with a valid state.
 * Runs the compiled CLI (dist/): `npx tsc -p tsconfig.json` first (npm test does).
 */
jest.setTimeout(10 * 60_000);

// Declared first, so it runs before the services stop (afterAll hooks run in declaration order).
afterAll(() => fleet?.close());
const aws = useLocalAws();
const pg = usePostgres();
const redis = useRedis();

const KILO = validTenant({ id: '7b2d0a61-3b2e-4f8a-9c1d-2e3f4a5b6c11', slug: 'kilo', model: 'bridge', plan: 'pro' });
/** A short BullMQ lock, so a dead worker's job is handed on in seconds. */
const LOCK_MS = '2000';

let fleet: RolloutFleet;
beforeAll(async () => {
  assertDistIsCurrent();
  fleet = await RolloutFleet.start(aws(), pg(), redis(), [KILO]);
});

/** Process groups of terraform processes whose working directory is `dir` (Linux /proc). */
function terraformGroupsIn(dir: string): number[] {
  const groups = new Set<number>();
  for (const p of readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e))) {
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'terraform' || readlinkSync(`/proc/${p}/cwd`) !== dir) continue;
      // Field 5 of /proc/<pid>/stat is the process group (after the parenthesized command name).
      groups.add(Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[2]));
    } catch {
      // exited meanwhile
    }
  }
  return [...groups];
}

test('a worker killed mid-apply: another worker retries the job after the stalled check, waits for the state lock, and the stack is applied once', async () => {
  const rollout = await fleet.createRollout(['tenant-kilo']);
  const lockKey = `${fleet.stateKey(String(KILO.id))}.tflock`;
  const first = await fleet.startWorkerProcess('first', { TENANCY_QUEUE_LOCK_MS: LOCK_MS });
  await fleet.enqueue(rollout, 'tenant-kilo');

  // The first worker's apply holds the state lock: its lock object exists.
  await until(async () => (await getObject(aws().endpoint, aws().stateBucket, lockKey)) !== undefined, `the lock object ${lockKey}`, 5 * 60_000, 50);
  const firstDir = join(fleet.workDir('first'), 'rollouts', rollout, 'tenant-kilo', 'attempt-1');
  const orphans = terraformGroupsIn(firstDir);
  expect(orphans).toHaveLength(1);
  // Paused, so that it still holds the lock while the retry runs, however fast it would be.
  for (const g of orphans) process.kill(-g, 'SIGSTOP');
  try {
    const lockBefore = await getObject(aws().endpoint, aws().stateBucket, lockKey);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    expect((await fleet.row(rollout, 'tenant-kilo')).status).toBe('applying');

    const second = await fleet.startWorkerProcess('second', { TENANCY_QUEUE_LOCK_MS: LOCK_MS });
    // BullMQ finds the job stalled and hands it on: the second worker claims attempt 2 ...
    await until(async () => (await fleet.row(rollout, 'tenant-kilo')).attempts === 2, 'the second attempt', 2 * 60_000);
    const secondLog = join(fleet.workDir('second'), 'rollouts', rollout, 'tenant-kilo', 'attempt-2.log');
    // ... and its apply waits for the state lock the orphaned apply holds.
    await until(async () => existsSync(secondLog) && /Acquiring state lock/.test(readFileSync(secondLog, 'utf8')), 'the second apply waiting for the lock', 2 * 60_000);
    const waiting = await fleet.row(rollout, 'tenant-kilo');
    expect({ status: waiting.status, worker: waiting.worker }).toEqual({ status: 'applying', worker: expect.stringMatching(new RegExp(`:${second.pid}$`)) });
    expect(await getObject(aws().endpoint, aws().stateBucket, lockKey)).toBe(lockBefore);
    expect(readFileSync(secondLog, 'utf8')).not.toMatch(/Apply complete/);

    // The orphaned apply goes on, finishes and releases the lock; the retry then applies what is left: nothing.
    for (const g of orphans.splice(0)) process.kill(-g, 'SIGCONT');
    await until(async () => (await fleet.row(rollout, 'tenant-kilo')).status === 'applied', 'tenant-kilo applied', 5 * 60_000);
    expect(readFileSync(join(fleet.workDir('first'), 'rollouts', rollout, 'tenant-kilo', 'attempt-1.log'), 'utf8')).toMatch(/Apply complete! Resources: [1-9][0-9]* added, 0 changed, 0 destroyed/);
    expect(readFileSync(secondLog, 'utf8')).toMatch(/Apply complete! Resources: 0 added, 0 changed, 0 destroyed/);
    const row = await fleet.row(rollout, 'tenant-kilo');
    expect({ status: row.status, attempts: row.attempts, error: row.error }).toEqual({ status: 'applied', attempts: 2, error: null });
    expect((await fleet.cp.query('SELECT content_hash FROM tenancy.applied_stacks WHERE stack = $1', ['tenant-kilo'])).rows).toEqual([{ content_hash: row.content_hash }]);
    // A valid state, no lock left; the hooks ran (the schema exists).
    expect(await getObject(aws().endpoint, aws().stateBucket, lockKey)).toBeUndefined();
    const state = JSON.parse((await getObject(aws().endpoint, aws().stateBucket, fleet.stateKey(String(KILO.id))))!);
    expect(state.outputs.tenant_id.value).toBe(KILO.id);
    expect(state.resources.filter((r: any) => r.type === 'aws_secretsmanager_secret')).toHaveLength(1);
    expect(await pg().query("SELECT nspname FROM pg_namespace WHERE nspname = 'tenant_kilo'", [], 'tenants')).toEqual([{ nspname: 'tenant_kilo' }]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  } finally {
    for (const g of orphans) process.kill(-g, 'SIGCONT');
  }
});
