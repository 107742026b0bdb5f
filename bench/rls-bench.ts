// `npm run bench:rls`: what row-level security costs a pool query. A throwaway PostgreSQL 15
// (test/support/postgres.ts) holds the provisioned pool (migrations/pool, RLS enforced) and an
// identical copy without RLS; the same point and range queries run through withTenant as the app
// role (the tenant from the policy) and as a role without RLS with an explicit
// `WHERE tenant_id = …` (the same transaction and round trips), interleaved, medians compared.
// Then what withTenant's isolation guards cost: the RLS queries through withTenant vs through the
// bare protocol withTenant used before them (0f20909), the same way (report only, no target).
// Results go to docs/BENCHMARKS.md (section "rls").
//
//   npm run bench:rls
//   BENCH_TENANTS=1000 BENCH_TASKS_PER_TENANT=120 BENCH_ITERATIONS=2000 npm run bench:rls   # quick run
//   BENCH_DOCS=0|1   write docs/BENCHMARKS.md (default: only with the default sizes)
//   BENCH_SEED=<n>   the query sample
//   BENCH_GUARD_ITERATIONS=<n>   units of work per query and side of the guard measurement
//
// Exits 1 when a query does not use the composite index led by tenant_id (EXPLAIN), or the RLS
// side and the plain side do not return the same rows; a missed ratio target is reported only.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Table from 'cli-table3';
import { Pool, type PoolClient } from 'pg';
import { withTenant } from '../lib/runtime/with-tenant';
import type { TenantContext } from '../lib/runtime/tenant-context';
import { PostgresCluster } from '../test/support/postgres';
import { createPoolDatabase, POOL_APP_PASSWORD, repoRoot } from '../test/support/pool-db';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { prng } from '../test/support/seeded-random';
import { envInt, loadAverages } from './measure';

const TARGET_RATIO = 1.15;
const DEFAULTS = { tenants: 10_000, projectsPerTenant: 10, tasksPerTenant: 120, iterations: 20_000, guardIterations: 10_000, rounds: 5, explainSamples: 2_000 };


const CONFIG = {
  tenants: envInt('BENCH_TENANTS', DEFAULTS.tenants),
  projectsPerTenant: DEFAULTS.projectsPerTenant,
  tasksPerTenant: envInt('BENCH_TASKS_PER_TENANT', DEFAULTS.tasksPerTenant),
  iterations: envInt('BENCH_ITERATIONS', DEFAULTS.iterations),
  guardIterations: envInt('BENCH_GUARD_ITERATIONS', DEFAULTS.guardIterations),
  rounds: DEFAULTS.rounds,
  explainSamples: envInt('BENCH_EXPLAIN_SAMPLES', DEFAULTS.explainSamples),
  seed: envInt('BENCH_SEED', 424242),
};
const isDefault = CONFIG.tenants === DEFAULTS.tenants && CONFIG.tasksPerTenant === DEFAULTS.tasksPerTenant && CONFIG.iterations === DEFAULTS.iterations && CONFIG.guardIterations === DEFAULTS.guardIterations;
const WRITE_DOCS = process.env.BENCH_DOCS === undefined ? isDefault : process.env.BENCH_DOCS === '1';

/** The queries, as an application writes them against the pool (RLS) and against a table without RLS. */
const QUERIES = {
  point: {
    title: 'point: one task by id',
    rls: 'SELECT id, title, done, created_at FROM pool.tasks WHERE id = $1',
    plain: 'SELECT id, title, done, created_at FROM plain.tasks WHERE tenant_id = $1 AND id = $2',
  },
  range: {
    title: 'range: tasks of a project in a time window',
    rls: 'SELECT id, title, created_at FROM pool.tasks WHERE project_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at',
    plain: 'SELECT id, title, created_at FROM plain.tasks WHERE tenant_id = $1 AND project_id = $2 AND created_at >= $3 AND created_at < $4 ORDER BY created_at',
  },
} as const;
type QueryKind = keyof typeof QUERIES;


const fmt = (n: number, digits = 1) => n.toFixed(digits);
const fmtInt = (n: number) => n.toLocaleString('en-US');
const load = loadAverages;
const log = (message: string) => console.log(`[bench:rls] ${message}`);

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
const median = (values: readonly number[]) => quantile(values, 0.5);

