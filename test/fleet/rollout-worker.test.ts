import type { Worker } from 'bullmq';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRolloutWorker, type RolloutStackResult } from '../../lib/fleet/rollout-worker';
import { redisOptionsFromUrl } from '../../lib/onboarding/queue';
import { validTenant } from '../support/fixture-project';
import { getObject, useLocalAws } from '../support/moto';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { RolloutFleet } from '../support/rollout-fleet';
import { until } from '../support/worker-process';

/**
 * The rollout worker (lib/fleet/rollout-worker.ts) in process, against a local AWS API (moto, S3
 * state with lock files), local PostgreSQL and Redis: it fetches a stack's artifact, applies it
 * with terraform, runs the post-apply hooks, and records the row applied and the content in
 * tenancy.applied_stacks; a duplicate job does nothing; a stack whose apply fails ends failed
 * after its attempts with Terraform's error. test/fleet/rollout-worker-kill.test.ts kills one.
 */
jest.setTimeout(10 * 60_000);

// Declared first, so it runs before the services stop (afterAll hooks run in declaration order).
afterAll(async () => {
  await worker?.close();
  await fleet?.close();
});
const aws = useLocalAws();
const pg = usePostgres();
const redis = useRedis();

const BRAVO = validTenant({ id: '7a1c0a61-3b2e-4f8a-9c1d-2e3f4a5b6c01', slug: 'bravo', model: 'bridge', plan: 'pro' });
const PAPA = validTenant({ id: '7a1c0a61-3b2e-4f8a-9c1d-2e3f4a5b6c02', slug: 'papa', model: 'pool', plan: 'starter' });
const DELTA = validTenant({ id: '7a1c0a61-3b2e-4f8a-9c1d-2e3f4a5b6c03', slug: 'delta', model: 'bridge', plan: 'pro' });

let fleet: RolloutFleet;
let worker: Worker;
const results: RolloutStackResult[] = [];

beforeAll(async () => {
  fleet = await RolloutFleet.start(aws(), pg(), redis(), [BRAVO, PAPA, DELTA]);
  worker = startRolloutWorker({
    connection: redisOptionsFromUrl(redis().url),
    controlPlane: fleet.controlPlaneConfig,
    workDir: fleet.workDir('in-process'),
    env: fleet.terraformEnv,
    concurrency: 2,
    hooks: fleet.hookServices(),
    actor: 'rollout-worker-test',
    onResult: (r) => results.push(r),
  });
  await worker.waitUntilReady();
});

const appliedStack = async (stack: string) => (await fleet.cp.query('SELECT content_hash, file_hash, applied_by, applied_at FROM tenancy.applied_stacks WHERE stack = $1', [stack])).rows[0];

