// Credit debits per second on one hot tenant, for both debit strategies of lib/billing/credits, in
// the same run: a throwaway PostgreSQL 15 (test/support/postgres.ts, TLS as the control plane
// requires) migrated through 0009 by a master role, `clients` connections of the runtime role (a
// member of tenancy_control_plane) debiting 1 credit each in a loop. The strategies alternate in
// rounds (A B A B …) so a load change on the machine hits both; the ledger of each is verified
// afterwards (grants − debits = balance, every entry's balance_after), a wrong ledger throws.
// Called by bench/billing-bench.ts (`npm run bench:billing`, docs/BENCHMARKS.md); runnable alone:
//
//   node dist/bench/billing-debits.js            BENCH_DEBIT_MS=<ms per strategy> BENCH_DEBIT_CLIENTS=<n>
import { Pool } from 'pg';
import { creditEntries, debitCredits, DEBIT_STRATEGIES, DEFAULT_DEBIT_STRATEGY, grantCredits, verifyCreditLedger, type DebitStrategy } from '../lib/billing/credits';
import { PostgresCluster } from '../test/support/postgres';
import { creditsControlPlane } from '../test/billing/credits-fixture';
import { envInt } from './measure';

export interface DebitStrategyMeasurement {
  readonly strategy: string;
  readonly debitsPerSecond: number;
  readonly clients: number;
}

export interface MeasureDebitOptions {
  /** Measured time per strategy, split over `rounds`. @default 10000 */
  readonly durationMs?: number;
  /** Concurrent clients (one connection each) on the hot tenant. @default 32 */
  readonly clients?: number;
  /** Alternating rounds per strategy. @default 4 */
  readonly rounds?: number;
  readonly log?: (message: string) => void;
}

export async function measureDebitStrategies(options: { durationMs?: number; clients?: number } & MeasureDebitOptions = {}): Promise<DebitStrategyMeasurement[]> {
  const durationMs = options.durationMs ?? 10_000;
  const clients = options.clients ?? 32;
  const rounds = options.rounds ?? 4;
  const log = options.log ?? (() => undefined);
  if (!Number.isInteger(clients) || clients < 1) throw new Error(`clients must be a positive integer (got ${clients})`);
  const cluster = await PostgresCluster.start({ settings: { max_connections: clients + 30 } });
  try {
    const cp = await creditsControlPlane(cluster, 'credits_bench');
    try {
      const tenants = new Map<DebitStrategy, string>();
      for (const strategy of DEBIT_STRATEGIES) {
        const tenant = await cp.tenant();
        // Enough that no round runs dry: the threshold is crossed never (the low-credit path is one debit per grant).
        await grantCredits(cp.pool, tenant.id, 1e12, { reason: 'benchmark grant' });
        tenants.set(strategy, tenant.id);
      }
      const pools = Array.from({ length: clients }, () => cp.runtime(1));
      try {
        await Promise.all(pools.map((p) => p.query('SELECT 1')));
        const totals = new Map<DebitStrategy, { debits: number; ms: number }>(DEBIT_STRATEGIES.map((s) => [s, { debits: 0, ms: 0 }]));
        for (let round = 0; round < rounds; round++) {
          // Alternate which strategy goes first, so neither always follows the other's checkpoint.
          const order = round % 2 ? [...DEBIT_STRATEGIES].reverse() : DEBIT_STRATEGIES;
          for (const strategy of order) {
            const r = await hammer(pools, tenants.get(strategy)!, strategy, durationMs / rounds);
            const t = totals.get(strategy)!;
            t.debits += r.debits;
            t.ms += r.ms;
            log(`round ${round + 1}/${rounds} ${strategy}: ${r.debits} debits in ${r.ms.toFixed(0)} ms`);
          }
        }
        for (const [strategy, tenantId] of tenants) {
          const check = await verifyCreditLedger(cp.pool, tenantId);
          const debits = (await creditEntries(cp.pool, tenantId)).filter((e) => e.kind === 'debit').length;
          if (!check.ok || debits !== totals.get(strategy)!.debits) {
            throw new Error(`${strategy}: the ledger does not match (${debits} debit entries, ${totals.get(strategy)!.debits} debits counted; ${check.problems.slice(0, 3).join('; ')})`);
          }
        }
        return DEBIT_STRATEGIES.map((strategy) => {
          const t = totals.get(strategy)!;
          return { strategy, debitsPerSecond: (t.debits * 1000) / t.ms, clients };
        });
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    } finally {
      await cp.close();
    }
  } finally {
    await cluster.stop();
  }
}

/** Every client debits 1 credit in a loop until the time is up; the debits done and the time taken. */
async function hammer(pools: readonly Pool[], tenantId: string, strategy: DebitStrategy, ms: number): Promise<{ debits: number; ms: number }> {
  let debits = 0;
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(pools.map(async (pool) => {
    while (performance.now() < deadline) {
      await debitCredits(pool, tenantId, 1, { strategy, reason: 'benchmark' });
      debits++;
    }
  }));
  return { debits, ms: performance.now() - start };
}

if (require.main === module) {
  measureDebitStrategies({ durationMs: envInt('BENCH_DEBIT_MS', 10_000), clients: envInt('BENCH_DEBIT_CLIENTS', 32), log: (m) => console.log(`[bench:debits] ${m}`) })
    .then((results) => {
      for (const r of results) console.log(`${r.strategy}${r.strategy === DEFAULT_DEBIT_STRATEGY ? ' (default)' : ''}: ${r.debitsPerSecond.toFixed(0)} debits/s with ${r.clients} clients`);
    })
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    });
}
