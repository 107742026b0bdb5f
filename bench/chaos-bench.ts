// `npm run bench:chaos`: what the fault schedule of the chaos tier costs. Onboarding throughput
// (tenants/s from request to `active`) and fleet-migration wall time, each measured WITHOUT and
// WITH the seeded fault schedule of test/reliability/chaos.test.ts (kill -9 of workers,
// PostgreSQL restart, Redis restart, pg_terminate_backend; test/support/chaos.ts; not the PgBouncer restart: no application traffic runs here), in the same
// run, the order alternating by round; plus the check that nothing was lost. Written to
// docs/BENCHMARKS.md (section "chaos").
//
//   npm run bench:chaos
//   BENCH_CHAOS_TENANTS=10     # tenants onboarded per phase (default 10)
//   BENCH_CHAOS_SCHEMAS=100    # bridge schemas migrated per phase (default 100)
//   BENCH_CHAOS_WORKERS=2      # `tenancy worker` processes (default 2)
//   BENCH_CHAOS_FAULTS=8       # at most this many faults per faulted phase (default 8)
//   BENCH_CHAOS_ROUNDS=1       # rounds; each measures both phases, odd rounds clean first (default 1)
//   BENCH_CHAOS_SEED=<n>       # the fault schedule's seed (default: random, printed)
//   BENCH_DOCS=0|1             # write docs/BENCHMARKS.md (default: only with the default sizes)
//
// Exits 1 when something was lost (a tenant not active exactly once, a target not at the latest
// version, a failed or stalled job, a worker that crashed) or a phase did not converge.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { registerMigrateCommand } from '../lib/cli/migrate-command';
import { LifecycleQueue, redisOptionsFromUrl } from '../lib/onboarding/queue';
import type { LifecycleServices } from '../lib/onboarding/services';
import { tenantStatuses } from '../lib/onboarding/status';
import { submitOnboarding, type SubmittedOnboarding } from '../lib/onboarding/submit';
import { createFleet, fleetSchemas, FLEET_LATEST, lifecycleJobCounts, runFaultSchedule, WorkerPool } from '../test/support/chaos';
import { runCommand } from '../test/support/cli';
import { LifecycleTestbed } from '../test/support/lifecycle';
import { prng } from '../test/support/seeded-random';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { envInt, loadAverages, median } from './measure';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DEFAULTS = { tenants: 10, schemas: 100, workers: 2, faults: 8, rounds: 1 };
/** A phase that has not converged after this long is reported as lost. */
const PHASE_DEADLINE_MS = 300_000;

type Mode = 'clean' | 'faults';

interface Phase {
  readonly round: number;
  readonly mode: Mode;
  readonly onboardMs: number;
  readonly migrateMs: number;
  readonly migrationPasses: number;
  readonly faults: string[];
  /** What was lost or broken; empty when everything converged. */
  readonly problems: string[];
}

const fmt = (ms: number) => (ms / 1000).toFixed(2);
const elapsed = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;