test('a queued bridge and pool stack are applied with terraform, their hooks run, the rows are applied and the content recorded', async () => {
  const rollout = await fleet.createRollout(['tenant-bravo', 'tenant-papa']);
  await fleet.enqueue(rollout, 'tenant-bravo');
  await fleet.enqueue(rollout, 'tenant-papa');
  await until(async () => (await fleet.row(rollout, 'tenant-bravo')).status !== 'queued' && (await fleet.row(rollout, 'tenant-bravo')).status !== 'applying'
    && !['queued', 'applying'].includes((await fleet.row(rollout, 'tenant-papa')).status), 'both stacks done', 5 * 60_000);

  for (const [stack, tenant] of [['tenant-bravo', BRAVO], ['tenant-papa', PAPA]] as const) {
    const row = await fleet.row(rollout, stack);
    expect({ stack, status: row.status, error: row.error, attempts: row.attempts }).toEqual({ stack, status: 'applied', error: null, attempts: 1 });
    expect(row.worker).toMatch(new RegExp(`:${process.pid}$`));
    expect(row.finished_at).toBeInstanceOf(Date);
    // The content the coordinator planned is what tenancy fleet plan now finds deployed.
    expect(await appliedStack(stack)).toMatchObject({ content_hash: row.content_hash, file_hash: row.file_hash, applied_by: 'rollout-worker-test' });
    // Applied for real: the state object in the bucket holds the tenant's outputs (and the bridge tenant's secret); no lock is left.
    const state = JSON.parse((await getObject(aws().endpoint, aws().stateBucket, fleet.stateKey(String(tenant.id))))!);
    expect(state.outputs.tenant_id.value).toBe(tenant.id);
    if (tenant === BRAVO) expect(state.resources.map((r: any) => r.type)).toEqual(expect.arrayContaining(['aws_secretsmanager_secret', 'aws_secretsmanager_secret_version']));
    expect(await getObject(aws().endpoint, aws().stateBucket, `${fleet.stateKey(String(tenant.id))}.tflock`)).toBeUndefined();
  }
  // The post-apply hooks ran on the local server: the bridge tenant's schema exists, both are active.
  expect(await pg().query("SELECT nspname FROM pg_namespace WHERE nspname = 'tenant_bravo'", [], 'tenants')).toEqual([{ nspname: 'tenant_bravo' }]);
  expect(await fleet.cp.query('SELECT slug, status FROM tenancy.tenants ORDER BY slug').then((r) => r.rows)).toEqual([{ slug: 'bravo', status: 'active' }, { slug: 'papa', status: 'active' }]);
  // The working directory of an applied stack is gone; its log stays.
  const work = join(fleet.workDir('in-process'), rollout, 'tenant-bravo');
  expect(existsSync(join(work, 'attempt-1'))).toBe(false);
  expect(readFileSync(join(work, 'attempt-1.log'), 'utf8')).toMatch(/Apply complete!/);
});

test('a duplicate job of an applied stack does nothing: no attempt, no terraform, the record unchanged', async () => {
  const rollout = await fleet.createRollout(['tenant-bravo']);
  await fleet.enqueue(rollout, 'tenant-bravo');
  await until(async () => (await fleet.row(rollout, 'tenant-bravo')).status === 'applied', 'tenant-bravo applied', 5 * 60_000);
  const before = await appliedStack('tenant-bravo');
  // The same job id again is ignored by BullMQ; another job for the stack (a second producer) reaches the worker.
  await fleet.enqueue(rollout, 'tenant-bravo');
  await fleet.enqueue(rollout, 'tenant-bravo', 1, `duplicate-${rollout}`);
  await until(async () => results.some((r) => r.rolloutId === rollout && r.outcome === 'already-applied'), 'the duplicate job processed', 60_000);
  expect(results.filter((r) => r.rolloutId === rollout).map((r) => r.outcome)).toEqual(['applied', 'already-applied']);
  const row = await fleet.row(rollout, 'tenant-bravo');
  expect({ status: row.status, attempts: row.attempts }).toEqual({ status: 'applied', attempts: 1 });
  expect(await appliedStack('tenant-bravo')).toEqual(before);
  expect(existsSync(join(fleet.workDir('in-process'), rollout, 'tenant-bravo', 'attempt-2.log'))).toBe(false);
});

