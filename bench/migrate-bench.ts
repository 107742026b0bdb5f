// `npm run bench:migrate`: the migration runner (`tenancy migrate`, a child process) on 1,000
// bridge schemas against a floor, a single psql session running the same DDL in every schema;
// written to docs/BENCHMARKS.md (section "migrate").
//
//   npm run bench:migrate
//   BENCH_SCHEMAS=200 BENCH_RUNS=1 npm run bench:migrate   # quick run (the doc is then left alone)
//   BENCH_RUNS=8          # measured runs (default 8: floor and runner alternate, ABBA)
//   BENCH_DOCS=0|1        # write docs/BENCHMARKS.md (default: only with the default size and ≥ 8 runs)
//   BENCH_CONCURRENCY=2   # --database-concurrency of the runner (default: its default, 2)
//   BENCH_WARMUP=0        # skip the unmeasured full-size warm-up round
//
// Starts its own PostgreSQL 15 (test/support/postgres.ts: a throwaway cluster, run as the
// `postgres` OS user when this runs as root). Exits 1 when a measured run does not do what it
// should (a schema not migrated, a rerun that is not a no-op); a missed target is reported, not an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { PG_BIN, PostgresCluster } from '../test/support/postgres';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { median, envInt, loadAverages } from './measure';
import { MIGRATE_DEFAULTS } from '../lib/migrate/runner';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const CLI = join(REPO_ROOT, 'dist', 'bin', 'tenancy.js');
const BENCH_MIGRATIONS = join(REPO_ROOT, 'bench', 'migrations');
const MIGRATION_FILE = join(BENCH_MIGRATIONS, 'tenant', '0001_items.up.sql');
const PSQL = join(PG_BIN, 'psql');
const TIME_BIN = '/usr/bin/time';
const DATABASE = 'bench';
const DEFAULT_SCHEMAS = 1000;
const DEFAULT_RUNS = 8;
const TARGETS = { applyRatio: 1.0, noopSeconds: 2 };

interface RunResult {
  readonly floorMs: number;
  readonly applyMs: number;
  /** User + system CPU of the runner's process (GNU time), start-up included; the server's is not in it. */
  readonly applyCpuMs: number;
  readonly noopMs: number;
}