/**
 * The data: tenants with deterministic ids, projects and tasks, rows of all tenants interleaved
 * on the heap (ordered by task id, a hash) as concurrent inserts would leave them. Loaded as the
 * superuser (which bypasses RLS) into pool.* and, identically, into plain.*.
 */
async function loadData(cluster: PostgresCluster): Promise<void> {
  const { tenants, projectsPerTenant, tasksPerTenant } = CONFIG;
  const tasksPerProject = Math.ceil(tasksPerTenant / projectsPerTenant);
  await cluster.withAdmin(async (c) => {
    await c.query(`CREATE SCHEMA plain`);
    for (const table of ['projects', 'tasks']) await c.query(`CREATE TABLE plain.${table} (LIKE pool.${table} INCLUDING ALL)`);
    await c.query('ALTER TABLE plain.tasks ADD FOREIGN KEY (tenant_id, project_id) REFERENCES plain.projects (tenant_id, id) ON DELETE CASCADE');
    // Read by the same role over the same connection as the pool: the only differences are the policy and the WHERE.
    await c.query('GRANT USAGE ON SCHEMA plain TO pool_app');
    await c.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA plain TO pool_app');

    const started = Date.now();
    for (const schema of ['pool', 'plain']) {
      await c.query(
        `INSERT INTO ${schema}.projects (tenant_id, id, name, created_at)
         SELECT md5('tenant-' || t)::uuid, md5('project-' || t || '-' || p)::uuid, 'project ' || p, timestamptz '2026-01-01' + t * interval '1 second'
           FROM generate_series(1, $1::int) t, generate_series(1, $2::int) p
          ORDER BY 2`,
        [tenants, projectsPerTenant],
      );
      await c.query(
        `INSERT INTO ${schema}.tasks (tenant_id, id, project_id, title, done, created_at)
         SELECT md5('tenant-' || t)::uuid, md5('task-' || t || '-' || p || '-' || k)::uuid, md5('project-' || t || '-' || p)::uuid,
                'task ' || k || ' of project ' || p, k % 3 = 0, timestamptz '2026-01-01' + k * interval '1 day'
           FROM generate_series(1, $1::int) t, generate_series(1, $2::int) p, generate_series(1, $3::int) k
          WHERE (p - 1) * $3::int + k <= $4::int
          ORDER BY 2`,
        [tenants, projectsPerTenant, tasksPerProject, tasksPerTenant],
      );
      log(`loaded ${schema}.* in ${fmt((Date.now() - started) / 1000)} s`);
    }
    await c.query('VACUUM (ANALYZE, FREEZE) pool.projects, pool.tasks, plain.projects, plain.tasks');
    await c.query('CHECKPOINT');
  }, 'pool');
}

interface Sample {
  readonly tenant: TenantContext & { model: 'pool' };
  readonly rlsParams: unknown[];
  readonly plainParams: unknown[];
}

/** Seeded random query parameters: a tenant, one of its tasks / projects, a window of days. */
function makeSamples(kind: QueryKind, n: number, random: () => number): Sample[] {
  const tasksPerProject = Math.ceil(CONFIG.tasksPerTenant / CONFIG.projectsPerTenant);
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const t = 1 + Math.floor(random() * CONFIG.tenants);
    const p = 1 + Math.floor(random() * CONFIG.projectsPerTenant);
    const k = 1 + Math.floor(random() * tasksPerProject);
    const tenant = { model: 'pool' as const, id: md5Uuid(`tenant-${t}`), slug: `tenant-${t}` };
    if (kind === 'point') {
      const task = md5Uuid(`task-${t}-${p}-${k}`);
      samples.push({ tenant, rlsParams: [task], plainParams: [tenant.id, task] });
    } else {
      const project = md5Uuid(`project-${t}-${p}`);
      const from = new Date(Date.UTC(2026, 0, 1) + k * 86_400_000);
      const to = new Date(from.getTime() + Math.ceil(tasksPerProject / 2) * 86_400_000);
      samples.push({ tenant, rlsParams: [project, from, to], plainParams: [tenant.id, project, from, to] });
    }
  }
  return samples;
}

