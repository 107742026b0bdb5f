/**
 * Issue 12, item 6: the chaos tier. Under a CPU hog on both cores, while tenants onboard (several
 * `tenancy worker` child processes, local deploy) and a fleet migration of bridge schemas runs
 * (`tenancy migrate`, in-process), a seeded random schedule of real faults hits the platform:
 * kill -9 of a worker (a replacement is started), a PostgreSQL restart (pg_ctl restart -m fast),
 * a Redis outage (SHUTDOWN SAVE, then started again on its port from its data, as a Redis with
 * persistence comes back), a PgBouncer restart (stopped, then started again on its port),
 * pg_terminate_backend of random client backends; every kind at least once. Meanwhile an
 * application in this process (withTenant through PgBouncer in transaction mode) queries the
 * fleet's tenants: calls may fail, but none runs in another tenant's schema, every failure is an
 * Error, the process lives, and the pool serves again afterwards. Then the faults stop and
 * the platform converges (conditions polled under a generous overall deadline): every job
 * succeeded, a rerun of the migration leaves nothing pending; and every tenant is `active` exactly
 * once (one Stripe customer and subscription, one schema, one registry file and entry, one outbox
 * event, one welcome mail), every target is at the latest version, no worker exited other than the
 * ones killed, and no job is stalled or failed, in the control plane or on the queue.
 *
 * The seed is printed; CHAOS_SEED=<n> replays the same fault sequence (the timing of a busy
 * machine is not replayable). Sizes: CHAOS_TENANTS (default 20), CHAOS_SCHEMAS (200), CHAOS_FAULTS
 * (20), CHAOS_WORKERS (3).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerMigrateCommand } from '../../lib/cli/migrate-command';
import { LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { tenantStatuses } from '../../lib/onboarding/status';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { AppTraffic, createFleet, lifecycleJobCounts, fleetSchemas, FLEET_LATEST as LATEST, runFaultSchedule, startFleetBouncer, WorkerPool } from '../support/chaos';
import type { PgbouncerProcess } from '../support/pgbouncer';
import { runCommand } from '../support/cli';
import { useLifecycleTestbed } from '../support/lifecycle';
import { prng } from '../support/seeded-random';
import { assertDistIsCurrent, until } from '../support/worker-process';
import { appliedVersions } from '../migrate/helpers';

const size = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const TENANTS = size('CHAOS_TENANTS', 20);
const SCHEMAS = size('CHAOS_SCHEMAS', 200);
const FAULTS = size('CHAOS_FAULTS', 20);
const WORKERS = size('CHAOS_WORKERS', 3);
const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Overall bound for the convergence after the faults stopped (a busy 2-core machine). */
const CONVERGE_MS = size('CHAOS_CONVERGE_MS', 600_000);
const FLEET_DB = 'chaos_fleet';

const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
let queue: LifecycleQueue;
let work: string;
let fleet: { migrations: string; targets: string };
let workers: WorkerPool;
let bouncer: PgbouncerProcess;
const hogs: ChildProcess[] = [];

beforeAll(async () => {
  assertDistIsCurrent();
  // eslint-disable-next-line no-console
  console.log(`chaos: CHAOS_SEED=${SEED} (tenants ${TENANTS}, schemas ${SCHEMAS}, faults ${FAULTS}, workers ${WORKERS})`);
  services = bed().track(await bed().open(), (s) => s.close());
  queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName), (q) => q.close());
  // Workers are ended before the testbed's servers stop (closers run newest first, before the servers).
  workers = bed().track(new WorkerPool(bed(), undefined, log), (w) => w.killAll());
  work = mkdtempSync(join(tmpdir(), 'tenancy-chaos-'));
  fleet = await createFleet(bed(), work, FLEET_DB, SCHEMAS);
  bouncer = bed().track(await startFleetBouncer(bed(), FLEET_DB, SCHEMAS), (b) => b.stop());
  // The CPU hog: both cores spinning for the whole test.
  // Each spins, and exits by itself should this process die without killing it (its parent changes).
  const spin = `for (let i = 0; ; i++) if (i % 50000000 === 0 && process.ppid !== ${process.pid}) process.exit(0);`;
  for (let i = 0; i < 2; i++) hogs.push(spawn(process.execPath, ['-e', spin], { stdio: 'ignore' }));
});