const load = loadAverages;
const fmt = (ms: number) => (ms / 1000).toFixed(2);
/** Slugs of one batch of schemas: <prefix>-0001 … (tenant_<prefix>_0001 …). */
const slugsOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(4, '0')}`);
const schemaOf = (slug: string) => `tenant_${slug.replace(/-/g, '_')}`;

/** psql in one session over the cluster's Unix socket; returns wall time (spawn to exit). */
function psql(cluster: PostgresCluster, scriptFile: string): number {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^PG/.test(k)) env[k] = v;
  const start = process.hrtime.bigint();
  const child = spawnSync(PSQL, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', cluster.superuser, '-d', DATABASE, '-f', scriptFile], {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (child.status !== 0) throw new Error(`psql -f ${scriptFile} failed (${child.status ?? child.signal}): ${child.stderr || child.error?.message}`);
  return ms;
}

/** `tenancy migrate` as a child process (under GNU time); returns wall time, its CPU time and the JSON-lines summary. */
function runner(targetsFile: string, concurrency: number | undefined, timeFile: string): { ms: number; cpuMs: number; summary: any } {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1' };
  delete env.NODE_OPTIONS;
  const args = [CLI, 'migrate', 'up', '--targets', targetsFile, '--migrations', BENCH_MIGRATIONS, '--json', ...(concurrency ? ['--database-concurrency', String(concurrency)] : [])];
  const start = process.hrtime.bigint();
  const child = spawnSync(TIME_BIN, ['-f', '%U %S', '-o', timeFile, process.execPath, ...args], { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const lines = (child.stdout ?? '').trim().split('\n');
  const summary = lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
  if (child.status !== 0 || summary?.type !== 'summary') {
    throw new Error(`tenancy migrate failed (${child.status ?? child.signal}):\n${child.stderr}\n${lines.filter((l) => !l.includes('"applied"')).slice(0, 20).join('\n')}`);
  }
  const [user, system] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { ms, cpuMs: (user + system) * 1000, summary };
}

async function main(): Promise<void> {
  const schemas = envInt('BENCH_SCHEMAS', DEFAULT_SCHEMAS);
  const runs = envInt('BENCH_RUNS', DEFAULT_RUNS);
  const warmup = process.env.BENCH_WARMUP !== '0';
  const concurrency = process.env.BENCH_CONCURRENCY ? envInt('BENCH_CONCURRENCY', MIGRATE_DEFAULTS.databaseConcurrency) : undefined;
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS === '1' : schemas === DEFAULT_SCHEMAS && runs >= DEFAULT_RUNS;
  const migrationSql = readFileSync(MIGRATION_FILE, 'utf8');
  if (!existsSync(TIME_BIN)) throw new Error(`${TIME_BIN} (GNU time) is needed for the runner's CPU time`);
  if (loadavg()[0] > 1) console.warn('bench:migrate: warning: the machine is busy (1-minute load > 1); wall times will be noisy');

  const work = mkdtempSync(join(tmpdir(), 'tenancy-bench-migrate-'));
  const loadBefore = load();
  console.log(`bench:migrate: starting PostgreSQL (${PG_BIN})`);
  const cluster = await PostgresCluster.start({ ssl: false });
  const results: RunResult[] = [];
  let warm: RunResult | undefined;
  let pgVersion = '';
  try {
    await cluster.createDatabase(DATABASE);
    pgVersion = (await cluster.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0].v;
    const connection = `postgres://${cluster.superuser}@/${DATABASE}?host=${encodeURIComponent(cluster.socketDir)}&port=${cluster.port}`;

    // Run 0 is a warm-up at full size (a fresh cluster's first thousand schemas are slower for
    // whoever goes first: catalogs and caches grow); it is checked but not measured.
    for (let run = warmup ? 0 : 1; run <= runs; run++) {
      // Fresh schemas for each measurement (created and dropped outside the measured time).
      const floorSlugs = slugsOf(`floor${run}`, schemas);
      const runnerSlugs = slugsOf(`runner${run}`, schemas);
      const setup = join(work, `setup-${run}.sql`);
      writeFileSync(setup, [...floorSlugs, ...runnerSlugs].map((s) => `CREATE SCHEMA ${schemaOf(s)};`).join('\n'));
      psql(cluster, setup);

      const floorScript = join(work, `floor-${run}.sql`);
      writeFileSync(floorScript, floorSlugs.map((s) => `SET search_path TO ${schemaOf(s)};\n${migrationSql}\n`).join(''));
      const targetsFile = join(work, `targets-${run}.json`);
      writeFileSync(targetsFile, JSON.stringify({ connections: { bridge: connection }, targets: runnerSlugs.map((slug) => ({ kind: 'bridge', slug, connection: 'bridge' })) }));

      // ABBA: the floor first in odd runs, the runner first in even runs.
      let floorMs = 0;
      let apply: ReturnType<typeof runner> | undefined;
      const measureFloor = () => (floorMs = psql(cluster, floorScript));
      const timeFile = join(work, 'time.out');
      const measureApply = () => (apply = runner(targetsFile, concurrency, timeFile));
      if (run % 2) (measureFloor(), measureApply());
      else (measureApply(), measureFloor());
      const noop = runner(targetsFile, concurrency, timeFile);

      if (apply!.summary.counts.applied !== schemas) throw new Error(`run ${run}: the runner applied ${apply!.summary.counts.applied} of ${schemas} schemas`);
      if (noop.summary.counts['up-to-date'] !== schemas) throw new Error(`run ${run}: the rerun was not a no-op: ${JSON.stringify(noop.summary.counts)}`);
      const check = await cluster.query<{ floor: number; runner: number; state: number }>(
        `SELECT count(*) FILTER (WHERE schemaname LIKE $1)::int AS floor, count(*) FILTER (WHERE schemaname LIKE $2)::int AS runner,
                (SELECT count(*)::int FROM tenancy.schema_migrations WHERE target LIKE $2) AS state
           FROM pg_tables WHERE tablename = 'items'`,
        [`tenant_floor${run}\\_%`, `tenant_runner${run}\\_%`],
        DATABASE,
      );
      if (check[0].floor !== schemas || check[0].runner !== schemas || check[0].state !== schemas) throw new Error(`run ${run}: schemas not all migrated: ${JSON.stringify(check[0])}`);
      if (run > 0) results.push({ floorMs, applyMs: apply!.ms, applyCpuMs: apply!.cpuMs, noopMs: noop.ms });
      else warm = { floorMs, applyMs: apply!.ms, applyCpuMs: apply!.cpuMs, noopMs: noop.ms };
      console.log(`bench:migrate: ${run === 0 ? 'warm-up' : `run ${run}/${runs}`}: floor ${fmt(floorMs)} s, runner apply ${fmt(apply!.ms)} s (ratio ${(apply!.ms / floorMs).toFixed(2)}), no-op rerun ${fmt(noop.ms)} s`);

      // Drop both batches (100 schemas per transaction: the locks of a whole batch would not fit).
      for (let i = 0; i < schemas; i += 100) {
        const batch = [...floorSlugs.slice(i, i + 100), ...runnerSlugs.slice(i, i + 100)].map(schemaOf);
        await cluster.query(`DROP SCHEMA ${batch.join(', ')} CASCADE`, [], DATABASE);
      }
      await cluster.query(`DELETE FROM tenancy.schema_migrations`, [], DATABASE);
    }
  } finally {
    await cluster.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const loadAfter = load();

  const floor = median(results.map((r) => r.floorMs));
  const apply = median(results.map((r) => r.applyMs));
  const noop = median(results.map((r) => r.noopMs));
  const applyCpu = median(results.map((r) => r.applyCpuMs));
  // Each run's floor and apply run back to back, so a run's ratio sees the same machine load on
  // both sides; the target is judged on the median of these paired ratios (the ratio of the
  // medians is shown too). This shared 2-core machine's load drifts by whole seconds between runs.
  const ratios = results.map((r) => r.applyMs / r.floorMs);
  const ratio = median(ratios);
  const ratioOfMedians = apply / floor;
  const table = new Table({ head: ['measurement', 'median s', 'runs (s)'], style: { head: [], border: [] } });
  table.push(['floor: psql, one session', fmt(floor), results.map((r) => fmt(r.floorMs)).join(', ')]);
  table.push(['runner: apply', fmt(apply), results.map((r) => fmt(r.applyMs)).join(', ')]);
  table.push(['runner: apply, CPU of its process', fmt(applyCpu), results.map((r) => fmt(r.applyCpuMs)).join(', ')]);
  table.push(['runner: no-op rerun', fmt(noop), results.map((r) => fmt(r.noopMs)).join(', ')]);
  console.log(table.toString());
  console.log(`apply/floor ratio, median of runs ${ratio.toFixed(2)} (per run ${ratios.map((r) => r.toFixed(2)).join(', ')}; ratio of medians ${ratioOfMedians.toFixed(2)}); target ≤ ${TARGETS.applyRatio}: ${ratio <= TARGETS.applyRatio ? 'met' : 'MISSED'}`);
  console.log(`no-op rerun ${fmt(noop)} s; target ≤ ${TARGETS.noopSeconds} s: ${noop / 1000 <= TARGETS.noopSeconds ? 'met' : 'MISSED'}`);

  if (!writeDocs) {
    console.log(`bench:migrate: ${relative(process.cwd(), DOC_FILE)} left alone (BENCH_DOCS=1 to write it)`);
    return;
  }
  const n = schemas.toLocaleString('en-US');
  const status = (ok: boolean) => (ok ? 'met' : '**missed**');
  const body = `## Migrate

Written by \`npm run bench:migrate\` (bench/migrate-bench.ts) on ${new Date().toISOString().slice(0, 10)}.

**Machine:** ${machineDescription()}; PostgreSQL ${pgVersion} (${PG_BIN}). Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}.

**Method.**

- A throwaway PostgreSQL 15 cluster (test/support/postgres.ts: \`fsync\`, \`synchronous_commit\` and
  \`full_page_writes\` off, as in the tests), one database, every client on the Unix socket as the superuser.
- Each run creates ${n} fresh bridge schemas for the floor and ${n} for the runner (not measured), then:
  - *floor*: \`psql -X -q -v ON_ERROR_STOP=1 -f script.sql\`, one session, the script being
    \`SET search_path TO tenant_…;\` followed by the migration's text, for each schema (autocommit);
  - *apply*: \`node dist/bin/tenancy.js migrate up --targets <file> --migrations bench/migrations --json\`
    on the other ${n} schemas (${concurrency ?? MIGRATE_DEFAULTS.databaseConcurrency} connections to the database): one state query for the database, then per
    connection messages of up to 25 schemas (lib/migrate/apply-batch.ts), each schema in its own
    transaction: \`BEGIN\`, \`lock_timeout\`/\`statement_timeout\`, the guard function taking its platform
    lock and checking its state and schema, the DDL, its record, \`COMMIT\`; an error ends the message at
    that schema, which alone fails, and the rest go on in the next message. Node start-up (only the
    migrate command's modules are loaded), the targets file and ${n} JSON lines included;
  - *no-op rerun*: the same command again (every schema up to date: one state query, no transaction).
- The migration (bench/migrations/tenant/0001_items.up.sql): a table with an identity key, an index, an added column.
- Time is wall time from spawn to exit; floor and apply alternate in ABBA order after an unmeasured
  full-size warm-up round${warm ? ` (runner first, on the fresh cluster: floor ${fmt(warm.floorMs)} s, apply ${fmt(warm.applyMs)} s; whoever
  goes first on a fresh cluster is slower)` : ' (skipped in this run: BENCH_WARMUP=0)'}; each cell is the median of ${runs} runs. The target is judged
  on the median of the per-run ratios (a run's floor and apply run back to back, under the same load;
  the ratio of the medians is ${ratioOfMedians.toFixed(2)}). Each run checks that every schema got the table
  and (runner) its state row, and that the rerun changed nothing.
- Where the time went, and what changed (profiled with \`--cpu-prof\` and the CPU time of the client,
  the server's backends and psql): the guard was a DO block, compiled and planned anew for every
  schema (~1.5 ms of server CPU each, half again the DDL's own); it is now a function whose plans
  each session caches. One round trip per schema became one per batch. The CLI loaded every
  command's modules (cdktf, Stripe, …: ~0.8 s of CPU before the first query); it now loads only the
  command it runs. Ten sessions DDL-ing one database used ~25% more server CPU than two (each
  session applies every other's catalog invalidations): two per database by default
  (\`--database-concurrency\`). The runner's client CPU fell from ~1.7 s to ~0.7 s, its server CPU
  to about the floor's.

| measurement | median s | per run s |
| --- | ---: | --- |
| floor: psql, one session | ${fmt(floor)} | ${results.map((r) => fmt(r.floorMs)).join(', ')} |
| runner: apply | ${fmt(apply)} | ${results.map((r) => fmt(r.applyMs)).join(', ')} |
| runner: apply, CPU time of its process (user + system) | ${fmt(applyCpu)} | ${results.map((r) => fmt(r.applyCpuMs)).join(', ')} |
| runner: no-op rerun | ${fmt(noop)} | ${results.map((r) => fmt(r.noopMs)).join(', ')} |

**Targets** (missing one is reported, it does not fail the benchmark):

| target | measured | status |
|---|---|---|
| apply ≤ ${TARGETS.applyRatio.toFixed(1)} × the psql floor, ${n} schemas (median of the per-run ratios) | ${ratio.toFixed(2)} × (per run ${ratios.map((r) => r.toFixed(2)).join(', ')}) | ${status(ratio <= TARGETS.applyRatio)} |
| no-op rerun over ${n} schemas ≤ ${TARGETS.noopSeconds} s | ${fmt(noop)} s | ${status(noop / 1000 <= TARGETS.noopSeconds)} |
`;
  writeBenchmarkSection(DOC_FILE, 'migrate', body);
  console.log(`bench:migrate: wrote ${relative(process.cwd(), DOC_FILE)}`);
}

main().catch((e) => {
  console.error(`bench:migrate: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