async function main(): Promise<void> {
  const tenants = envInt('BENCH_CHAOS_TENANTS', DEFAULTS.tenants);
  const schemas = envInt('BENCH_CHAOS_SCHEMAS', DEFAULTS.schemas);
  const workerCount = envInt('BENCH_CHAOS_WORKERS', DEFAULTS.workers);
  const faultCount = envInt('BENCH_CHAOS_FAULTS', DEFAULTS.faults);
  const rounds = envInt('BENCH_CHAOS_ROUNDS', DEFAULTS.rounds);
  const seed = process.env.BENCH_CHAOS_SEED ? envInt('BENCH_CHAOS_SEED', 1) : Math.floor(Math.random() * 2 ** 31);
  const defaults = tenants === DEFAULTS.tenants && schemas === DEFAULTS.schemas && workerCount === DEFAULTS.workers && faultCount === DEFAULTS.faults && rounds >= DEFAULTS.rounds;
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS === '1' : defaults;
  if (loadavg()[0] > 1) console.warn('bench:chaos: warning: the machine is busy (1-minute load > 1); times will be noisy');
  const loadBefore = loadAverages();
  console.log(`bench:chaos: BENCH_CHAOS_SEED=${seed} (tenants ${tenants}, schemas ${schemas}, workers ${workerCount}, faults ≤ ${faultCount}, rounds ${rounds})`);

  console.log('bench:chaos: starting PostgreSQL, Redis, the Stripe and SMTP servers');
  const bed = await LifecycleTestbed.start({ git: true });
  const work = mkdtempSync(join(tmpdir(), 'tenancy-bench-chaos-'));
  const random = prng(seed);
  const phases: Phase[] = [];
  let pgVersion = '';
  let services: LifecycleServices | undefined;
  let queue: LifecycleQueue | undefined;
  const log = (line: string) => console.log(`bench:chaos: ${line}`);
  const workers = new WorkerPool(bed, undefined, log);
  try {
    pgVersion = (await bed.pg.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0].v;
    services = await bed.open({}, {}, { TENANCY_ACTOR: 'bench-chaos' });
    queue = new LifecycleQueue(redisOptionsFromUrl(bed.redis.url), services.config.queueName);
    for (let i = 0; i < workerCount; i++) await workers.add();
    log(`${workerCount} workers ready`);

    const runPhase = async (round: number, mode: Mode): Promise<Phase> => {
      const label = `r${round}${mode === 'clean' ? 'c' : 'f'}`;
      const fleet = await createFleet(bed, join(work, label), `chaos_fleet_${label}`, schemas);
      const migrate = async () => {
        const r = await runCommand(registerMigrateCommand, [
          'migrate', '--targets', fleet.targets, '--control-plane-url', bed.controlPlaneUrl, '--migrations', fleet.migrations,
          '--concurrency', '2', '--json', '--actor', 'bench-chaos',
        ]);
        const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
        return { code: r.code, stderr: r.stderr, targets: lines.filter((l) => l.type === 'target'), summary: lines.find((l) => l.type === 'summary') };
      };
      const problems: string[] = [];
      const faults: string[] = [];
      const started = process.hrtime.bigint();
      const deadline = Date.now() + PHASE_DEADLINE_MS;

      // Onboarding: every request submitted at once, then waited for in the control plane.
      const submitted: SubmittedOnboarding[] = [];
      for (let i = 0; i < tenants; i++) {
        const n = `${label}-${String(i + 1).padStart(3, '0')}`;
        submitted.push(await submitOnboarding(services!, queue!, {
          email: `admin@chaos-${n}.example`, company: `Chaos ${n}`, plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa',
        }));
      }
      const ids = submitted.map((s) => s.job.id);
      let onboardMs = 0;
      const onboarding = (async () => {
        while (Date.now() < deadline) {
          try {
            const rows = await bed.pg.query<{ n: number }>("SELECT count(*)::int AS n FROM tenancy.lifecycle_jobs WHERE id = ANY($1) AND status = 'succeeded'", [ids], 'control_plane');
            if (rows[0].n === tenants) return (onboardMs = elapsed(started));
          } catch {
            // PostgreSQL restarting: ask again.
          }
          await new Promise((r) => setTimeout(r, 200));
        }
        problems.push(`onboarding did not converge within ${PHASE_DEADLINE_MS / 1000} s`);
        return (onboardMs = elapsed(started));
      })();

      // The fleet migration: passes until one exits 0 with every target at the latest version.
      let migrateMs = 0;
      let passes = 0;
      const migrating = (async () => {
        while (Date.now() < deadline) {
          const r = await migrate();
          passes++;
          if (r.code !== 0 && r.code !== 1) problems.push(`migration pass ${passes} exited ${r.code}: ${r.stderr.slice(0, 300)}`);
          if (r.code === 0 && r.targets.length === schemas && r.targets.every((t) => t.version === FLEET_LATEST)) return (migrateMs = elapsed(started));
          if (r.code !== 0) log(`${label}: migration pass ${passes}: exit ${r.code}, ${JSON.stringify(r.summary?.counts ?? r.stderr.slice(0, 200))}`);
        }
        problems.push(`the fleet migration did not converge within ${PHASE_DEADLINE_MS / 1000} s`);
        return (migrateMs = elapsed(started));
      })();

      let done = false;
      void Promise.all([onboarding, migrating]).then(() => (done = true));
      if (mode === 'faults') {
        await runFaultSchedule({
          bed, workers, random, faults: faultCount, done: () => done,
          onFault: (i, fault, outcome) => {
            faults.push(fault);
            log(`${label}: fault ${i} at ${fmt(elapsed(started))} s: ${fault}: ${outcome.slice(0, 200)}`);
          },
        });
      }
      await Promise.all([onboarding, migrating]);

      // Nothing lost: every tenant active exactly once, every target at the latest version, no failed or stalled job.
      const slugs = new Set(submitted.map((s) => s.slug));
      const statuses = (await tenantStatuses(services!.pool)).filter((t) => slugs.has(t.slug));
      if (statuses.length !== tenants) problems.push(`${statuses.length} of ${tenants} tenants recorded`);
      for (const t of statuses) {
        if (t.status !== 'active' || t.jobs.length !== 1 || t.jobs[0].status !== 'succeeded') problems.push(`${t.slug}: ${t.status}, jobs ${JSON.stringify(t.jobs.map((j) => j.status))}`);
      }
      const stripe = bed.stripeClient();
      for (const s of submitted) {
        const customers = (await stripe.customers.search({ query: `metadata['tenant_id']:'${s.tenantId}'` })).data;
        const subscriptions = customers.length === 1 ? (await stripe.subscriptions.list({ customer: customers[0].id, status: 'all' })).data : [];
        const outbox = (await services!.store.outbox(s.tenantId)).map((e) => e.eventType);
        const schema = `tenant_${s.slug.replace(/-/g, '_')}`;
        const schemasFound = await bed.pg.query('SELECT nspname FROM pg_namespace WHERE nspname LIKE $1', [`${schema}%`], 'tenants');
        if (customers.length !== 1 || subscriptions.length !== 1 || outbox.join() !== 'tenant.created' || schemasFound.length !== 1) {
          problems.push(`${s.slug}: ${customers.length} customers, ${subscriptions.length} subscriptions, outbox [${outbox.join()}], ${schemasFound.length} schemas`);
        }
      }
      const versions = await bed.pg.query<{ target: string; versions: number[] }>(
        'SELECT target, array_agg(version ORDER BY version) AS versions FROM tenancy.schema_migrations GROUP BY target', [], `chaos_fleet_${label}`);
      const atLatest = versions.filter((v) => v.versions.join() === [1, FLEET_LATEST].join()).length;
      if (atLatest !== schemas || fleetSchemas(schemas).length !== versions.length) problems.push(`${atLatest} of ${schemas} targets at version ${FLEET_LATEST}`);
      const counts = await lifecycleJobCounts(queue!);
      if (Object.values(counts).some((n) => n > 0)) problems.push(`queue not drained: ${JSON.stringify(counts)}`);

      const phase: Phase = { round, mode, onboardMs, migrateMs, migrationPasses: passes, faults, problems };
      log(`${label}: onboarding ${tenants} in ${fmt(onboardMs)} s (${(tenants / (onboardMs / 1000)).toFixed(2)} tenants/s), fleet of ${schemas} migrated in ${fmt(migrateMs)} s (${passes} passes), faults ${faults.length}, problems ${problems.length}`);
      for (const p of problems) console.error(`bench:chaos: ${label}: LOST: ${p}`);
      return phase;
    };

    for (let round = 1; round <= rounds; round++) {
      const order: Mode[] = round % 2 ? ['clean', 'faults'] : ['faults', 'clean'];
      for (const mode of order) phases.push(await runPhase(round, mode));
    }
  } finally {
    const codes = await workers.terminateAll().catch(() => []);
    if (codes.some((c) => c !== 0)) console.error(`bench:chaos: workers' exit codes on SIGTERM: ${codes.join(', ')}`);
    await workers.killAll();
    await queue?.close();
    await services?.close();
    await bed.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const loadAfter = loadAverages();

  const of = (mode: Mode) => phases.filter((p) => p.mode === mode);
  const summary = (mode: Mode) => {
    const ps = of(mode);
    const onboardMs = median(ps.map((p) => p.onboardMs));
    return { onboardMs, throughput: tenants / (onboardMs / 1000), migrateMs: median(ps.map((p) => p.migrateMs)), faults: ps.reduce((n, p) => n + p.faults.length, 0) };
  };
  const clean = summary('clean');
  const faulted = summary('faults');
  const throughputRatio = faulted.throughput / clean.throughput;
  const migrateRatio = faulted.migrateMs / clean.migrateMs;
  const problems = [...phases.flatMap((p) => p.problems), ...workers.crashes];
  const faultKinds = phases.flatMap((p) => p.faults).reduce<Record<string, number>>((m, f) => ({ ...m, [f]: (m[f] ?? 0) + 1 }), {});

  const table = new Table({ head: ['measurement', 'without faults', 'with faults', 'ratio (with / without)'], style: { head: [], border: [] } });
  table.push([`onboarding ${tenants} tenants: wall s`, fmt(clean.onboardMs), fmt(faulted.onboardMs), (faulted.onboardMs / clean.onboardMs).toFixed(2)]);
  table.push(['onboarding: tenants/s', clean.throughput.toFixed(2), faulted.throughput.toFixed(2), throughputRatio.toFixed(2)]);
  table.push([`fleet migration ${schemas} schemas: wall s`, fmt(clean.migrateMs), fmt(faulted.migrateMs), migrateRatio.toFixed(2)]);
  console.log(table.toString());
  if (faulted.faults === 0) console.warn('bench:chaos: warning: no fault was injected (the work finished before the first one); use larger sizes');
  console.log(`faults injected: ${faulted.faults} (${JSON.stringify(faultKinds)}); lost: ${problems.length ? problems.join('; ') : 'nothing'}; worker crashes: ${workers.crashes.length}`);

  if (writeDocs) {
    const perPhase = phases.map((p) => `| ${p.round} | ${p.mode === 'clean' ? 'without' : 'with'} | ${fmt(p.onboardMs)} | ${(tenants / (p.onboardMs / 1000)).toFixed(2)} | ${fmt(p.migrateMs)} | ${p.migrationPasses} | ${p.faults.length} | ${p.problems.length} |`).join('\n');
    const body = `## Chaos

Written by \`npm run bench:chaos\` (bench/chaos-bench.ts) on ${new Date().toISOString().slice(0, 10)}.

**Machine:** ${machineDescription()}; PostgreSQL ${pgVersion}, redis-server 7. Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}.

**Method.** The testbed of the onboarding benchmark (test/support/lifecycle.ts: PostgreSQL 15, redis-server,
the local Stripe-compatible and SMTP servers, the registry in a git work tree), ${workerCount} \`tenancy worker\`
processes (queue lock 5 s, tenant-lock TTL 8 s, as in the chaos test). Each phase submits ${tenants} bridge
onboardings at once and, at the same time, migrates a fresh fleet of ${schemas} bridge schemas
(\`tenancy migrate --concurrency 2\`, in-process; two migrations, the second sleeping 0.2 s per target),
rerunning the migration until a pass exits 0 with every target at version ${FLEET_LATEST}. *Onboarding* is
the time from the first request until all ${tenants} jobs succeeded (tenants/s = ${tenants} / that);
*fleet migration* the time until that clean pass. The *with faults* phase runs the chaos tier's
seeded schedule (test/support/chaos.ts) while either is unfinished: every 0.5–3 s one of kill -9 of
a worker (a replacement started), PostgreSQL restart (\`pg_ctl restart -m fast\`), Redis restart
(SHUTDOWN SAVE, started again), \`pg_terminate_backend\` of half the client backends; at most
${faultCount} faults per phase. No CPU hog (unlike the chaos test). ${rounds} round(s), each measuring
both phases, the order alternating (odd rounds without faults first); cells are medians over rounds.
Seed ${seed} (\`BENCH_CHAOS_SEED=${seed}\` replays the fault sequence, not the timing). Faults
injected: ${faulted.faults} (${Object.entries(faultKinds).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})${faulted.faults === 0 ? ' — the work finished before the first fault, so the ratios below measure no fault: use larger sizes' : ''}.

| measurement | without faults | with faults | ratio (with / without) |
| --- | ---: | ---: | ---: |
| onboarding ${tenants} tenants, request → active: wall s | ${fmt(clean.onboardMs)} | ${fmt(faulted.onboardMs)} | ${(faulted.onboardMs / clean.onboardMs).toFixed(2)} |
| onboarding throughput: tenants/s | ${clean.throughput.toFixed(2)} | ${faulted.throughput.toFixed(2)} | ${throughputRatio.toFixed(2)} |
| fleet migration, ${schemas} schemas: wall s | ${fmt(clean.migrateMs)} | ${fmt(faulted.migrateMs)} | ${migrateRatio.toFixed(2)} |

Per phase:

| round | faults | onboarding s | tenants/s | migration s | migration passes | faults injected | problems |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |
${perPhase}

**Nothing lost** (checked after every phase: each tenant \`active\` exactly once with one succeeded
job, one Stripe customer and subscription, one schema, one outbox event; every target at version
${FLEET_LATEST}; the queue drained, no failed or stalled job; no worker exited other than the ones killed):
${problems.length ? `**${problems.length} problem(s)**: ${problems.join('; ')}` : 'nothing was lost, no worker crashed.'}
`;
    writeBenchmarkSection(DOC_FILE, 'chaos', body);
    console.log(`bench:chaos: wrote ${relative(process.cwd(), DOC_FILE)}`);
  } else {
    console.log(`bench:chaos: ${relative(process.cwd(), DOC_FILE)} left alone (BENCH_DOCS=1 to write it)`);
  }
  if (problems.length > 0) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench:chaos: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