afterAll(async () => {
  await Promise.all(hogs.map((h) => new Promise((resolve) => {
    if (h.exitCode !== null || h.signalCode !== null) resolve(undefined);
    h.once('exit', resolve);
    h.kill('SIGKILL');
  })));
  if (work) rmSync(work, { recursive: true, force: true });
});

const log = (line: string) => process.stderr.write(`chaos[${SEED}]: ${line}\n`);
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });
const jobCounts = async () => Object.fromEntries((await bed().pg.query<{ status: string; n: number }>(
  'SELECT status, count(*)::int AS n FROM tenancy.lifecycle_jobs GROUP BY status ORDER BY status', [], 'control_plane')).map((r) => [r.status, r.n]));

/** `tenancy migrate` over the fleet, in-process, JSON lines parsed. */
async function migrate(): Promise<{ code: number; stderr: string; targets: any[]; summary: any }> {
  const r = await runCommand(registerMigrateCommand, [
    'migrate', '--targets', fleet.targets, '--control-plane-url', bed().controlPlaneUrl, '--migrations', fleet.migrations,
    '--concurrency', '2', '--json', '--actor', 'chaos-test',
  ]);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { code: r.code, stderr: r.stderr, targets: lines.filter((l) => l.type === 'target'), summary: lines.find((l) => l.type === 'summary') };
}

