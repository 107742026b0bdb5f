// `npm run bench:fleet`: fleet rollouts against a local AWS API (moto), local PostgreSQL and Redis,
// with `tenancy worker` processes (test/support/rollout-fleet.ts, the acceptance test's fleet).
// In one run:
//  1. a fleet of N bridge/pool tenant stacks deployed by `tenancy fleet deploy` (4 workers);
//  2. a one-tenant change (its plan in its registry entry, re-synthesized; not measured) applied by
//     (A) `tenancy fleet deploy` — plan without Terraform, one stack applied by a worker, the
//     post-apply hooks included — versus (B) `cdktf deploy 'tenant-*' --parallelism 4` over the
//     same synthesized output (terraform init/apply of every stack); A/B order ABBA, a fresh tenant
//     each run; medians and their ratio;
//  3. a change to every tenant stack (every tenant's plan) rolled out by 1, 2 and 4 worker
//     processes (`tenancy worker --rollout-concurrency 1` each): stacks per minute.
// Results go to docs/BENCHMARKS.md (section "fleet").
//
//   npm run bench:fleet
//   BENCH_FLEET_TENANTS=16  # tenant stacks (default 16: the whole run stays under ~20 min on 2 cores)
//   BENCH_RUNS=4            # one-tenant runs per side (default 4, ABBA)
//   BENCH_DOCS=0|1          # write docs/BENCHMARKS.md (default: only with the default settings)
//
// The platform stack is not deployed (its Aurora clusters take minutes on moto): its outputs point
// at the local PostgreSQL and it is recorded as applied, as in test/fleet/rollout-deploy.test.ts.
// Exits 1 when a rollout or a deploy fails.
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { recordAppliedStack } from '../lib/fleet/applied-stacks';
import { readStackArtifact } from '../lib/fleet/stack-artifact';
import { runCommand } from '../lib/onboarding/stack-deployer';
import { validTenant } from '../test/support/fixture-project';
import { createBucket, createNetworkFixture, getObject, startMoto, type LocalAws } from '../test/support/moto';
import { PostgresCluster } from '../test/support/postgres';
import { RedisServer } from '../test/support/redis';
import { RolloutFleet } from '../test/support/rollout-fleet';
import { CLI } from '../test/support/worker-process';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { envInt, median } from './measure';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DEFAULT_TENANTS = 16;
const DEFAULT_RUNS = 4;
const WORKER_COUNTS = [1, 2, 4];
const CDKTF_PARALLELISM = 4;
const REGION = 'us-east-1';

const fmt = (ms: number) => (ms / 1000).toFixed(1);
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

interface Worker {
  readonly name: string;
  readonly child: import('node:child_process').ChildProcess;
  readonly exited: Promise<number | null>;
}

/** Runs `node <args>` (the compiled CLI) to its exit; resolves to the wall time, throws with its output on failure. */
function timedNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => (out += String(c)));
    child.stderr!.on('data', (c) => (err += String(c)));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, stdout: out });
      else reject(new Error(`node ${args.join(' ')} exited ${code}:\n${err.slice(-3000)}\n${out.slice(-3000)}`));
    });
  });
}

