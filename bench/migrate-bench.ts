// `npm run bench:migrate`: the migration runner (`tenancy migrate`, a child process) on 1,000
// bridge schemas against a floor, a single psql session running the same DDL in every schema;
// written to docs/BENCHMARKS.md (section "migrate").
//
//   npm run bench:migrate
//   BENCH_SCHEMAS=200 BENCH_RUNS=1 npm run bench:migrate   # quick run (the doc is then left alone)
//   BENCH_DOCS=0|1        # write docs/BENCHMARKS.md (default: only with the default size and ≥ 3 runs)
//   BENCH_CONCURRENCY=10  # --concurrency of the runner (default: its default, 10)
//   BENCH_WARMUP=0        # skip the unmeasured full-size warm-up round
//
// Starts its own PostgreSQL 15 (test/support/postgres.ts: a throwaway cluster, run as the
// `postgres` OS user when this runs as root). Exits 1 when a measured run does not do what it
// should (a schema not migrated, a rerun that is not a no-op); a missed target is reported, not an error.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { PG_BIN, PostgresCluster } from '../test/support/postgres';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { median, envInt, loadAverages } from './measure';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const CLI = join(REPO_ROOT, 'dist', 'bin', 'tenancy.js');
const BENCH_MIGRATIONS = join(REPO_ROOT, 'bench', 'migrations');
const MIGRATION_FILE = join(BENCH_MIGRATIONS, 'tenant', '0001_items.up.sql');
const PSQL = join(PG_BIN, 'psql');
const DATABASE = 'bench';
const DEFAULT_SCHEMAS = 1000;
const DEFAULT_RUNS = 3;
const TARGETS = { applyRatio: 1.5, noopSeconds: 2 };

interface RunResult {
  readonly floorMs: number;
  readonly applyMs: number;
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

/** `tenancy migrate` as a child process; returns wall time and the JSON-lines summary. */
function runner(targetsFile: string, concurrency: number | undefined): { ms: number; summary: any } {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1' };
  delete env.NODE_OPTIONS;
  const args = [CLI, 'migrate', 'up', '--targets', targetsFile, '--migrations', BENCH_MIGRATIONS, '--json', ...(concurrency ? ['--concurrency', String(concurrency)] : [])];
  const start = process.hrtime.bigint();
  const child = spawnSync(process.execPath, args, { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const lines = (child.stdout ?? '').trim().split('\n');
  const summary = lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
  if (child.status !== 0 || summary?.type !== 'summary') {
    throw new Error(`tenancy migrate failed (${child.status ?? child.signal}):\n${child.stderr}\n${lines.filter((l) => !l.includes('"applied"')).slice(0, 20).join('\n')}`);
  }
  return { ms, summary };
}

async function main(): Promise<void> {
  const schemas = envInt('BENCH_SCHEMAS', DEFAULT_SCHEMAS);
  const runs = envInt('BENCH_RUNS', DEFAULT_RUNS);
  const warmup = process.env.BENCH_WARMUP !== '0';
  const concurrency = process.env.BENCH_CONCURRENCY ? envInt('BENCH_CONCURRENCY', 10) : undefined;
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS === '1' : schemas === DEFAULT_SCHEMAS && runs >= DEFAULT_RUNS;
  const migrationSql = require('node:fs').readFileSync(MIGRATION_FILE, 'utf8') as string;
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
      const measureApply = () => (apply = runner(targetsFile, concurrency));
      if (run % 2) (measureFloor(), measureApply());
      else (measureApply(), measureFloor());
      const noop = runner(targetsFile, concurrency);

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
      if (run > 0) results.push({ floorMs, applyMs: apply!.ms, noopMs: noop.ms });
      else warm = { floorMs, applyMs: apply!.ms, noopMs: noop.ms };
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
  const ratios = results.map((r) => r.applyMs / r.floorMs);
  const ratio = apply / floor;
  const table = new Table({ head: ['measurement', 'median s', 'runs (s)'], style: { head: [], border: [] } });
  table.push(['floor: psql, one session', fmt(floor), results.map((r) => fmt(r.floorMs)).join(', ')]);
  table.push(['runner: apply', fmt(apply), results.map((r) => fmt(r.applyMs)).join(', ')]);
  table.push(['runner: no-op rerun', fmt(noop), results.map((r) => fmt(r.noopMs)).join(', ')]);
  console.log(table.toString());
  console.log(`apply/floor ratio ${ratio.toFixed(2)} (per run ${ratios.map((r) => r.toFixed(2)).join(', ')}); target ≤ ${TARGETS.applyRatio}: ${ratio <= TARGETS.applyRatio ? 'met' : 'MISSED'}`);
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
    (${concurrency ?? 10} targets at a time) on the other ${n} schemas: one state query for the database,
    then per schema one round trip: \`BEGIN\`, \`lock_timeout\`/\`statement_timeout\`, a DO block taking
    the advisory lock and checking the state, the DDL, its record, \`COMMIT\` (an earlier version with a
    separate lock-and-read round trip used ~25% more CPU in node); node start-up, the targets file and
    ${n} JSON lines included;
  - *no-op rerun*: the same command again (every schema up to date: one state query, no transaction).
- The migration (bench/migrations/tenant/0001_items.up.sql): a table with an identity key, an index, an added column.
- Time is wall time from spawn to exit; floor and apply alternate in ABBA order after an unmeasured
  full-size warm-up round${warm ? ` (runner first, on the fresh cluster: floor ${fmt(warm.floorMs)} s, apply ${fmt(warm.applyMs)} s; whoever
  goes first on a fresh cluster is slower)` : ' (skipped in this run: BENCH_WARMUP=0)'}; each cell is the median of ${runs} runs. Each run checks
  that every schema got the table and (runner) its state row, and that the rerun changed nothing.

| measurement | median s | per run s |
| --- | ---: | --- |
| floor: psql, one session | ${fmt(floor)} | ${results.map((r) => fmt(r.floorMs)).join(', ')} |
| runner: apply | ${fmt(apply)} | ${results.map((r) => fmt(r.applyMs)).join(', ')} |
| runner: no-op rerun | ${fmt(noop)} | ${results.map((r) => fmt(r.noopMs)).join(', ')} |

**Targets** (missing one is reported, it does not fail the benchmark):

| target | measured | status |
|---|---|---|
| apply ≤ ${TARGETS.applyRatio} × the psql floor, ${n} schemas | ${ratio.toFixed(2)} × (per run ${ratios.map((r) => r.toFixed(2)).join(', ')}) | ${status(ratio <= TARGETS.applyRatio)} |
| no-op rerun over ${n} schemas ≤ ${TARGETS.noopSeconds} s | ${fmt(noop)} s | ${status(noop / 1000 <= TARGETS.noopSeconds)} |
`;
  writeBenchmarkSection(DOC_FILE, 'migrate', body);
  console.log(`bench:migrate: wrote ${relative(process.cwd(), DOC_FILE)}`);
}

main().catch((e) => {
  console.error(`bench:migrate: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