async function expectActiveExactlyOnce(s: SubmittedOnboarding, email: string): Promise<void> {
  const stripe = bed().stripeClient();
  const customers = (await stripe.customers.search({ query: `metadata['tenant_id']:'${s.tenantId}'` })).data;
  expect(customers).toHaveLength(1);
  const subscriptions = (await stripe.subscriptions.list({ customer: customers[0].id, status: 'all' })).data;
  expect(subscriptions.map((x) => x.status)).toEqual(['active']);
  expect(await bed().pg.query('SELECT slug, status FROM tenancy.tenants WHERE slug = $1', [s.slug], 'control_plane')).toEqual([{ slug: s.slug, status: 'active' }]);
  // One registry entry: one file, committed (the work tree's cleanliness is checked once for all).
  expect(readdirSync(join(bed().root, 'tenants')).filter((f) => f.replace(/^\./, '').split('.')[0] === s.slug)).toEqual([`${s.slug}.yaml`]);
  expect(git('ls-files', '--', `tenants/${s.slug}.yaml`).trim()).toBe(`tenants/${s.slug}.yaml`);
  const schema = `tenant_${s.slug.replace(/-/g, '_')}`;
  expect(await bed().pg.query('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`${schema}%`], 'tenants')).toEqual([{ nspname: schema }]);
  expect((await services.store.outbox(s.tenantId)).map((e) => e.eventType)).toEqual(['tenant.created']);
  // One welcome mail: a resend after a kill between sending and recording carries the same Message-ID.
  const mails = bed().smtp!.messages.filter((m) => m.to.includes(email));
  expect(mails.length).toBeGreaterThanOrEqual(1);
  expect([...new Set(mails.map((m) => m.header('message-id')))]).toEqual([`<welcome.${s.tenantId}@saas.example.com>`]);
}

test(`chaos: tenants onboard, a fleet migrates and an application queries through kill -9, PostgreSQL, Redis and PgBouncer restarts and terminated backends`, async () => {
  const random = prng(SEED);
  const started = Date.now();
  const requests = Array.from({ length: TENANTS }, (_, i) => ({
    // Numbered to equal width, so that no slug is a prefix of another (the checks look for look-alikes).
    email: `admin@chaos-${String(i + 1).padStart(3, '0')}.example`, company: `Chaos ${String(i + 1).padStart(3, '0')}`, plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa',
  }));
  const submitted: SubmittedOnboarding[] = [];
  for (const r of requests) submitted.push(await submitOnboarding(services, queue, r));
  for (let i = 0; i < WORKERS; i++) await workers.add();

  // The application: withTenant calls on the fleet's tenants through PgBouncer for the whole run.
  const traffic = new AppTraffic(bouncer, FLEET_DB, SCHEMAS, prng(SEED + 1));

  // The fleet migration runs pass after pass while the faults come; each pass must end with a result per target.
  let faulting = true;
  const passes: { code: number; counts: unknown }[] = [];
  const migrating = (async () => {
    for (;;) {
      const r = await migrate();
      passes.push({ code: r.code, counts: r.summary?.counts });
      if (r.code !== 0 || r.summary?.counts?.applied) log(`migration pass ${passes.length}: exit ${r.code}, ${JSON.stringify(r.summary?.counts ?? r.stderr.slice(0, 500))}`);
      if (!faulting) break;
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // pacing between passes
    }
  })();

  try {
    await runFaultSchedule({
      bed: bed(), workers, bouncer, random, faults: FAULTS,
      onFault: async (i, fault, outcome) => log(`fault ${i}/${FAULTS} at ${Math.round((Date.now() - started) / 1000)} s: ${fault}: ${outcome} (jobs ${JSON.stringify(await jobCounts().catch((e) => String(e)))})`),
    });
  } finally {
    faulting = false;
  }
  await migrating;
  log(`faults stopped at ${Math.round((Date.now() - started) / 1000)} s; converging`);

  // Convergence: every job succeeded. A job the queue gave up on (its attempts used up) fails the
  // test at once; a failed attempt awaiting its retry is shown `failed` meanwhile, so that alone is not final.
  await until(async () => {
    const counts = await jobCounts();
    if ((await lifecycleJobCounts(queue)).failed > 0) {
      throw new Error(`the queue gave up on jobs: ${JSON.stringify(await bed().pg.query("SELECT id, last_error FROM tenancy.lifecycle_jobs WHERE status <> 'succeeded'", [], 'control_plane'))}`);
    }
    return counts.succeeded === TENANTS && Object.keys(counts).length === 1;
  }, `all ${TENANTS} onboarding jobs succeeded`, CONVERGE_MS, 1_000);
  // The migration: reruns until nothing is pending (each applies what the faults left).
  let final = await migrate();
  for (let rerun = 1; final.code !== 0 && rerun < 3; rerun++) final = await migrate();
  log(`converged at ${Math.round((Date.now() - started) / 1000)} s; final migration ${JSON.stringify(final.summary?.counts)}; crashes ${workers.crashes.length}`);

  // The application lived through every fault: no call in another tenant's schema, every failure
  // an Error, and the pool serves again now that the faults stopped.
  const during = await traffic.stop();
  log(`application through PgBouncer: ${during.ok} of ${during.calls} calls succeeded; failures ${JSON.stringify(during.failures)}`);
  expect(during.wrongContext).toEqual([]);
  expect(during.notErrors).toEqual([]);
  expect(during.ok).toBeGreaterThan(0);
  const after = new AppTraffic(bouncer, FLEET_DB, SCHEMAS, prng(SEED + 2), 0);
  try {
    await until(() => after.call(), 'a withTenant call through the restarted PgBouncer succeeds', CONVERGE_MS, 500);
    const next: boolean[] = [];
    for (let i = 0; i < 20; i++) next.push(await after.call());
    expect(next).toEqual(next.map(() => true));
    expect(after.result().wrongContext).toEqual([]);
  } finally {
    await after.stop();
  }

  // Every migration pass ended with a result per target (a lost target is failed, never a crash).
  expect(passes.filter((p) => p.code !== 0 && p.code !== 1)).toEqual([]);
  expect(final.code).toBe(0);
  expect(final.targets).toHaveLength(SCHEMAS);
  for (const t of final.targets) expect(t).toMatchObject({ version: LATEST });
  expect(Object.keys(final.summary.counts).filter((k) => final.summary.counts[k] > 0).every((k) => k === 'applied' || k === 'up-to-date')).toBe(true);
  const versions = await appliedVersions(bed().pg, FLEET_DB);
  expect(versions).toEqual(Object.fromEntries(fleetSchemas(SCHEMAS).map((s) => [s, [1, LATEST]])));

  // Every tenant active exactly once.
  const statuses = await tenantStatuses(services.pool);
  expect(statuses.map((t) => t.slug).sort()).toEqual(submitted.map((s) => s.slug).sort());
  for (const t of statuses) expect(t).toMatchObject({ status: 'active', jobs: [{ status: 'succeeded' }] });
  for (const [i, s] of submitted.entries()) await expectActiveExactlyOnce(s, requests[i].email);
  // Nothing half-written in the registry work tree: no uncommitted file, no hidden temporary file.
  expect(git('status', '--porcelain', '--untracked-files=all', '--ignored')).toBe('');
  // Nothing stalled or failed on the queue either.
  expect(await lifecycleJobCounts(queue)).toEqual({ failed: 0, active: 0, waiting: 0, delayed: 0 });

  // No worker exited other than the ones killed; the others stop cleanly on SIGTERM.
  expect(workers.crashes).toEqual([]);
  const codes = await workers.terminateAll();
  expect(codes).toEqual(codes.map(() => 0));
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}, 1_200_000);
