// `npm run bench:billing`: what usage-based billing costs, written to docs/BENCHMARKS.md (section "billing").
//
// 1. Metering overhead per request: a minimal node:http handler without and with the usage
//    middleware (lib/metering: UsageRecorder on a real redis-server, flushing every second), the
//    same run, the variants alternating in rounds; client-side latency p50/p99 and the ratios.
//    Target: ≤ 5 % at p99.
// 2. Reporting: one report run (UsageReporter) of N tenants × 3 dimensions to the local
//    Stripe-compatible server: API calls of one closed hour from Redis, storage (an in-memory
//    measure: the S3 listing is not part of this number; it is tested against moto), active seats
//    counted per tenant through the router in each pool tenant's RLS context. Target: 10,000 tenants ≤ 60 s.
// 3. Credit debits per second on one hot tenant for both debit strategies (bench/billing-debits.ts).
//
//   npm run bench:billing
//   BENCH_BILLING_REQUESTS=20000  # requests per variant (default 20000)
//   BENCH_BILLING_ROUNDS=10       # alternating rounds (default 10)
//   BENCH_BILLING_TENANTS=10000   # tenants reported (default 10000)
//   BENCH_DEBIT_MS=10000          # measured ms per debit strategy (default 10000)
//   BENCH_DEBIT_CLIENTS=32        # concurrent debit clients (default 32)
//   BENCH_DOCS=0|1                # write docs/BENCHMARKS.md (default: only with the default sizes)
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { Redis } from 'ioredis';
import Stripe from 'stripe';
import { DEFAULT_DEBIT_STRATEGY } from '../lib/billing/credits';
import { provisionPool } from '../lib/pool/provision';
import { TenantRouter } from '../lib/runtime/router';
import { StaticSecretResolver } from '../lib/runtime/secret-resolver';
import { RouterSeatCounter } from '../lib/metering/seat-usage';
import type { StorageMeasure } from '../lib/metering/storage-usage';
import { UsageRecorder } from '../lib/metering/usage-recorder';
import { usageMiddleware } from '../lib/metering/usage-middleware';
import { UsageReporter } from '../lib/metering/usage-reporter';
import { meteringControlPlane, usageMeters } from '../test/metering/metering-fixture';
import { applyPoolMigrations, POOL_APP_PASSWORD } from '../test/support/pool-db';
import { PostgresCluster } from '../test/support/postgres';
import { RedisServer } from '../test/support/redis';
import { measureDebitStrategies } from './billing-debits';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { envInt, loadAverages } from './measure';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DEFAULTS = { requests: 20_000, rounds: 10, tenants: 10_000, debitMs: 10_000, debitClients: 32 };
const HOUR = 3_600_000;
/** Meter events in flight during the reporting measurement (TENANCY_USAGE_CONCURRENCY of a real run). */
const REPORT_CONCURRENCY = 32;
const log = (line: string) => console.log(`bench:billing: ${line}`);

interface Latencies {
  p50: number;
  p99: number;
  mean: number;
  n: number;
}

