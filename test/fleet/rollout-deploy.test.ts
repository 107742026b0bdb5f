import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { registerFleetCommand } from '../../lib/cli/fleet-command';
import { registerFleetRolloutCommand } from '../../lib/cli/fleet-rollout-command';
import { recordAppliedStack } from '../../lib/fleet/applied-stacks';
import { assignWaves } from '../../lib/fleet/waves';
import { readStackArtifact } from '../../lib/fleet/stack-artifact';
import { runCommand } from '../support/cli';
import { validTenant } from '../support/fixture-project';
import { getObject, putObject, useLocalAws } from '../support/moto';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { RolloutFleet } from '../support/rollout-fleet';
import { assertDistIsCurrent } from '../support/worker-process';

/**
 * Acceptance of fleet rollouts (issue 14, items 2 and 3) against a local AWS API (moto, S3 state
 * with lock files), local PostgreSQL and Redis: 42 bridge and pool tenants deployed by
 * `tenancy fleet deploy` in waves (a canary, then 10/50/100%) by three `tenancy worker`
 * processes; a change to some tenants' entries → `fleet plan` lists only those stacks and the
 * next rollout redeploys only them; a fault in one stack of its second wave stops it before the
 * third (`fleet status` says so); after the fix, `fleet resume` finishes it without redoing
 * applied stacks. Runs the compiled CLI for the workers (`npx tsc -p tsconfig.json` first).
 */
jest.setTimeout(40 * 60_000);

// Declared first, so it runs before the services stop (afterAll hooks run in declaration order).
afterAll(() => fleet?.close());
const aws = useLocalAws();
const pg = usePostgres();
const redis = useRedis();

const BRIDGES = 36;
const POOLS = 6;
const id = (n: number) => `7c3e0a61-3b2e-4f8a-9c1d-${String(n).padStart(12, '0')}`;
const TENANTS = [
  ...Array.from({ length: BRIDGES }, (_, i) => validTenant({ id: id(i + 1), slug: `bridge-${String(i + 1).padStart(2, '0')}`, model: 'bridge', plan: 'pro' })),
  ...Array.from({ length: POOLS }, (_, i) => validTenant({ id: id(100 + i + 1), slug: `pool-${String(i + 1).padStart(2, '0')}`, model: 'pool', plan: 'starter' })),
];
const WAVES = '10,50,100';
/** A planted lock fails an apply after this wait (instead of the default 10m). */
const LOCK_TIMEOUT = '5s';

let fleet: RolloutFleet;
const timings: Record<string, number> = {};

beforeAll(async () => {
  assertDistIsCurrent();
  const started = Date.now();
  fleet = await RolloutFleet.start(aws(), pg(), redis(), TENANTS);
  // The platform stack stands in (its outputs are the test's): recorded as applied, so it is not part of the rollouts.
  await recordAppliedStack(fleet.cp, readStackArtifact(fleet.deploy.runner.outdir, 'platform-us-east-1'), 'rollout-deploy-test');
  await Promise.all(['w1', 'w2', 'w3'].map((w) => fleet.startWorkerProcess(w, { TENANCY_ROLLOUT_LOCK_TIMEOUT: LOCK_TIMEOUT })));
  timings.setup = Date.now() - started;
});

afterAll(() => {
  process.stderr.write(`rollout-deploy timings (ms): ${JSON.stringify(timings)}\n`);
});

const cliEnv = () => ({ ...fleet.terraformEnv, TENANCY_CONTROL_PLANE_URL: fleet.controlPlaneUrl, TENANCY_REDIS_URL: fleet.redis.url, TENANCY_ROOT: fleet.deploy.project.root, TENANCY_ACTOR: 'rollout-deploy-test' });
const fleetCli = async (args: string[]) => runCommand((p, io) => { registerFleetCommand(p, io); registerFleetRolloutCommand(p, io); }, ['fleet', ...args], { env: cliEnv() });
const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));

async function plan(): Promise<Record<string, string[]>> {
  const run = await fleetCli(['plan', '--json']);
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const byChange: Record<string, string[]> = {};
  for (const s of jsonLines(run.stdout).filter((l) => l.type === 'stack')) (byChange[s.change] ??= []).push(s.stack);
  return byChange;
}

