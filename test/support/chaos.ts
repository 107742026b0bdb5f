/**
 * The chaos fault schedule, shared by the chaos test tier (test/reliability/chaos.test.ts) and the
 * chaos benchmark (bench/chaos-bench.ts): a pool of `tenancy worker` children that records any exit
 * it did not cause, the faults (kill -9 of a worker, PostgreSQL restart, Redis restart,
 * pg_terminate_backend of random client backends) drawn from a seeded PRNG, and the bridge fleet
 * the migration runs over. Nothing here depends on jest.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LifecycleTestbed } from './lifecycle';
import { startQueueWorker, type WorkerProcess } from './worker-process';

export type Fault = 'kill-worker' | 'restart-postgres' | 'restart-redis' | 'terminate-backends';
export const FAULT_KINDS: readonly Fault[] = ['kill-worker', 'restart-postgres', 'restart-redis', 'terminate-backends'];

/** Short locks, so that a killed worker's job is taken over quickly (production: 30 s each). */
export const CHAOS_WORKER_ENV: NodeJS.ProcessEnv = { TENANCY_QUEUE_LOCK_MS: '5000', TENANCY_LOCK_TTL_MS: '8000' };

interface PooledWorker {
  readonly process: WorkerProcess;
  /** Set before the owner kills or stops it: any other exit is a crash. */
  endedByOwner: boolean;
}

/** `tenancy worker` children; an exit the owner did not cause is recorded in `crashes` and the worker replaced. */
export class WorkerPool {
  private readonly workers: PooledWorker[] = [];
  readonly crashes: string[] = [];

  constructor(
    private readonly bed: LifecycleTestbed,
    private readonly env: NodeJS.ProcessEnv = CHAOS_WORKER_ENV,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Starts a worker; a worker that cannot reach its services while it starts exits by itself: tried again (5 attempts). */
  async add(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const process = await startQueueWorker(this.bed, this.env);
        const worker: PooledWorker = { process, endedByOwner: false };
        this.workers.push(worker);
        void process.exited.then((code) => {
          if (worker.endedByOwner) return;
          this.crashes.push(`worker ${process.child.pid} exited by itself (code ${code}, signal ${process.child.signalCode}): ${process.stderr().slice(-2000)}`);
          // Keep the platform able to converge; the crash is reported by the owner.
          this.add().catch((e) => this.crashes.push(`no replacement for crashed worker ${process.child.pid}: ${(e as Error).message}`));
        });
        return;
      } catch (e) {
        if (attempt >= 5) throw e;
        this.log(`worker start ${attempt} failed: ${(e as Error).message.slice(0, 300)}`);
      }
    }
  }

  private alive(): PooledWorker[] {
    return this.workers.filter((w) => !w.endedByOwner && w.process.child.exitCode === null && w.process.child.signalCode === null);
  }

  /** kill -9 of a random live worker, then a replacement. */
  async killOne(random: () => number): Promise<string> {
    const alive = this.alive();
    const victim = alive[Math.floor(random() * alive.length)];
    if (!victim) return 'no worker alive';
    victim.endedByOwner = true;
    victim.process.child.kill('SIGKILL');
    await victim.process.exited;
    await this.add();
    return `killed worker ${victim.process.child.pid}, started a replacement`;
  }

  /** SIGTERM to every live worker; resolves with their exit codes (0: a clean stop). */
  async terminateAll(): Promise<(number | null)[]> {
    const alive = this.workers.filter((w) => !w.endedByOwner);
    for (const w of alive) {
      w.endedByOwner = true;
      w.process.child.kill('SIGTERM');
    }
    return Promise.all(alive.map((w) => w.process.exited));
  }

  /** kill -9 of every worker (teardown). */
  async killAll(): Promise<void> {
    for (const w of this.workers) {
      w.endedByOwner = true;
      w.process.child.kill('SIGKILL');
    }
    await Promise.all(this.workers.map((w) => w.process.exited));
  }
}