function percentiles(samples: number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { p50: at(0.5), p99: at(0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, n: sorted.length };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Sequential requests on one keep-alive connection; each latency in µs. */
async function drive(port: number, tenants: readonly string[], n: number, agent: Agent, out: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api', agent, headers: { 'x-tenant-id': tenants[i % tenants.length] } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    out.push(Number(process.hrtime.bigint() - start) / 1000);
  }
}

async function meteringOverhead(redisUrl: string, requests: number, rounds: number) {
  const recorder = new UsageRecorder({ redis: redisUrl });
  const metering = usageMiddleware({ recorder, tenantOf: (req: IncomingMessage) => req.headers['x-tenant-id'] as string });
  // The same minimal handler; the second runs the middleware first.
  const plain = createServer((req, res) => {
    void req.headers['x-tenant-id'];
    res.end('ok');
  });
  const metered = createServer((req, res) => {
    metering(req, res);
    void req.headers['x-tenant-id'];
    res.end('ok');
  });
  const [plainPort, meteredPort] = [await listen(plain), await listen(metered)];
  const tenants = Array.from({ length: 100 }, () => randomUUID());
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples = { plain: [] as number[], metered: [] as number[] };
  try {
    // Warm-up of both (JIT, connections), not measured.
    await drive(plainPort, tenants, 2000, agent, []);
    await drive(meteredPort, tenants, 2000, agent, []);
    const perRound = Math.max(1, Math.floor(requests / rounds));
    for (let round = 0; round < rounds; round++) {
      const order: ('plain' | 'metered')[] = round % 2 ? ['metered', 'plain'] : ['plain', 'metered'];
      for (const variant of order) await drive(variant === 'plain' ? plainPort : meteredPort, tenants, perRound, agent, samples[variant]);
    }
    await recorder.flush();
    const stats = recorder.stats();
    return { plain: percentiles(samples.plain), metered: percentiles(samples.metered), recorder: stats };
  } finally {
    agent.destroy();
    await recorder.close();
    await new Promise((resolve) => plain.close(resolve));
    await new Promise((resolve) => metered.close(resolve));
  }
}

/** The local Stripe-compatible server in a child process (bench/stripe-mock-child.ts). */
async function startStripeChild(): Promise<{ host: string; port: number; meterEvents: (key: string) => Promise<number>; stop: () => void }> {
  const child = fork(join(__dirname, 'stripe-mock-child.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { host, port } = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { host: string; port: number }));
    child.once('exit', (code) => reject(new Error(`the Stripe server child exited (${code})`)));
  });
  return {
    host,
    port,
    meterEvents: (key) => new Promise((resolve) => {
      child.once('message', (m) => resolve((m as { count: number }).count));
      child.send({ meterEvents: key });
    }),
    stop: () => child.disconnect(),
  };
}

async function reporting(cluster: PostgresCluster, redisUrl: string, tenantCount: number) {
  const stripeServer = await startStripeChild();
  const redis = new Redis(redisUrl);
  const cp = await meteringControlPlane(cluster, 'control_plane_bench');
  const key = `sk_test_billingbench${randomUUID().replace(/-/g, '')}`;
  const stripe = new Stripe(key, { host: stripeServer.host, port: stripeServer.port, protocol: 'http', maxNetworkRetries: 2 });
  let router: TenantRouter | undefined;
  try {
    await usageMeters(stripe);
    // The pool database: every tenant is a pool tenant with i % 7 active users (and one stale).
    await cluster.createDatabase('pool_bench');
    await cluster.withAdmin(async (admin) => {
      await provisionPool(admin, { appPassword: POOL_APP_PASSWORD });
      await applyPoolMigrations(admin, { extraSql: ['CREATE TABLE users (tenant_id uuid NOT NULL, id uuid NOT NULL, last_login timestamptz, PRIMARY KEY (tenant_id, id))'] });
    }, 'pool_bench');
    log(`creating ${tenantCount} tenants with Stripe customers`);
    const tenants = Array.from({ length: tenantCount }, (_, i) => ({ id: randomUUID(), slug: `bench-${i}`, customer: '' }));
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < tenants.length) {
        const t = tenants[next++];
        t.customer = (await stripe.customers.create({ name: t.slug })).id;
      }
    }));
    const placement = JSON.stringify({ host: cluster.host, port: cluster.port, database: 'pool_bench', schema: 'pool', role: 'pool_app', secret_ref: 'bench:pool_app' });
    await cluster.query(
      `INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement, stripe_customer_id)
       SELECT id, slug, 'pool', 'pro', 'active', 'us-east-1', $3::jsonb, customer FROM unnest($1::uuid[], $2::text[], $4::text[]) AS t(id, slug, customer)`,
      [tenants.map((t) => t.id), tenants.map((t) => t.slug), placement, tenants.map((t) => t.customer)],
      'control_plane_bench',
    );
    await cluster.query(
      `INSERT INTO pool.users SELECT t.id, gen_random_uuid(), now() - make_interval(days => CASE WHEN k = 0 THEN 45 ELSE k END)
         FROM unnest($1::uuid[], $2::int[]) AS t(id, n), generate_series(0, t.n) AS k`,
      [tenants.map((t) => t.id), tenants.map((_, i) => i % 7)],
      'pool_bench',
    );
    // One closed hour of API calls for every tenant.
    const now = Date.now();
    // A minute into the last hour closed by now (the reporter's default closeAfterMs is 5 min).
    const inClosedHour = Math.floor((now - 300_000) / HOUR) * HOUR - HOUR + 60_000;
    const recorder = new UsageRecorder({ redis: redisUrl, now: () => inClosedHour, flushIntervalMs: 60_000 });
    tenants.forEach((t, i) => recorder.record(t.id, 'api_calls', 1 + (i % 50)));
    await recorder.close();

    router = new TenantRouter({
      controlPlane: cp.pool,
      secrets: new StaticSecretResolver({ 'bench:pool_app': { username: 'pool_app', password: POOL_APP_PASSWORD } }),
      connectionBudget: 16,
      maxConnectionsPerPool: 16,
      tenantCacheTtlMs: 0,
      poolConfig: { ssl: { ca: cluster.tls ? readFileSync(cluster.tls.caFile, 'utf8') : undefined, servername: cluster.host, rejectUnauthorized: true } },
    });
    const storage: StorageMeasure = { bytes: async (t) => 1_000_000 * (1 + (t.slug.length % 9)) };
    const reporter = new UsageReporter({ pool: cp.pool, redis, stripe, storage, seats: new RouterSeatCounter(router), now: () => now, concurrency: REPORT_CONCURRENCY });
    log(`reporting ${tenantCount} tenants × 3 dimensions`);
    const start = performance.now();
    const run = await reporter.run();
    const ms = performance.now() - start;
    const events = await stripeServer.meterEvents(key);
    const failed = Object.values(run.dimensions).reduce((a, d) => a + d.failed + d.unconfirmed, 0);
    // A rerun sends nothing: the time it takes to find everything reported.
    const rerunStart = performance.now();
    const rerun = await reporter.run();
    const rerunMs = performance.now() - rerunStart;
    const resent = Object.values(rerun.dimensions).reduce((a, d) => a + d.reported, 0);
    return { ms, events, failed, rerunMs, resent, dimensions: run.dimensions, errors: run.errors };
  } finally {
    await router?.close();
    await cp.close();
    redis.disconnect();
    stripeServer.stop();
  }
}