function md5Uuid(text: string): string {
  // Same as PostgreSQL's md5(text)::uuid.
  const hex = createHash('md5').update(text).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One unit of work for a tenant: a transaction with the tenant's context and one query; returns the rows. */
type UnitOfWork = (pool: Pool, tenant: TenantContext, sql: string, params: unknown[]) => Promise<unknown[]>;

/** Through withTenant as the application calls it, with its isolation guards. */
const viaWithTenant: UnitOfWork = (pool, tenant, sql, params) => withTenant(pool, tenant, async (c) => (await c.query(sql, params)).rows);

/**
 * The baseline of the guard measurement: exactly the statements withTenant sent at 0f20909, before
 * its isolation guards (no Proxy, BEGIN without the search_path read, set_config as its own
 * round trip, COMMIT without the session-state check). Only for measuring what the guards cost: nothing else
 * may use it, it checks nothing.
 */
const bareUnitOfWork: UnitOfWork = async (pool, tenant, sql, params) => {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('select set_config($1, $2, true)', ['app.tenant_id', tenant.id]);
    const { rows } = await c.query(sql, params);
    await c.query('COMMIT');
    return rows;
  } finally {
    c.release();
  }
};

interface Side {
  readonly name: string;
  readonly pool: Pool;
  readonly sql: (kind: QueryKind) => string;
  readonly params: (s: Sample) => unknown[];
  readonly unitOfWork: UnitOfWork;
}

/** One unit of work of `side` (e.g. withTenant: BEGIN, set_config, the query, COMMIT); returns µs and the rows. */
async function timed(side: Side, kind: QueryKind, sample: Sample): Promise<{ us: number; rows: unknown[] }> {
  const start = process.hrtime.bigint();
  const rows = await side.unitOfWork(side.pool, sample.tenant, side.sql(kind), side.params(sample));
  return { us: Number(process.hrtime.bigint() - start) / 1000, rows };
}

/** Side `a` (measured: RLS, or withTenant with its guards) against side `b` (its baseline: plain, or the bare protocol). */
interface KindResult {
  readonly kind: QueryKind;
  readonly a: number[];
  readonly b: number[];
  /** Ratio of the medians per round (the noise of the machine). */
  readonly roundRatios: number[];
  /** a time / b time of each iteration (the two calls of an iteration run back to back). */
  readonly pairRatios: number[];
  readonly serverA: number[];
  readonly serverB: number[];
  readonly planA: number[];
  readonly planB: number[];
  readonly rowsPerQuery: number;
}

async function measureKind(kind: QueryKind, a: Side, b: Side, random: () => number, iterations: number, explainSamples: number): Promise<KindResult> {
  const perRound = Math.ceil(iterations / CONFIG.rounds);
  const result: KindResult = { kind, a: [], b: [], roundRatios: [], pairRatios: [], serverA: [], serverB: [], planA: [], planB: [], rowsPerQuery: 0 };
  // Warm-up: caches, plans, connections.
  for (const s of makeSamples(kind, Math.min(2000, perRound), random)) {
    await timed(a, kind, s);
    await timed(b, kind, s);
  }
  let rows = 0;
  for (let round = 0; round < CONFIG.rounds; round++) {
    const ra: number[] = [];
    const rb: number[] = [];
    const samples = makeSamples(kind, perRound, random);
    for (const [i, s] of samples.entries()) {
      // ABBA: alternate which side goes first, so neither always meets a warmer cache.
      let outA: { us: number; rows: unknown[] };
      let outB: { us: number; rows: unknown[] };
      if (i % 2 === 0) {
        outA = await timed(a, kind, s);
        outB = await timed(b, kind, s);
      } else {
        outB = await timed(b, kind, s);
        outA = await timed(a, kind, s);
      }
      if (JSON.stringify(outA.rows) !== JSON.stringify(outB.rows)) {
        throw new Error(`${kind}: ${a.name} and ${b.name} returned different rows for tenant ${s.tenant.slug} (${JSON.stringify(s.rlsParams)})`);
      }
      if (outA.rows.length === 0) throw new Error(`${kind}: no row for tenant ${s.tenant.slug} (${JSON.stringify(s.rlsParams)}): the sample is wrong`);
      rows += outA.rows.length;
      ra.push(outA.us);
      rb.push(outB.us);
      result.pairRatios.push(outA.us / outB.us);
    }
    result.a.push(...ra);
    result.b.push(...rb);
    result.roundRatios.push(median(ra) / median(rb));
    log(`${kind} round ${round + 1}/${CONFIG.rounds}: ${a.name} ${fmt(median(ra))} µs, ${b.name} ${fmt(median(rb))} µs, ratio ${(median(ra) / median(rb)).toFixed(3)}; load ${load()}`);
  }
  (result as { rowsPerQuery: number }).rowsPerQuery = rows / (perRound * CONFIG.rounds);
  // Server-side execution time alone (EXPLAIN ANALYZE, no round trips), interleaved the same way.
  for (const [i, s] of makeSamples(kind, explainSamples, random).entries()) {
    for (const side of i % 2 === 0 ? [a, b] : [b, a]) {
      const ms = await withTenant(side.pool, s.tenant, async (c) => serverMs(c, side.sql(kind), side.params(s)));
      (side === a ? result.serverA : result.serverB).push(ms.execution * 1000);
      (side === a ? result.planA : result.planB).push(ms.planning * 1000);
    }
  }
  return result;
}

