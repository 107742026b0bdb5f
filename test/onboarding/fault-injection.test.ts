import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { bullJobId, LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { ONBOARDING_STEPS } from '../../lib/onboarding/step-names';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { FAULT_EXIT_CODE, faultArgs } from '../support/fault-exit';
import { repoRoot } from '../support/pool-db';
import { useLifecycleTestbed } from '../support/lifecycle';

/**
 * Fault injection: a `tenancy worker --job <id>` child process is killed (a real process.exit,
 * TEST_FAULT_EXIT through the test's own preload, test/support/fault-exit.ts) after each onboarding step in turn, then a new child retries the job. Bridge
 * tenants die after a step's effect and *before* its record (the retry runs the step again);
 * pool tenants after the record (the retry resumes after it). Every retry completes the job, and
 * each tenant ends with exactly one Stripe customer, one subscription, one schema (bridge), one
 * registry file and one `active` control-plane record.
 *
 * The children run dist/bin/tenancy.js: `npm test` compiles the sources before jest runs.
 */
const CLI = join(repoRoot(), 'dist', 'bin', 'tenancy.js');
const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const STEPS = ONBOARDING_STEPS.filter((s) => s !== 'escalation'); // plan pro: no escalation step

beforeAll(async () => {
  assertDistIsCurrent();
  services = bed().track(await bed().open(), (s) => s.close());
});

interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function worker(jobId: string, env: NodeJS.ProcessEnv = {}, args: readonly string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...faultArgs(env), CLI, 'worker', '--job', jobId, ...args], { env: bed().childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const jobLine = (r: ChildResult) => JSON.parse(r.stdout.trim().split('\n').pop()!);

// The killed worker's tenant lock is never broken: it expires after its ttl (short here; production
// 30 s), which the retry waits for (--lock-wait).
const KILLED_LOCK_TTL = { TENANCY_LOCK_TTL_MS: '5000' };

async function killThenRetry(s: SubmittedOnboarding, fault: string): Promise<{ killed: ChildResult; retried: ChildResult }> {
  const killed = await worker(s.job.id, { ...KILLED_LOCK_TTL, TEST_FAULT_EXIT: fault });
  const retried = await worker(s.job.id, {}, ['--lock-wait', '120']);
  return { killed, retried };
}

async function expectExactlyOnce(s: SubmittedOnboarding, model: 'bridge' | 'pool'): Promise<void> {
  const stripe = bed().stripeClient();
  const customers = (await stripe.customers.search({ query: `metadata['tenant_id']:'${s.tenantId}'` })).data;
  expect(customers).toHaveLength(1);
  const subs = (await stripe.subscriptions.list({ customer: customers[0].id, status: 'all' })).data;
  expect(subs.map((x) => x.status)).toEqual(['active']);
  expect(await bed().pg.query('SELECT slug, status FROM tenancy.tenants WHERE id = $1', [s.tenantId], 'control_plane')).toEqual([{ slug: s.slug, status: 'active' }]);
  expect(readdirSync(join(bed().root, 'tenants')).filter((f) => f === `${s.slug}.yaml` || f.includes(s.slug))).toEqual([`${s.slug}.yaml`]);
  if (model === 'bridge') {
    const schemas = await bed().pg.query('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`tenant_${s.slug.replace(/-/g, '_')}%`], 'tenants');
    expect(schemas).toEqual([{ nspname: `tenant_${s.slug.replace(/-/g, '_')}` }]);
  }
  expect((await services.store.outbox(s.tenantId)).map((e) => e.eventType)).toEqual(['tenant.created']);
  expect(bed().smtp!.messages.filter((m) => m.header('message-id') === `<welcome.${s.tenantId}@saas.example.com>`).length).toBeGreaterThanOrEqual(1);
}

describe.each([
  ['bridge', ':unrecorded', 'after its effect, before its record'],
  ['pool', '', 'after its record'],
] as const)('%s tenants: the worker dies after each step …', (model, suffix, when) => {
  const tenants = new Map<string, SubmittedOnboarding>();
  const outcomes = new Map<string, { killed: ChildResult; retried: ChildResult }>();

  beforeAll(async () => {
    for (const step of STEPS) {
      const s = await submitOnboarding(services, noQueue, { email: `ops@${model}-${step}.example`, company: `Fault ${model} ${step}`, plan: 'pro', model, region: 'us-east-1', paymentMethod: 'pm_card_visa' });
      tenants.set(step, s);
    }
    // Three tenants at a time: each is killed and retried in its own child processes.
    const limit = pLimit(3);
    await Promise.all(STEPS.map((step) => limit(async () => outcomes.set(step, await killThenRetry(tenants.get(step)!, `${step}${suffix}`)))));
  }, 600_000);

  test.each(STEPS.map((s) => [s]))(`… %s (${when}): killed, the retry completes the job, everything exists exactly once`, async (step) => {
    const { killed, retried } = outcomes.get(step)!;
    expect({ code: killed.code, stdout: killed.stdout }).toEqual({ code: FAULT_EXIT_CODE, stdout: '' });
    expect(retried.stderr).not.toMatch(/Error/);
    expect(retried.code).toBe(0);
    const result = jobLine(retried);
    const position = STEPS.indexOf(step);
    expect(result.outcome).toBe('succeeded');
    // Unrecorded: the step itself runs again; recorded: the retry starts after it.
    const resumedUpTo = suffix === ':unrecorded' ? position : position + 1;
    expect(result.resumed).toEqual(STEPS.slice(0, resumedUpTo));
    expect(result.ran).toEqual(STEPS.slice(resumedUpTo));
    const s = tenants.get(step)!;
    await expectExactlyOnce(s, model);
    const job = (await services.store.jobById(s.job.id))!;
    expect(job).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect((await services.store.steps(s.job.id)).map((r) => r.step)).toEqual(STEPS);
  });
});

describe('a queue worker that dies mid-job', () => {
  test('BullMQ hands the job to another worker once the dead one\'s locks expired; that worker completes it', async () => {
    const queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
    const s = await submitOnboarding(services, queue, { email: 'ops@queue-crash.example', company: 'Queue Crash', plan: 'pro', model: 'pool', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
    // A short BullMQ lock and tenant lock so the takeover happens within the test (production: 30 s each).
    const env = { TENANCY_QUEUE_LOCK_MS: '1000', TENANCY_LOCK_TTL_MS: '3000' };
    const first = await queueWorker({ ...env, TEST_FAULT_EXIT: 'provision' });
    expect(await first.exited).toBe(FAULT_EXIT_CODE);
    const second = await queueWorker(env);
    try {
      await queue.waitFor(bullJobId('onboard', s.tenantId), 120_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
    expect(await services.store.jobById(s.job.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
    await expectExactlyOnce(s, 'pool');
  });
});

/** A `tenancy worker` consuming the queue; resolves once it is ready. */
function queueWorker(env: NodeJS.ProcessEnv): Promise<{ child: ReturnType<typeof spawn>; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...faultArgs(env), CLI, 'worker'], { env: bed().childEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let err = '';
    child.stderr!.on('data', (c) => {
      err += String(c);
      if (/processing /.test(err)) resolve({ child, exited });
    });
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready: ${err}`)));
  });
}

/** The children run the compiled CLI (npm test compiles it first). */
function assertDistIsCurrent(): void {
  for (const file of [CLI, join(repoRoot(), 'dist', 'lib', 'onboarding', 'job-runner.js'), join(repoRoot(), 'dist', 'lib', 'offboarding', 'steps.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -p tsconfig.json\` (npm test does) before this test`);
  }
}