async function main(): Promise<void> {
  const requests = envInt('BENCH_BILLING_REQUESTS', DEFAULTS.requests);
  const rounds = envInt('BENCH_BILLING_ROUNDS', DEFAULTS.rounds);
  const tenantCount = envInt('BENCH_BILLING_TENANTS', DEFAULTS.tenants);
  const debitMs = envInt('BENCH_DEBIT_MS', DEFAULTS.debitMs);
  const debitClients = envInt('BENCH_DEBIT_CLIENTS', DEFAULTS.debitClients);
  const defaults = requests === DEFAULTS.requests && rounds === DEFAULTS.rounds && tenantCount === DEFAULTS.tenants && debitMs === DEFAULTS.debitMs && debitClients === DEFAULTS.debitClients;
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS === '1' : defaults;
  const loadBefore = loadAverages();
  log(`requests ${requests} per variant in ${rounds} rounds, ${tenantCount} tenants reported, debits ${debitMs} ms × ${debitClients} clients`);

  const [cluster, redisServer] = await Promise.all([PostgresCluster.start({ settings: { max_connections: 120 } }), RedisServer.start()]);
  let overhead: Awaited<ReturnType<typeof meteringOverhead>>;
  let report: Awaited<ReturnType<typeof reporting>>;
  try {
    log('metering overhead');
    overhead = await meteringOverhead(redisServer.url, requests, rounds);
    report = await reporting(cluster, redisServer.url, tenantCount);
  } finally {
    await redisServer.stop();
    await cluster.stop();
  }
  log('credit debits');
  const debits = await measureDebitStrategies({ durationMs: debitMs, clients: debitClients, log: (m) => log(`debits: ${m}`) });
  const loadAfter = loadAverages();

  const us = (v: number) => v.toFixed(1);
  const ratio = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(1)} %`;
  const p99Overhead = overhead.metered.p99 / overhead.plain.p99 - 1;
  const table = new Table({ head: ['measurement', 'without recorder', 'with recorder', 'overhead'], style: { head: [], border: [] } });
  table.push(['p50 latency µs', us(overhead.plain.p50), us(overhead.metered.p50), ratio(overhead.metered.p50, overhead.plain.p50)]);
  table.push(['p99 latency µs', us(overhead.plain.p99), us(overhead.metered.p99), ratio(overhead.metered.p99, overhead.plain.p99)]);
  table.push(['mean latency µs', us(overhead.plain.mean), us(overhead.metered.mean), ratio(overhead.metered.mean, overhead.plain.mean)]);
  console.log(table.toString());
  console.log(`recorder: ${JSON.stringify(overhead.recorder)}`);
  console.log(`reporting ${tenantCount} tenants × 3 dimensions: ${(report.ms / 1000).toFixed(1)} s, ${report.events} meter events (${(report.events / (report.ms / 1000)).toFixed(0)}/s), ${report.failed} failed; rerun ${(report.rerunMs / 1000).toFixed(1)} s, ${report.resent} sent again`);
  for (const d of debits) console.log(`debits ${d.strategy}: ${d.debitsPerSecond.toFixed(0)}/s with ${d.clients} clients`);
  const problems = [
    ...(report.failed > 0 ? [`${report.failed} windows failed: ${report.errors.slice(0, 3).join('; ')}`] : []),
    ...(report.events !== tenantCount * 3 ? [`${report.events} meter events at Stripe for ${tenantCount * 3} windows`] : []),
    ...(report.resent > 0 ? [`the rerun sent ${report.resent} windows again`] : []),
  ];

  if (writeDocs) {
    const body = `## Billing: metering overhead, usage reporting, credit debits