async function serverMs(c: PoolClient, sql: string, params: unknown[]): Promise<{ planning: number; execution: number }> {
  const { rows } = await c.query(`EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) ${sql}`, params);
  const plan = rows[0]['QUERY PLAN'][0];
  return { planning: plan['Planning Time'], execution: plan['Execution Time'] };
}

/** EXPLAIN of each query on each side, inside withTenant (so the policy is in the plan), and the index each used. */
async function explainAll(rls: Side, plain: Side): Promise<{ kind: QueryKind; side: string; plan: string; index: string; usesIndex: boolean }[]> {
  const out: { kind: QueryKind; side: string; plan: string; index: string; usesIndex: boolean }[] = [];
  for (const kind of Object.keys(QUERIES) as QueryKind[]) {
    const [sample] = makeSamples(kind, 1, prng(CONFIG.seed + 1));
    for (const side of [rls, plain]) {
      const { plan, index } = await withTenant(side.pool, sample.tenant, async (c) => {
        const text = (await c.query(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS) ${side.sql(kind)}`, side.params(sample))).rows.map((r) => r['QUERY PLAN']).join('\n');
        const name = /Index (?:Only )?Scan using (\S+) on tasks/.exec(text)?.[1];
        // The index's key columns, from the catalog.
        const { rows } = name
          ? await c.query<{ cols: string[] }>(
            `SELECT array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS cols
               FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
              WHERE ic.relname = $1 AND n.nspname = $2`,
            [name, side.name === 'rls' ? 'pool' : 'plain'],
          )
          : { rows: [] };
        return { plan: text, index: name ? `${name} (${rows[0]?.cols.join(', ')})` : 'none' };
      });
      // Composite, led by tenant_id, and the tenant condition is an index condition (not a filter).
      const usesIndex = /\(tenant_id, [^)]+\)$/.test(index) && /Index Cond: \(\(tenant_id = /.test(plan);
      out.push({ kind, side: side.name, plan, index, usesIndex });
    }
  }
  return out;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = load();
  log(`${fmtInt(CONFIG.tenants)} tenants x ${CONFIG.tasksPerTenant} tasks = ${fmtInt(CONFIG.tenants * CONFIG.tasksPerTenant)} rows; ${fmtInt(CONFIG.iterations)} iterations per query and side`);
  const cluster = await PostgresCluster.start({ ssl: false, settings: { shared_buffers: '512MB', max_connections: 20, jit: false } });
  try {
    await createPoolDatabase(cluster, 'pool');
    await loadData(cluster);
    const [{ server_version: serverVersion }] = await cluster.query('SHOW server_version');
    const sizes = await cluster.query<{ name: string; rows: string; size: string }>(
      `SELECT n.nspname || '.' || c.relname AS name, c.reltuples::bigint::text AS rows, pg_size_pretty(pg_total_relation_size(c.oid)) AS size
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('pool', 'plain') AND c.relkind = 'r' ORDER BY 1`,
      [],
      'pool',
    );
    const [{ rls: rlsFlags }] = await cluster.query(
      "SELECT string_agg(c.relname || ' ' || c.relrowsecurity || '/' || c.relforcerowsecurity, ', ') AS rls FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'plain' AND c.relkind = 'r'",
      [],
      'pool',
    );
    if (/true/.test(rlsFlags)) throw new Error(`plain tables must not have RLS: ${rlsFlags}`);

    // One connection (one server process) for both sides, over the Unix socket: with a process per
    // side, where the OS scheduler put each on this shared machine skewed whole rounds.
    const pool = new Pool({ host: cluster.socketDir, port: cluster.port, user: 'pool_app', password: POOL_APP_PASSWORD, database: 'pool', max: 1 });
    pool.on('error', () => undefined); // the server's shutdown may reach an idle connection first
    const rls: Side = { name: 'rls', pool, sql: (k) => QUERIES[k].rls, params: (s) => s.rlsParams, unitOfWork: viaWithTenant };
    const plain: Side = { name: 'plain', pool, sql: (k) => QUERIES[k].plain, params: (s) => s.plainParams, unitOfWork: viaWithTenant };
    // The guards' cost: the same RLS query, through withTenant and through the bare protocol of 0f20909.
    const guarded: Side = { ...rls, name: 'withTenant' };
    const bare: Side = { ...rls, name: 'bare', unitOfWork: bareUnitOfWork };
    try {
      const plans = await explainAll(rls, plain);
      const random = prng(CONFIG.seed);
      const results: KindResult[] = [];
      for (const kind of Object.keys(QUERIES) as QueryKind[]) results.push(await measureKind(kind, rls, plain, random, CONFIG.iterations, CONFIG.explainSamples));
      // Its own sample stream, so the RLS measurement above keeps its samples.
      const guardRandom = prng(CONFIG.seed + 2);
      const guards: KindResult[] = [];
      for (const kind of Object.keys(QUERIES) as QueryKind[]) guards.push(await measureKind(kind, guarded, bare, guardRandom, CONFIG.guardIterations, 0));
      const report = render({ startedAt, loadBefore, loadAfter: load(), serverVersion, sizes, plans, results, guards });
      console.log(report.console);
      if (WRITE_DOCS) {
        const file = join(repoRoot(), 'docs', 'BENCHMARKS.md');
        writeBenchmarkSection(file, 'rls', report.markdown);
        log(`wrote ${file} (section rls)`);
      } else {
        log('docs/BENCHMARKS.md not written (not the default sizes; BENCH_DOCS=1 forces it)');
      }
      const missingIndex = plans.filter((p) => !p.usesIndex);
      if (missingIndex.length) {
        console.error(`[bench:rls] FAILED: not using the composite index led by tenant_id: ${missingIndex.map((p) => `${p.kind}/${p.side}`).join(', ')}`);
        return 1;
      }
      return 0;
    } finally {
      await pool.end();
    }
  } finally {
    await cluster.stop();
  }
}

function render(input: {
  startedAt: Date;
  loadBefore: string;
  loadAfter: string;
  serverVersion: string;
  sizes: { name: string; rows: string; size: string }[];
  plans: { kind: QueryKind; side: string; plan: string; index: string; usesIndex: boolean }[];
  results: KindResult[];
  guards: KindResult[];
}): { console: string; markdown: string } {
  const rows = input.results.map((r) => {
    const ratio = median(r.a) / median(r.b);
    return {
      query: QUERIES[r.kind].title,
      rows: r.rowsPerQuery,
      rls: median(r.a),
      plain: median(r.b),
      ratio,
      range: `${Math.min(...r.roundRatios).toFixed(3)}-${Math.max(...r.roundRatios).toFixed(3)}`,
      paired: median(r.pairRatios),
      p90: `${fmt(quantile(r.a, 0.9))} / ${fmt(quantile(r.b, 0.9))}`,
      server: `${fmt(median(r.serverA))} / ${fmt(median(r.serverB))}`,
      planning: `${fmt(median(r.planA))} / ${fmt(median(r.planB))}`,
      diff: median(r.a) - median(r.b),
      diffPlan: median(r.planA) - median(r.planB),
      diffExec: median(r.serverA) - median(r.serverB),
      serverRatio: median(r.serverA) / median(r.serverB),
      ok: ratio <= TARGET_RATIO,
    };
  });
  const guardRows = input.guards.map((r) => ({
    query: QUERIES[r.kind].title,
    rows: r.rowsPerQuery,
    guarded: median(r.a),
    bare: median(r.b),
    ratio: median(r.a) / median(r.b),
    range: `${Math.min(...r.roundRatios).toFixed(3)}-${Math.max(...r.roundRatios).toFixed(3)}`,
    paired: median(r.pairRatios),
    p90: `${fmt(quantile(r.a, 0.9))} / ${fmt(quantile(r.b, 0.9))}`,
    diff: median(r.a) - median(r.b),
  }));
  const guardTable = new Table({ head: ['query (guards)', 'rows', 'withTenant µs', 'bare µs', 'ratio', 'round ratios', 'paired ratio', 'p90 withTenant / bare µs', 'added µs'], style: { head: [], border: [] } });
  for (const r of guardRows) guardTable.push([r.query, fmt(r.rows), fmt(r.guarded), fmt(r.bare), r.ratio.toFixed(3), r.range, r.paired.toFixed(3), r.p90, fmt(r.diff)]);
  const table = new Table({ head: ['query', 'rows', 'RLS µs', 'plain µs', 'ratio', 'round ratios', 'paired ratio', 'p90 RLS / plain µs', 'server plan µs RLS / plain', 'server exec µs RLS / plain', 'server ratio'], style: { head: [], border: [] } });
  for (const r of rows) table.push([r.query, fmt(r.rows), fmt(r.rls), fmt(r.plain), r.ratio.toFixed(3), r.range, r.paired.toFixed(3), r.p90, r.planning, r.server, r.serverRatio.toFixed(2)]);

  const n = CONFIG.tenants * CONFIG.tasksPerTenant;
  const md = [
    '## RLS overhead (pool)',
    '',
    `Written by \`npm run bench:rls\` (bench/rls-bench.ts) on ${input.startedAt.toISOString().slice(0, 10)}.`,
    '',
    `**Machine:** ${machineDescription()}. PostgreSQL ${input.serverVersion} (throwaway cluster of test/support/postgres.ts: fsync off, shared_buffers 512MB, JIT off). Load average (1, 5, 15 min) before: ${input.loadBefore}; after: ${input.loadAfter}.`,
    '',
    '**Method.**',
    '',
    `- Data: ${fmtInt(CONFIG.tenants)} tenants, ${CONFIG.projectsPerTenant} projects and ${CONFIG.tasksPerTenant} tasks each: ${fmtInt(n)} rows in \`pool.tasks\` (migrations/pool, provisioned by \`provisionPool\`, RLS enabled and forced, policy \`tenant_isolation\`). An identical copy \`plain.*\` (\`CREATE TABLE … (LIKE pool.… INCLUDING ALL)\`: same columns, primary keys and indexes, same rows in the same heap order, tenants interleaved) has no RLS (\`relrowsecurity\` off, checked). Both vacuumed, frozen and analyzed.`,
    `- RLS side: \`withTenant(pool, { model: 'pool', id })\` as \`pool_app\` (not owner, no BYPASSRLS) and the query on \`pool.tasks\` without any tenant condition; the policy adds it. Plain side: the same \`withTenant\` call (BEGIN, \`set_config\`, query, COMMIT: the same statements and round trips) and the query on \`plain.tasks\`, where no policy applies, with an explicit \`WHERE tenant_id = $1\`. Both sides share one connection as \`pool_app\` (one server process: with a process per side, the OS scheduler of this shared 2-core machine skewed whole rounds one way or the other), over the Unix socket; unnamed statements, custom plans.`,
    `- Queries: *point* \`${QUERIES.point.rls}\` vs \`${QUERIES.point.plain}\`; *range* \`${QUERIES.range.rls}\` vs \`${QUERIES.range.plain}\`.`,
    `- ${fmtInt(CONFIG.iterations)} measured units of work per query and side in ${CONFIG.rounds} rounds, after a warm-up; random (seeded) tenant, task, project and window for each; the RLS and plain call of an iteration use the same parameters and alternate which goes first (ABBA); the rows they return are compared (the benchmark fails if they differ). Times are wall time of the whole \`withTenant\` call in the client (µs); the table shows medians; *ratio* = RLS median / plain median (the target: ≤ ${TARGET_RATIO}); *round ratios* the lowest and highest ratio of a round (noise); *paired ratio* the median of RLS time / plain time over the iterations (the two calls of an iteration run back to back, so machine load affects both); *server plan* / *server exec* the median \`Planning Time\` / \`Execution Time\` of \`EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON)\` over ${fmtInt(CONFIG.explainSamples)} samples per side (the server's own timings, without round trips; *server ratio* is the execution ratio).`,
    '',
    '| query | rows per query | RLS µs | plain µs | ratio | round ratios | paired ratio | p90 RLS / plain µs | server plan µs RLS / plain | server exec µs RLS / plain | server ratio | target ≤ ' + TARGET_RATIO + ' |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.query} | ${fmt(r.rows)} | ${fmt(r.rls)} | ${fmt(r.plain)} | ${r.ratio.toFixed(3)} | ${r.range} | ${r.paired.toFixed(3)} | ${r.p90} | ${r.planning} | ${r.server} | ${r.serverRatio.toFixed(2)} | ${r.ok ? 'met' : '**missed**'} |`),
    '',
    ...rows.map((r) => `- ${r.query}: RLS adds ${fmt(r.diff)} µs per unit of work (median), of which ${fmt(r.diffPlan)} µs in the planner (the policy's condition is planned as an index condition) and ${fmt(r.diffExec)} µs in execution (\`current_setting\` evaluated once per scan, as a runtime index key); the rest is outside both: the rewriter, which fetches the policy and adds it to the query, and noise.`),
    '',
    '### withTenant guards: withTenant vs the bare protocol (0f20909)',
    '',
    `Since 0f20909, \`withTenant\` guards the connection it lends: the callback gets a revocable proxy instead of the pooled client (unusable once the unit of work ends), BEGIN also reads \`current_setting('search_path')\` and sets the tenant context in the same message (one round trip fewer than at 0f20909), and COMMIT carries a check of the session's state in the same message (a tenant setting set at session level, a changed search_path, SET ROLE, temporary tables, held cursors), so a connection that would carry one tenant's state to the next is never returned to the pool. The server does more per unit of work, in fewer round trips. Measured here as the RLS queries above (\`pool.tasks\`, \`pool_app\`, same connection) through \`withTenant\` vs through the bare protocol \`withTenant\` sent at 0f20909 (BEGIN, \`set_config\`, query, COMMIT; \`bareUnitOfWork\` in the bench), ${fmtInt(CONFIG.guardIterations)} units of work per query and side in ${CONFIG.rounds} rounds, same samples per pair, ABBA, rows compared. The ratio and *added µs* are per unit of work (one transaction with one query), not per query of a longer transaction; no target is set, it is reported only.`,
    '',
    '| query | rows per query | withTenant µs | bare µs | ratio | round ratios | paired ratio | p90 withTenant / bare µs | added µs per unit of work |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...guardRows.map((r) => `| ${r.query} | ${fmt(r.rows)} | ${fmt(r.guarded)} | ${fmt(r.bare)} | ${r.ratio.toFixed(3)} | ${r.range} | ${r.paired.toFixed(3)} | ${r.p90} | ${fmt(r.diff)} |`),
    '',
    'Tables:',
    '',
    '| table | rows (estimate) | size with indexes |',
    '| --- | ---: | ---: |',
    ...input.sizes.map((s) => `| ${s.name} | ${fmtInt(Number(s.rows))} | ${s.size} |`),
    '',
    'Plans (`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, BUFFERS)` inside `withTenant`, one sample each). On the RLS side the policy becomes an index condition on the composite index led by `tenant_id`, exactly like the explicit condition on the plain side:',
    '',
    ...input.plans.flatMap((p) => [
      `${p.kind}, ${p.side === 'rls' ? 'RLS (pool_app)' : 'plain (explicit tenant_id)'}: index ${p.index}${p.usesIndex ? '' : ' — **not the composite index led by tenant_id**'}`,
      '',
      '```',
      p.plan,
      '```',
      '',
    ]),
  ].join('\n');
  const consoleText = [table.toString(), guardTable.toString(), ...input.plans.map((p) => `--- ${p.kind} / ${p.side}: ${p.index}${p.usesIndex ? '' : ' (NOT THE COMPOSITE INDEX)'}\n${p.plan}`)].join('\n');
  return { console: consoleText, markdown: md };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(`[bench:rls] failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
