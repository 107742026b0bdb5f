// Reproduces (issue 12, item 5): a `tenancy onboard` that failed after recording the tenant, here on
// a leftover git index.lock in the registry work tree, left the tenant `provisioning`, its job
// `queued` in the control plane but never on the queue, the registry file written but not
// committed, and the slug taken: the same request again was refused and no worker ever ran it.
// With Redis unreachable, the command hung. A worker killed while writing the registry entry left
// its hidden temporary file in tenants/ for good.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerOffboardCommand } from '../../lib/cli/offboard-command';
import { registerOnboardCommand } from '../../lib/cli/onboard-command';
import { bullJobId, LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { runCommand } from '../support/cli';
import { FAULT_EXIT_CODE, faultArgs } from '../support/fault-exit';
import { useLifecycleTestbed } from '../support/lifecycle';
import { repoRoot } from '../support/pool-db';
import { freePort } from '../support/postgres';

/**
 * Submitting is all or nothing (real PostgreSQL, Redis, git and `tenancy worker` children): the
 * control-plane record (tenant and job, one transaction) is the source of truth; `tenancy onboard`
 * and `tenancy offboard` never touch git, and whatever fails after the record (Redis unreachable)
 * is completed by the same request again or by the next worker to start. The children run
 * dist/bin/tenancy.js: `npm test` compiles the sources before jest runs.
 */
const CLI = join(repoRoot(), 'dist', 'bin', 'tenancy.js');
const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
let queue: LifecycleQueue;
let deadRedis: string;

const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });
const lastLine = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);
const request = (company: string, ...extra: string[]) =>
  ['--email', `ops@${company.toLowerCase().replace(/ /g, '')}.example`, '--company', company, '--plan', 'free', '--model', 'pool', '--region', 'us-east-1', ...extra];
const onboard = (args: string[], env: NodeJS.ProcessEnv = {}) => runCommand(registerOnboardCommand, ['onboard', ...args, '--json'], { env: bed().childEnv(env) });
const offboard = (slug: string, env: NodeJS.ProcessEnv = {}) => runCommand(registerOffboardCommand, ['offboard', slug, '--yes', '--json'], { env: bed().childEnv(env) });
/** The BullMQ state of a tenant's job, undefined when the queue does not hold it. */
const onQueue = async (kind: 'onboard' | 'offboard', tenantId: string) => (await queue.queue.getJob(bullJobId(kind, tenantId)))?.getState();
/** Hidden temporary files anywhere under tenants/. */
const tempFiles = () => readdirSync(join(bed().root, 'tenants'), { recursive: true }).map(String).filter((f) => /(^|\/)\.[^/]+\.tmp$/.test(f));