Written by \`npm run bench:billing\` (bench/billing-bench.ts) on ${new Date().toISOString().slice(0, 10)}.

**Machine:** ${machineDescription()}. Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter} (the machine is shared: other work ran meanwhile).

### Metering overhead per request

**Method.** Two node:http servers in one process with the same minimal handler (\`res.end('ok')\`);
the second runs the usage middleware first (lib/metering: the call counted at \`finish\` into the
UsageRecorder's in-process buffer, flushed to a real redis-server every second as Lua batches).
One client in the same process sends sequential requests on one keep-alive connection, 100
tenants in turn; ${requests} measured requests per variant after 2,000 warm-up requests each, in
${rounds} rounds alternating which variant goes first. Latency is measured by the client (request
to end of response). The baseline is the handler without the recorder, measured in the same run.

| latency | without recorder (baseline) | with recorder | overhead |
| --- | ---: | ---: | ---: |
| p50, µs | ${us(overhead.plain.p50)} | ${us(overhead.metered.p50)} | ${ratio(overhead.metered.p50, overhead.plain.p50)} |
| p99, µs | ${us(overhead.plain.p99)} | ${us(overhead.metered.p99)} | ${ratio(overhead.metered.p99, overhead.plain.p99)} |
| mean, µs | ${us(overhead.plain.mean)} | ${us(overhead.metered.mean)} | ${ratio(overhead.metered.mean, overhead.plain.mean)} |

Target ≤ 5 % at p99: **${p99Overhead <= 0.05 ? 'met' : 'not met'}** (${(p99Overhead * 100).toFixed(1)} %). A minimal handler is the worst case: a request that does real
work (a database query) pays the same few microseconds on a much larger latency. At p99 the difference
between the variants is within what the shared machine's load moves from round to round.

### Usage reporting

**Method.** ${tenantCount} tenants (pool model) with Stripe customers on the local Stripe-compatible server (in its own process),
each with API calls in one closed hour (in Redis, written by the recorder), a storage value and active users in the
shared pool database (the seats query run per tenant through TenantRouter.withResolvedTenant: the tenant's RLS
context, 16 connections). One \`UsageReporter.run()\` (${REPORT_CONCURRENCY} meter events in flight, 500 windows per control-plane
write): reads the windows, records ${tenantCount * 3} windows as pending in the control plane, sends them as meter
events, marks them reported. Storage is measured by an in-memory stand-in here (the S3 listing is tested against
moto in test/metering/storage-report.test.ts, not timed). Then a second run, which must send nothing.

| measurement | value |
| --- | ---: |
| ${tenantCount} tenants × 3 dimensions, one run: wall s | ${(report.ms / 1000).toFixed(1)} |
| meter events accepted | ${report.events} |
| meter events / s | ${(report.events / (report.ms / 1000)).toFixed(0)} |
| second run (nothing to send): wall s | ${(report.rerunMs / 1000).toFixed(1)} |
| windows sent again by the second run | ${report.resent} |

Target ≤ 60 s for 10,000 tenants: **${report.ms <= 60_000 && problems.length === 0 ? 'met' : 'not met'}**${problems.length ? ' (not every window was reported: see Problems)' : ''}.

### Credit debits on one hot tenant

**Method.** bench/billing-debits.ts: ${debitClients} clients (one connection each) debiting 1 credit in a loop on one
tenant's balance, for ${debitMs / 1000} s per strategy, alternating in rounds; the ledger verified afterwards.

| strategy | debits / s | ratio to \`select-for-update\` |
| --- | ---: | ---: |
${debits.map((d) => `| \`${d.strategy}\`${d.strategy === DEFAULT_DEBIT_STRATEGY ? ' (default)' : ''} | ${d.debitsPerSecond.toFixed(0)} | ${(d.debitsPerSecond / (debits.find((x) => x.strategy === 'select-for-update')?.debitsPerSecond ?? d.debitsPerSecond)).toFixed(2)} |`).join('\n')}

${problems.length ? `**Problems:** ${problems.join('; ')}` : 'Every window reached Stripe once; the second run sent nothing.'}
`;
    writeBenchmarkSection(DOC_FILE, 'billing', body);
    log(`wrote ${relative(process.cwd(), DOC_FILE)}`);
  } else {
    log(`${relative(process.cwd(), DOC_FILE)} left alone (BENCH_DOCS=1 to write it)`);
  }
  if (problems.length > 0) {
    console.error(`bench:billing: ${problems.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(`bench:billing: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