test('a stack whose apply fails ends failed after its attempts, with the provider\'s error; nothing is recorded as applied', async () => {
  const rollout = await fleet.createRollout(['tenant-delta'], (stack, json) => {
    // A broken resource: a secret version of a secret that does not exist.
    json.resource.aws_secretsmanager_secret_version ??= {};
    json.resource.aws_secretsmanager_secret_version.broken = { secret_id: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf', secret_string: 'x' };
    return json;
  });
  await fleet.enqueue(rollout, 'tenant-delta');
  await until(async () => (await fleet.row(rollout, 'tenant-delta')).status === 'failed', 'tenant-delta failed', 5 * 60_000);
  const row = await fleet.row(rollout, 'tenant-delta');
  expect(row.attempts).toBe(3);
  expect(row.error).toMatch(/terraform apply failed/);
  expect(row.error).toMatch(/no-such-secret/);
  expect(row.finished_at).toBeInstanceOf(Date);
  expect(results.filter((r) => r.rolloutId === rollout).map((r) => r.outcome)).toEqual(['retrying', 'retrying', 'failed']);
  expect(await appliedStack('tenant-delta')).toBeUndefined();
});

test('an artifact changed after the rollout was planned is never applied: the stack fails on the hash check', async () => {
  const rollout = await fleet.createRollout(['tenant-papa']);
  // The row names other content than the object holds (a tampered or overwritten artifact).
  await fleet.cp.query("UPDATE tenancy.rollout_stacks SET file_hash = repeat('0', 64) WHERE rollout_id = $1", [rollout]);
  await fleet.enqueue(rollout, 'tenant-papa');
  await until(async () => (await fleet.row(rollout, 'tenant-papa')).status === 'failed', 'tenant-papa failed', 5 * 60_000);
  const row = await fleet.row(rollout, 'tenant-papa');
  expect(row.error).toMatch(/tampered or stale/);
  expect(existsSync(join(fleet.workDir('in-process'), rollout, 'tenant-papa', 'attempt-1.log'))).toBe(false);
});

test('a job taken before the coordinator commits its row (the add happens inside that transaction) waits for the commit and applies the stack', async () => {
  const rollout = await fleet.createRollout(['tenant-papa']);
  await fleet.cp.query("UPDATE tenancy.rollout_stacks SET status = 'pending', round = 0 WHERE rollout_id = $1", [rollout]);
  const coordinator = await fleet.cp.connect();
  try {
    // As lib/fleet/rollout-store.ts enqueueStack does: the row to queued in round 1, the job added, then the commit.
    await coordinator.query('BEGIN');
    await coordinator.query("UPDATE tenancy.rollout_stacks SET status = 'queued', round = round + 1 WHERE rollout_id = $1 AND stack = 'tenant-papa'", [rollout]);
    await fleet.enqueue(rollout, 'tenant-papa', 1);
    // The worker has the job and waits for the row: its read is blocked by this transaction's row lock.
    await until(async () => (await pg().query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%tenancy.rollout_stacks%'", [], 'control_plane')).length > 0,
      'the worker waiting for the uncommitted row', 60_000);
    await coordinator.query('COMMIT');
  } finally {
    coordinator.release();
  }
  await until(async () => !['queued', 'applying'].includes((await fleet.row(rollout, 'tenant-papa')).status), 'tenant-papa done', 5 * 60_000);
  expect(await fleet.row(rollout, 'tenant-papa')).toMatchObject({ status: 'applied', round: 1, attempts: 1, error: null });
  expect(results.filter((r) => r.rolloutId === rollout).map((r) => r.outcome)).toEqual(['applied']);
});

test('a job of a round its row has not reached (the coordinator died before its commit) waits until a coordinator commits that round', async () => {
  const rollout = await fleet.createRollout(['tenant-papa']);
  await fleet.cp.query("UPDATE tenancy.rollout_stacks SET status = 'pending', round = 0 WHERE rollout_id = $1", [rollout]);
  await fleet.enqueue(rollout, 'tenant-papa', 1);
  const job = (await fleet.queue.getJob(`rollout.${rollout}.tenant-papa.1`))!;
  // Taken and put back to wait, not completed as stale.
  await until(async () => (await job.getState()) === 'delayed', 'the job waiting for its round', 60_000);
  expect((await fleet.row(rollout, 'tenant-papa')).attempts).toBe(0);
  // The next coordinator (a resume) commits round 1 and adds the same job id, which BullMQ ignores.
  await fleet.cp.query("UPDATE tenancy.rollout_stacks SET status = 'queued', round = 1 WHERE rollout_id = $1", [rollout]);
  await fleet.enqueue(rollout, 'tenant-papa', 1);
  await until(async () => (await fleet.row(rollout, 'tenant-papa')).status === 'applied', 'tenant-papa applied', 5 * 60_000);
  expect(await fleet.row(rollout, 'tenant-papa')).toMatchObject({ status: 'applied', round: 1, attempts: 1 });
});