async function status(): Promise<any> {
  const run = await fleetCli(['status', '--json']);
  expect(run).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(run.stdout);
}

const applied = async () => new Map((await fleet.cp.query('SELECT stack, content_hash, applied_at FROM tenancy.applied_stacks WHERE destroyed_at IS NULL')).rows.map((r) => [r.stack, r]));
const tenantStacks = TENANTS.map((t) => `tenant-${t.slug}`);

test('42 tenants are deployed in waves (canary, 10%, 50%, 100%) by three worker processes; every stack applied once, its hooks run', async () => {
  expect((await plan()).new?.sort()).toEqual([...tenantStacks].sort());
  const started = Date.now();
  const run = await fleetCli(['deploy', '--json', '--waves', WAVES, '--parallel', '6', '--max-failures', '0', '--canary', 'bridge-01']);
  timings.firstRollout = Date.now() - started;
  // (stdout's end shown when it did not finish: the coordinator's last events)
  expect({ code: run.code, stderr: run.stderr, stdout: run.code === 0 ? '' : run.stdout.slice(-3000) }).toEqual({ code: 0, stderr: '', stdout: '' });

  const s = await status();
  expect(s.rollout.status).toBe('finished');
  expect(s.waves.map((w: any) => [w.name, w.total, w.applied, w.failed])).toEqual([['canary', 1, 1, 0], ['10%', 5, 5, 0], ['50%', 16, 16, 0], ['100%', 20, 20, 0]]);
  expect(s.stacks.filter((x: any) => x.status !== 'applied' || x.attempts !== 1)).toEqual([]);
  expect(s.stacks.find((x: any) => x.stack === 'tenant-bridge-01').wave).toBe(0);
  // The work was spread: every worker process applied stacks.
  expect(new Set(s.stacks.map((x: any) => x.worker.split(':')[1])).size).toBe(3);
  // Waves ran in order: no stack of a wave started before the previous wave's last stack finished.
  for (let w = 1; w < s.waves.length; w++) {
    const previousEnd = Math.max(...s.stacks.filter((x: any) => x.wave === w - 1).map((x: any) => Date.parse(x.finishedAt)));
    const start = Math.min(...s.stacks.filter((x: any) => x.wave === w).map((x: any) => Date.parse(x.startedAt)));
    expect(start).toBeGreaterThanOrEqual(previousEnd);
  }
  // Applied for real, hooks run: states in the bucket, schemas and tenants on the local server.
  for (const t of [TENANTS[0], TENANTS[BRIDGES]]) expect(JSON.parse((await getObject(aws().endpoint, aws().stateBucket, fleet.stateKey(String(t.id))))!).outputs.tenant_id.value).toBe(t.id);
  expect((await pg().query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE 'tenant_bridge_%'", [], 'tenants'))[0].n).toBe(BRIDGES);
  expect((await fleet.cp.query("SELECT count(*)::int AS n FROM tenancy.tenants WHERE status = 'active'")).rows[0].n).toBe(TENANTS.length);
  expect(await plan()).toEqual({ unchanged: expect.arrayContaining([...tenantStacks, 'platform-us-east-1']) });
});

test('a change to some tenants\' entries: the plan lists only their stacks; a fault in the second wave stops the rollout before the third; after the fix, resume finishes it without redoing applied stacks', async () => {
  const before = await applied();
  // The pool tenants and two bridge tenants move to another plan (tags and outputs of their stacks change).
  const changedTenants = [...TENANTS.filter((t) => t.model === 'pool'), TENANTS[4], TENANTS[9]];
  for (const t of changedTenants) fleet.deploy.project.writeTenant({ ...t, plan: 'enterprise' });
  fleet.deploy.synth();
  const changed = changedTenants.map((t) => `tenant-${t.slug}`).sort();
  const planned = await plan();
  expect(planned.changed.sort()).toEqual(changed);
  expect(planned.unchanged).toHaveLength(TENANTS.length + 1 - changed.length);
  expect(planned.new).toBeUndefined();

  // The waves this rollout will have (assignWaves is deterministic): a fault in one stack of the second.
  const waves = assignWaves(changed, { canary: [], percents: [10, 50, 100] });
  expect(waves.map((w) => w.keys.length)).toEqual([1, 3, 4]);
  const faulty = waves[1].keys[0];
  const faultyTenant = changedTenants.find((t) => `tenant-${t.slug}` === faulty)!;
  // The fault: a foreign lock on its state (another apply that never released it).
  const lockKey = `${fleet.stateKey(String(faultyTenant.id))}.tflock`;
  await putObject(aws().endpoint, aws().stateBucket, lockKey, JSON.stringify({ ID: 'a0a0a0a0-0000-4000-8000-000000000000', Operation: 'OperationTypeApply', Who: 'someone@elsewhere', Version: '1.11.4', Created: new Date().toISOString(), Path: lockKey }));

  let started = Date.now();
  const stopped = await fleetCli(['deploy', '--json', '--waves', WAVES, '--parallel', '6', '--max-failures', '0']);
  timings.secondRolloutUntilStop = Date.now() - started;
  expect(stopped.code).toBe(1);
  const atStop = await status();
  expect(atStop.rollout.status).toBe('stopped');
  expect(atStop.rollout.stopReason).toMatch(new RegExp(`wave 1 \\(50%\\): 1 of 3 stacks failed.*${faulty}`));
  expect(atStop.waves.map((w: any) => [w.name, w.applied, w.failed, w.pending])).toEqual([['10%', 1, 0, 0], ['50%', 2, 1, 0], ['100%', 0, 0, 4]]);
  const failedRow = atStop.stacks.find((x: any) => x.stack === faulty);
  expect({ status: failedRow.status, attempts: failedRow.attempts }).toEqual({ status: 'failed', attempts: 3 });
  expect(failedRow.error).toMatch(/Error acquiring the state lock/);
  // Only the changed stacks are part of it.
  expect(atStop.stacks.map((x: any) => x.stack).sort()).toEqual(changed);

  // The fix: the stale lock removed (terraform force-unlock); then resume.
  const s3 = new S3Client({ region: 'us-east-1', endpoint: aws().endpoint, forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: aws().stateBucket, Key: lockKey }));
  } finally {
    s3.destroy();
  }
  expect(await getObject(aws().endpoint, aws().stateBucket, lockKey)).toBeUndefined();
  started = Date.now();
  const resumed = await fleetCli(['resume', '--json']);
  timings.resume = Date.now() - started;
  expect({ code: resumed.code, stderr: resumed.stderr, stdout: resumed.code === 0 ? '' : resumed.stdout.slice(-3000) }).toEqual({ code: 0, stderr: '', stdout: '' });

  const done = await status();
  expect(done.rollout.status).toBe('finished');
  expect(done.stacks.filter((x: any) => x.status !== 'applied')).toEqual([]);
  for (const x of done.stacks) {
    const atStopRow = atStop.stacks.find((y: any) => y.stack === x.stack);
    // Applied before the stop: not redone. The failed one: queued again (round 2), applied at its first attempt of that round (attempts count both rounds).
    if (atStopRow.status === 'applied') expect({ stack: x.stack, attempts: x.attempts, round: x.round, finishedAt: x.finishedAt }).toEqual({ stack: x.stack, attempts: 1, round: 1, finishedAt: atStopRow.finishedAt });
    else if (x.stack === faulty) expect({ attempts: x.attempts, round: x.round, error: x.error }).toEqual({ attempts: 4, round: 2, error: null });
    else expect({ stack: x.stack, attempts: x.attempts, round: x.round }).toEqual({ stack: x.stack, attempts: 1, round: 1 });
  }
  // Only the changed stacks were redeployed: the others' records are those of the first rollout.
  const after = await applied();
  for (const stack of tenantStacks) {
    if (changed.includes(stack)) expect(after.get(stack)!.content_hash).not.toBe(before.get(stack)!.content_hash);
    else expect(after.get(stack)).toEqual(before.get(stack));
  }
  expect((await fleet.cp.query("SELECT count(*)::int AS n FROM tenancy.tenants WHERE plan = 'enterprise' AND status = 'active'")).rows[0].n).toBe(changed.length);
  expect(await plan()).toEqual({ unchanged: expect.arrayContaining([...tenantStacks, 'platform-us-east-1']) });
});