/** Injects one fault for real; returns what it did, for the log. */
export async function injectFault(fault: Fault, random: () => number, bed: LifecycleTestbed, workers: WorkerPool): Promise<string> {
  switch (fault) {
    case 'kill-worker':
      return workers.killOne(random);
    case 'restart-postgres':
      bed.pg.restart();
      return 'restarted';
    case 'restart-redis':
      await bed.redis.restart();
      return 'restarted';
    case 'terminate-backends': {
      const backends = await bed.pg.query<{ pid: number; usename: string; application_name: string }>(
        `SELECT pid, usename, application_name FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid`);
      const chosen = backends.filter(() => random() < 0.5);
      for (const b of chosen) await bed.pg.query('SELECT pg_terminate_backend($1)', [b.pid]);
      return `terminated ${chosen.length} of ${backends.length}: ${chosen.map((b) => `${b.pid}/${b.usename}/${b.application_name}`).join(', ')}`;
    }
  }
}

export interface FaultScheduleOptions {
  readonly bed: LifecycleTestbed;
  readonly workers: WorkerPool;
  readonly random: () => number;
  /** At most this many faults. */
  readonly faults: number;
  /** Stops the schedule early once it returns true (checked before each fault). */
  readonly done?: () => boolean;
  /** Called after each fault with its number, kind and outcome. */
  readonly onFault?: (index: number, fault: Fault, outcome: string) => unknown;
}

/** Random faults, 0.5–3 s apart (pacing, not synchronisation); resolves with the number injected. */
export async function runFaultSchedule(options: FaultScheduleOptions): Promise<number> {
  let injected = 0;
  for (let i = 1; i <= options.faults; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500 + Math.floor(options.random() * 2_500)));
    if (options.done?.()) break;
    const fault = FAULT_KINDS[Math.floor(options.random() * FAULT_KINDS.length)];
    const outcome = await injectFault(fault, options.random, options.bed, options.workers);
    injected++;
    await options.onFault?.(i, fault, outcome);
  }
  return injected;
}

/** The latest version of the fleet's migrations written by writeFleetMigrations. */
export const FLEET_LATEST = 2;
export const fleetSlug = (i: number) => `fleet-${String(i + 1).padStart(3, '0')}`;
export const fleetSchemas = (n: number) => Array.from({ length: n }, (_, i) => `tenant_${fleetSlug(i).replace(/-/g, '_')}`);

/**
 * A bridge fleet of `schemas` schemas in a new database `database`, with `<dir>/migrations/tenant`
 * (two versions; the second sleeps 0.2 s per target so that a run is still going when faults come)
 * and `<dir>/targets.json` for `tenancy migrate --targets`.
 */
export async function createFleet(bed: LifecycleTestbed, dir: string, database: string, schemas: number): Promise<{ migrations: string; targets: string }> {
  const migrations = join(dir, 'migrations');
  mkdirSync(join(migrations, 'tenant'), { recursive: true });
  writeFileSync(join(migrations, 'tenant', '0001_items.up.sql'), 'CREATE TABLE items (id int PRIMARY KEY);\n');
  writeFileSync(join(migrations, 'tenant', '0002_notes.up.sql'), 'SELECT pg_sleep(0.2);\nCREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);\n');
  await bed.pg.createDatabase(database);
  await bed.pg.query(fleetSchemas(schemas).map((s) => `CREATE SCHEMA ${s};`).join('\n'), [], database);
  const targets = join(dir, 'targets.json');
  writeFileSync(targets, JSON.stringify({
    connections: { fleet: `postgres://postgres@/${database}?host=${encodeURIComponent(bed.pg.socketDir)}&port=${bed.pg.port}` },
    targets: fleetSchemas(schemas).map((_, i) => ({ kind: 'bridge', slug: fleetSlug(i), connection: 'fleet' })),
  }));
  return { migrations, targets };
}