async function main(): Promise<void> {
  const n = envInt('BENCH_FLEET_TENANTS', DEFAULT_TENANTS);
  const runs = envInt('BENCH_RUNS', DEFAULT_RUNS);
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS === '1' : n === DEFAULT_TENANTS && runs === DEFAULT_RUNS;
  if (n < runs * 2) throw new Error(`BENCH_FLEET_TENANTS (${n}) must be at least twice BENCH_RUNS (${runs}): every one-tenant run changes another tenant`);
  const benchStarted = performance.now();
  const loadAtStart = loadavg();
  const closers: (() => Promise<unknown> | unknown)[] = [];
  try {
    const moto = await startMoto();
    closers.unshift(() => moto.stop());
    const network = await createNetworkFixture(moto.endpoint, REGION);
    const stateBucket = 'tenancy-bench-fleet-state';
    await createBucket(moto.endpoint, stateBucket, REGION);
    const aws: LocalAws = { moto, endpoint: moto.endpoint, network, stateBucket };
    const pg = await PostgresCluster.start();
    closers.unshift(() => pg.stop());
    const redis = await RedisServer.start();
    closers.unshift(() => redis.stop());

    // Three bridge tenants for every pool tenant, as in the acceptance test.
    const pools = Math.max(1, Math.round(n / 4));
    const id = (k: number) => `5b1f0c2e-8d4a-4e6b-9f3c-${String(k).padStart(12, '0')}`;
    const tenants = Array.from({ length: n }, (_, i) => i < n - pools
      ? validTenant({ id: id(i + 1), slug: `bridge-${String(i + 1).padStart(3, '0')}`, model: 'bridge', plan: 'pro' })
      : validTenant({ id: id(i + 1), slug: `pool-${String(i + 1).padStart(3, '0')}`, model: 'pool', plan: 'starter' }));
    const plans = new Map(tenants.map((t) => [String(t.slug), String(t.plan)]));
    const fleet = await RolloutFleet.start(aws, pg, redis, tenants);
    closers.unshift(() => fleet.close());
    const outdir = fleet.deploy.runner.outdir;
    // The platform stack stands in (its outputs are the bench's): recorded as applied, so it is part of no rollout.
    await recordAppliedStack(fleet.cp, readStackArtifact(outdir, `platform-${REGION}`), 'bench-fleet');
    log(`fleet of ${n} tenant stacks (${n - pools} bridge, ${pools} pool) synthesized in ${fleet.deploy.project.root}`);

    let workers: Worker[] = [];
    let workerGeneration = 0;
    const setWorkers = async (count: number) => {
      await Promise.all(workers.map(async (w) => {
        w.child.kill('SIGTERM');
        await w.exited;
      }));
      workerGeneration += 1;
      workers = await Promise.all(Array.from({ length: count }, (_, k) => fleet.startWorkerProcess(`g${workerGeneration}-w${k + 1}`, {}, ['--rollout-concurrency', '1']).then((w) => ({ name: `g${workerGeneration}-w${k + 1}`, ...w }))));
    };
    const cliEnv = { ...fleet.terraformEnv, TENANCY_CONTROL_PLANE_URL: fleet.controlPlaneUrl, TENANCY_REDIS_URL: redis.url, TENANCY_ROOT: fleet.deploy.project.root, TENANCY_ACTOR: 'bench-fleet', TENANCY_USAGE_REPORT: 'off' };

    /** `tenancy fleet deploy` (compiled CLI) to its exit, then what its rollout did per the control plane. */
    const fleetDeploy = async (parallel: number) => {
      const { ms } = await timedNode([CLI, 'fleet', 'deploy', '--json', '--waves', '100', '--parallel', String(parallel), '--max-failures', '0'], cliEnv);
      const { rows: [r] } = await fleet.cp.query(
        `SELECT r.id, r.status, count(s.*)::int AS stacks, count(s.*) FILTER (WHERE s.status = 'applied')::int AS applied,
                coalesce(sum(s.attempts), 0)::int AS attempts, count(DISTINCT s.worker)::int AS workers,
                extract(epoch FROM max(s.finished_at) - min(s.started_at)) * 1000 AS span,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.finished_at - s.started_at) * 1000) AS per_stack
           FROM tenancy.rollouts r LEFT JOIN tenancy.rollout_stacks s ON s.rollout_id = r.id
          GROUP BY r.id, r.status, r.created_at ORDER BY r.created_at DESC LIMIT 1`,
      );
      if (r.status !== 'finished' || r.applied !== r.stacks) throw new Error(`rollout ${r.id}: ${r.status}, ${r.applied} of ${r.stacks} stacks applied`);
      return { ms, stacks: Number(r.stacks), attempts: Number(r.attempts), workers: Number(r.workers), spanMs: Number(r.span), perStackMs: Number(r.per_stack) };
    };
    /** Checks that the tenant's state in the bucket holds its new plan (the change was applied, by either side). */
    const assertApplied = async (t: Record<string, unknown>) => {
      const state = await getObject(moto.endpoint, stateBucket, fleet.stateKey(String(t.id)));
      const applied = state ? JSON.parse(state).outputs?.plan?.value : undefined;
      if (applied !== plans.get(String(t.slug))) throw new Error(`tenant-${t.slug}: its state's plan output is ${applied}, not ${plans.get(String(t.slug))}: the change was not applied`);
    };
    const togglePlan = (t: Record<string, unknown>) => {
      const slug = String(t.slug);
      const next = plans.get(slug) === 'enterprise' ? String(t.plan) : 'enterprise';
      plans.set(slug, next);
      fleet.deploy.project.writeTenant({ ...t, plan: next });
    };

    // 1. The initial rollout: every tenant stack new.
    await setWorkers(4);
    const initial = await fleetDeploy(n);
    log(`initial rollout: ${initial.stacks} stacks in ${fmt(initial.ms)} s by ${initial.workers} workers`);
    if (initial.stacks !== n) throw new Error(`the initial rollout deployed ${initial.stacks} stacks, not ${n}`);

    // 2. One-tenant changes: A = tenancy fleet deploy, B = cdktf deploy over every tenant stack.
    await setWorkers(1);
    const a: number[] = [];
    const b: number[] = [];
    const aDetails: { spanMs: number; attempts: number }[] = [];
    let next = 0;
    const runA = async (i: number) => {
      const t = tenants[next++];
      togglePlan(t);
      fleet.deploy.synth();
      const r = await fleetDeploy(4);
      if (r.stacks !== 1) throw new Error(`run ${i}: tenancy fleet deploy rolled out ${r.stacks} stacks for a one-tenant change`);
      await assertApplied(t);
      a.push(r.ms);
      aDetails.push({ spanMs: r.spanMs, attempts: r.attempts });
      log(`run ${i}: A tenancy fleet deploy (tenant-${t.slug}) ${fmt(r.ms)} s (worker: ${fmt(r.spanMs)} s)`);
    };
    const cdktfDeployAll = async (logName: string) => {
      const started = performance.now();
      await runCommand(join(REPO_ROOT, 'node_modules', '.bin', 'cdktf'),
        ['deploy', 'tenant-*', '--auto-approve', '--skip-synth', '--skip-provider-lock', '--parallelism', String(CDKTF_PARALLELISM), '--output', outdir, '--no-color'],
        { cwd: fleet.deploy.project.root, env: fleet.deploy.runner.env, logFile: join(fleet.dir, logName), timeoutMs: 20 * 60_000 });
      return performance.now() - started;
    };
    // B's warm-up (not in the medians): the first cdktf deploy initializes every stack directory
    // (.terraform, kept by later syntheses), as on a user's machine after the first deploy.
    const coldB = await cdktfDeployAll('cdktf-deploy-warm-up.log');
    log(`B warm-up: cdktf deploy 'tenant-*' with no change, cold stack directories: ${fmt(coldB)} s`);
    const runB = async (i: number) => {
      const t = tenants[next++];
      togglePlan(t);
      fleet.deploy.synth();
      const stack = `tenant-${t.slug}`;
      const ms = await cdktfDeployAll(`cdktf-deploy-${i}.log`);
      await assertApplied(t);
      b.push(ms);
      // What cdktf applied, recorded as a worker would (not measured), so the next plan sees only the next change.
      await recordAppliedStack(fleet.cp, readStackArtifact(outdir, stack), 'bench-fleet-cdktf');
      log(`run ${i}: B cdktf deploy 'tenant-*' (changed: ${stack}) ${fmt(ms)} s`);
    };
    const orders: string[] = [];
    for (let i = 1; i <= runs; i++) {
      // ABBA: A first in runs 1, 4, 5, 8, …
      orders.push(i % 4 === 1 || i % 4 === 0 ? 'A B' : 'B A');
      if (i % 4 === 1 || i % 4 === 0) {
        await runA(i);
        await runB(i);
      } else {
        await runB(i);
        await runA(i);
      }
    }

    // 3. Throughput: every tenant stack changed, rolled out by 1, 2 and 4 worker processes.
    const throughput: { workers: number; ms: number; spanMs: number; perStackMs: number; stacks: number; attempts: number; used: number }[] = [];
    for (const count of WORKER_COUNTS) {
      for (const t of tenants) togglePlan(t);
      fleet.deploy.synth();
      await setWorkers(count);
      const r = await fleetDeploy(n);
      if (r.stacks !== n) throw new Error(`the fleet-wide change rolled out ${r.stacks} stacks, not ${n}`);
      for (const t of tenants) await assertApplied(t);
      throughput.push({ workers: count, ms: r.ms, spanMs: r.spanMs, perStackMs: r.perStackMs, stacks: r.stacks, attempts: r.attempts, used: r.workers });
      log(`${count} worker(s): ${r.stacks} stacks in ${fmt(r.ms)} s = ${(r.stacks / (r.ms / 60_000)).toFixed(1)} stacks/min (median per stack ${fmt(r.perStackMs)} s)`);
    }
    await setWorkers(0);

    const ma = median(a);
    const mb = median(b);
    const perMin = (x: { stacks: number; ms: number }) => x.stacks / (x.ms / 60_000);
    const base = perMin(throughput[0]);
    const [loadStart] = loadAtStart;
    const [loadEnd] = loadavg();
    const totalMin = (performance.now() - benchStarted) / 60_000;
    process.stdout.write(`one-tenant change: tenancy fleet deploy median ${fmt(ma)} s; cdktf deploy 'tenant-*' median ${fmt(mb)} s; ratio ${(ma / mb).toFixed(2)}\n`);
    for (const t of throughput) process.stdout.write(`${t.workers} worker(s): ${perMin(t).toFixed(1)} stacks/min (${(perMin(t) / base).toFixed(2)}× 1 worker)\n`);
    if (!writeDocs) return;
    const body = `## Fleet: one-tenant change and rollout throughput (\`npm run bench:fleet\`)

Written by \`npm run bench:fleet\` (bench/fleet-bench.ts) on ${new Date().toISOString().slice(0, 10)}.

A fleet of **${n} tenant stacks** (${n - pools} bridge, ${pools} pool) against a local AWS API
(moto: S3 state with lock files, Secrets Manager), local PostgreSQL (the shared bridge and pool
clusters and the control plane) and Redis (the rollout queue), with \`tenancy worker\` processes
of the compiled CLI — the fleet of test/fleet/rollout-deploy.test.ts
(test/support/rollout-fleet.ts). The platform stack is not applied (its outputs point at the local
PostgreSQL; it is recorded as applied), so neither side deploys it. Every measurement is one
process from start to exit: \`node dist/bin/tenancy.js fleet deploy --waves 100\` (the
coordinator: plan from \`cdktf.out\` against the control plane's applied hashes, artifacts put in
the state bucket, jobs queued, waits for the workers) or \`cdktf deploy\`. Synthesis (the registry
edit and \`synthesize\`) precedes both and is not measured. The default N = ${DEFAULT_TENANTS} is sized
for a run of about 15–20 minutes on an idle 2-core machine (this run: ${totalMin.toFixed(0)} min);
\`BENCH_FLEET_TENANTS\` changes it.

The initial rollout (every stack new, 4 workers): ${initial.stacks} stacks in ${fmt(initial.ms)} s
(${perMin(initial).toFixed(1)} stacks/min).

### A one-tenant change

One tenant's plan changed in its registry entry (its stack's tags and \`plan\` output change),
re-synthesized, then applied by (A) \`tenancy fleet deploy\`: the plan finds the one changed
stack without Terraform, one worker (\`--rollout-concurrency 1\`) fetches its artifact, runs
\`terraform init\` and \`apply\`, then the post-apply hooks (schema or pool row, roles,
migrations, control-plane record); versus (B) what a user does without the library,
\`cdktf deploy 'tenant-*' --auto-approve --skip-synth --skip-provider-lock --parallelism ${CDKTF_PARALLELISM}\`
over the same \`cdktf.out\` and the same states (cdktf's own multi-stack deploy; \`'tenant-*'\`
rather than \`'*'\` only leaves out the stand-in platform stack): \`terraform init\` and an apply
(refresh and plan) in every tenant stack, one with a change, no hooks. Each run changes a
different tenant (its state is checked to hold the new plan afterwards); the order per run:
${orders.join(', ')} (ABBA). Before the runs, one unmeasured \`cdktf deploy 'tenant-*'\` without a change initialized B's stack
directories (${fmt(coldB)} s, cold); synthesis keeps their \`.terraform\`, so B's runs have a warm
\`terraform init\`, as on a user's machine. A's worker applies in a fresh directory each time
(\`terraform init\` from the provider mirror included).

| | runs | median (s) | each run (s) |
|---|---:|---:|---|
| (A) \`tenancy fleet deploy\` | ${a.length} | ${fmt(ma)} | ${a.map(fmt).join(', ')} |
| (B) \`cdktf deploy 'tenant-*'\`, parallelism ${CDKTF_PARALLELISM} | ${b.length} | ${fmt(mb)} | ${b.map(fmt).join(', ')} |

Ratio of the medians A/B: **${(ma / mb).toFixed(2)}**. Of A, the worker's part (job taken →
applied and hooks done) was ${aDetails.map((d) => fmt(d.spanMs)).join(', ')} s; the rest is the
coordinator (CLI start, plan over ${n + 1} stacks, artifact upload, queue hand-off). B grows with
N (every stack's Terraform start-up and refresh), A does not (only changed stacks are applied).

### Rollout throughput

A change to every tenant stack (every tenant's plan, so each stack has an in-place update; no
platform.yaml field enters the tenant stacks without moving their state or cluster names) rolled
out with \`--waves 100 --parallel ${n}\` (the workers are the only limit) by 1, 2 and 4
\`tenancy worker --rollout-concurrency 1\` processes (one process per concurrent apply; run in
this order, fresh workers each time).

| workers | stacks | rollout (s) | stacks/min | vs. 1 worker | median per stack (s) | attempts | workers that applied |
|---:|---:|---:|---:|---:|---:|---:|---:|
${throughput.map((t) => `| ${t.workers} | ${t.stacks} | ${fmt(t.ms)} | ${perMin(t).toFixed(1)} | ${(perMin(t) / base).toFixed(2)}× | ${fmt(t.perStackMs)} | ${t.attempts} | ${t.used} |`).join('\n')}

What this does and does not measure: moto answers in milliseconds where AWS takes seconds to
minutes, so the apply of a stack here is mostly Terraform and provider start-up and CPU, and
every worker runs on the same ${machineDescription().split(' ')[0]} cores as moto, PostgreSQL,
Redis and the coordinator: beyond 2 workers more processes compete for the same cores, and the
scaling says little about workers on separate machines (where each brings its own cores and
the limit is AWS's API and the S3 state). The numbers do not include synthesis, the platform
stack, waves with a canary (one wave here) or network latency to AWS.

Machine: ${machineDescription()}; 1-minute load average ${loadStart.toFixed(1)} at the start,
${loadEnd.toFixed(1)} at the end (the benchmark's own load included).${Math.max(loadStart, loadEnd) > 2 * availableParallelism()
  ? ` The machine was shared with other work during this run (load well above its ${availableParallelism()} cores, varying between the phases), which slows every side and makes the worker scaling uneven: rerun on an idle machine for comparable numbers.`
  : ''}`;
    writeBenchmarkSection(DOC_FILE, 'fleet', body);
    process.stdout.write(`wrote ${DOC_FILE} (section "fleet")\n`);
  } finally {
    for (const close of closers) await Promise.resolve(close()).catch((e) => log(`cleanup: ${(e as Error).message}`));
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