beforeAll(async () => {
  for (const file of [CLI, join(repoRoot(), 'dist', 'lib', 'onboarding', 'submit.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -p tsconfig.json\` (npm test does) before this test`);
  }
  services = bed().track(await bed().open(), (s) => s.close());
  queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
  deadRedis = `redis://127.0.0.1:${await freePort()}`; // nothing listens there
});

interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `tenancy worker --job <id>` in a child process (TEST_FAULT_EXIT: test/support/fault-exit.ts). */
function runJobChild(jobId: string, env: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // A short tenant-lock ttl: the retry takes over the killed worker's lock once it expired.
    const childEnv = bed().childEnv({ TENANCY_LOCK_TTL_MS: '5000', ...env });
    const child = spawn(process.execPath, [...faultArgs(env), CLI, 'worker', '--job', jobId, '--lock-wait', '120'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A `tenancy worker` consuming the queue; resolves once it says it is processing (after queueing recorded jobs). */
function queueWorker(env: NodeJS.ProcessEnv = {}): Promise<{ stop: () => Promise<void>; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'worker'], { env: bed().childEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let err = '';
    const stop = async () => {
      child.kill('SIGTERM');
      await exited;
    };
    child.stderr!.on('data', (c) => {
      err += String(c);
      if (/processing /.test(err)) resolve({ stop, stderr: () => err });
    });
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready: ${err}`)));
  });
}

describe('a leftover git index.lock in the registry work tree', () => {
  let tenantId: string;

  test('onboard records and queues without touching git; the same request again is that request, not a refusal', async () => {
    const lock = join(bed().root, '.git', 'index.lock');
    writeFileSync(lock, '');
    try {
      const first = await onboard(request('Locked Out', '--slug', 'locked-out'));
      expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
      const accepted = lastLine(first.stdout);
      expect(accepted).toMatchObject({ type: 'accepted', slug: 'locked-out', created: true, queue: { state: 'added' } });
      tenantId = accepted.tenantId;
      expect(await onQueue('onboard', tenantId)).toBe('waiting');
      expect(existsSync(join(bed().root, 'tenants', 'locked-out.yaml'))).toBe(false); // written by the job, not the request

      const again = await onboard(request('Locked Out', '--slug', 'locked-out'));
      expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
      expect(lastLine(again.stdout)).toMatchObject({ type: 'accepted', tenantId, created: false, job: accepted.job });

      // While the lock is there, the job's registry step fails with git's error (the queue retries it).
      const blocked = await runLifecycleJob(services, accepted.job);
      expect(blocked.outcome).toBe('failed');
      expect(blocked.error).toMatch(/index\.lock/);
      expect(await services.store.jobById(accepted.job)).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/index\.lock/) });
      // A failed attempt is still the same request: resubmitting it queues it again, never a second tenant.
      expect(lastLine((await onboard(request('Locked Out', '--slug', 'locked-out'))).stdout)).toMatchObject({ type: 'accepted', tenantId, created: false });
    } finally {
      rmSync(lock, { force: true });
    }
  });

  test('once the lock is gone, the job completes: one tenant, active, its entry committed, no temporary file', async () => {
    const [job] = await services.store.jobsOf(tenantId);
    expect(await runLifecycleJob(services, job.id)).toMatchObject({ outcome: 'succeeded' });
    expect(await cp("SELECT id::text, status FROM tenancy.tenants WHERE slug = 'locked-out'")).toEqual([{ id: tenantId, status: 'active' }]);
    expect(git('log', '--format=%s', '--', 'tenants/locked-out.yaml').trim().split('\n')).toEqual(['Tenant locked-out is active', expect.stringMatching(/^Onboard tenant locked-out /)]);
    expect(git('status', '--porcelain', '--', 'tenants').trim()).toBe('');
    expect(tempFiles()).toEqual([]);
  });
});

describe('a worker killed while writing the registry entry', () => {
  test('leaves its temporary file only until the retry, which completes the job and removes it', async () => {
    const submitted = await onboard(request('Killed Mid Write', '--slug', 'killed-mid-write'));
    expect(submitted.code).toBe(0);
    const { job, tenantId } = lastLine(submitted.stdout);

    const killed = await runJobChild(job, { TEST_FAULT_EXIT: 'registry-temp' });
    expect(killed.code).toBe(FAULT_EXIT_CODE);
    // What the kill left: the entry's temporary file.
    expect(tempFiles()).toEqual([expect.stringMatching(/^\.killed-mid-write\.yaml\..+\.tmp$/)]);

    const retried = await runJobChild(job);
    expect(retried.code).toBe(0);
    expect(lastLine(retried.stdout)).toMatchObject({ outcome: 'succeeded' });
    expect(tempFiles()).toEqual([]);
    expect(await cp('SELECT status FROM tenancy.tenants WHERE id = $1', [tenantId])).toEqual([{ status: 'active' }]);
    expect(git('status', '--porcelain', '--', 'tenants').trim()).toBe('');
  });
});

describe('Redis unreachable while submitting', () => {
  test('onboard: exit 1 naming what is recorded, at once; the same request again (no key, a generated slug) queues it, no second tenant', async () => {
    const down = await onboard(request('Queue Outage'), { TENANCY_REDIS_URL: deadRedis });
    expect(down.code).toBe(1);
    const recorded = lastLine(down.stdout);
    expect(recorded).toMatchObject({ type: 'recorded', slug: 'queue-outage', queued: false });
    expect(down.stderr).toMatch(/tenant queue-outage .* is recorded with onboard job .*, but the job could not be queued: .*Submit the same request again, or start a worker/);
    expect(await onQueue('onboard', recorded.tenantId)).toBeUndefined();
    expect(await cp("SELECT t.status AS tenant, j.status AS job FROM tenancy.tenants t JOIN tenancy.lifecycle_jobs j ON j.tenant_id = t.id WHERE t.slug LIKE 'queue-outage%'"))
      .toEqual([{ tenant: 'provisioning', job: 'queued' }]);

    const retry = await onboard(request('Queue Outage'));
    expect({ code: retry.code, stderr: retry.stderr }).toEqual({ code: 0, stderr: '' });
    expect(lastLine(retry.stdout)).toMatchObject({ type: 'accepted', tenantId: recorded.tenantId, slug: 'queue-outage', created: false, queue: { state: 'added' } });
    expect(await onQueue('onboard', recorded.tenantId)).toBe('waiting');
    expect(await cp("SELECT count(*)::int AS n FROM tenancy.tenants WHERE slug LIKE 'queue-outage%'")).toEqual([{ n: 1 }]);
  });

  test('without a resubmission, a starting `tenancy worker` queues the recorded onboarding and offboarding jobs and runs them', async () => {
    const down = await onboard(request('Healed By Worker'), { TENANCY_REDIS_URL: deadRedis });
    expect(down.code).toBe(1);
    const onboarding = lastLine(down.stdout);
    const lockedOut = (await services.controlPlane.tenantBySlug('locked-out'))!;
    const off = await offboard('locked-out', { TENANCY_REDIS_URL: deadRedis });
    expect(off.code).toBe(1);
    expect(lastLine(off.stdout)).toMatchObject({ type: 'recorded', tenantId: lockedOut.id, queued: false });
    expect(off.stderr).toMatch(/tenant locked-out .* is recorded with offboard job .*, but the job could not be queued/);
    expect(await onQueue('onboard', onboarding.tenantId)).toBeUndefined();
    expect(await onQueue('offboard', lockedOut.id)).toBeUndefined();

    const worker = await queueWorker();
    try {
      expect(worker.stderr()).toContain(`queued recorded onboard job ${onboarding.job}`);
      expect(worker.stderr()).toContain(`queued recorded offboard job ${lastLine(off.stdout).job}`);
      await queue.waitFor(bullJobId('onboard', onboarding.tenantId), 300_000);
      await queue.waitFor(bullJobId('offboard', lockedOut.id), 300_000);
    } finally {
      await worker.stop();
    }
    expect(await cp('SELECT slug, status FROM tenancy.tenants WHERE id = ANY($1::uuid[]) ORDER BY slug', [[onboarding.tenantId, lockedOut.id]]))
      .toEqual([{ slug: 'healed-by-worker', status: 'active' }, { slug: 'locked-out', status: 'offboarded' }]);
    expect(tempFiles()).toEqual([]);
    expect(git('status', '--porcelain', '--', 'tenants').trim()).toBe('');
  });

  test('a worker already running queues, on its next sweep, a job recorded after it started', async () => {
    const worker = await queueWorker({ TENANCY_WORKER_SWEEP_MS: '200' });
    try {
      const down = await onboard(request('Healed While Running'), { TENANCY_REDIS_URL: deadRedis });
      expect(down.code).toBe(1);
      const recorded = lastLine(down.stdout);
      await queue.waitFor(bullJobId('onboard', recorded.tenantId), 300_000);
      expect(worker.stderr()).toContain(`queued recorded onboard job ${recorded.job}`);
      expect(await cp('SELECT status FROM tenancy.tenants WHERE id = $1', [recorded.tenantId])).toEqual([{ status: 'active' }]);
    } finally {
      await worker.stop();
    }
  });
});
