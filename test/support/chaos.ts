/**
 * The chaos fault schedule, shared by the chaos test tier (test/reliability/chaos.test.ts) and the
 * chaos benchmark (bench/chaos-bench.ts): a pool of `tenancy worker` children that records any exit
 * it did not cause, the faults (kill -9 of a worker, PostgreSQL restart, Redis restart, PgBouncer
 * restart, pg_terminate_backend of random client backends) drawn from a seeded PRNG, the bridge
 * fleet the migration runs over, and application traffic (withTenant) to the fleet through
 * PgBouncer. Nothing here depends on jest.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { types } from 'node:util';
import type { Pool } from 'pg';
import { guardedPool } from '../../lib/db/lost-connections';
import { USAGE_REPORT_JOB } from '../../lib/metering/usage-keys';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import { withTenant } from '../../lib/runtime/with-tenant';
import type { LifecycleTestbed } from './lifecycle';
import { PgbouncerProcess } from './pgbouncer';
import { scramSha256Verifier } from './postgres';
import { startQueueWorker, type WorkerProcess } from './worker-process';

export type Fault = 'kill-worker' | 'restart-postgres' | 'restart-redis' | 'restart-pgbouncer' | 'terminate-backends';
export const FAULT_KINDS: readonly Fault[] = ['kill-worker', 'restart-postgres', 'restart-redis', 'restart-pgbouncer', 'terminate-backends'];

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
export async function injectFault(fault: Fault, random: () => number, bed: LifecycleTestbed, workers: WorkerPool, bouncer?: PgbouncerProcess): Promise<string> {
  switch (fault) {
    case 'kill-worker':
      return workers.killOne(random);
    case 'restart-postgres':
      bed.pg.restart();
      return 'restarted';
    case 'restart-redis':
      await bed.redis.restart();
      return 'restarted';
    case 'restart-pgbouncer':
      if (!bouncer) throw new Error('restart-pgbouncer: no PgBouncer in this schedule');
      await bouncer.restart();
      return `restarted (pid ${bouncer.pid})`;
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
  /** The PgBouncer to restart among the faults. @default none: no restart-pgbouncer fault */
  readonly bouncer?: PgbouncerProcess;
  readonly random: () => number;
  /** At most this many faults. */
  readonly faults: number;
  /** Stops the schedule early once it returns true (checked before each fault). */
  readonly done?: () => boolean;
  /** Called after each fault with its number, kind and outcome. */
  readonly onFault?: (index: number, fault: Fault, outcome: string) => unknown;
}

/**
 * Random faults, 0.5–3 s apart (pacing, not synchronisation); resolves with the number injected.
 * The first faults are every kind once, in a seeded random order, so that a run of at least as
 * many faults as kinds exercises each; the rest are drawn at random.
 */
export async function runFaultSchedule(options: FaultScheduleOptions): Promise<number> {
  let injected = 0;
  const kinds = options.bouncer ? FAULT_KINDS : FAULT_KINDS.filter((k) => k !== 'restart-pgbouncer');
  const eachOnce = [...kinds];
  for (let i = eachOnce.length - 1; i > 0; i--) {
    const j = Math.floor(options.random() * (i + 1));
    [eachOnce[i], eachOnce[j]] = [eachOnce[j], eachOnce[i]];
  }
  for (let i = 1; i <= options.faults; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500 + Math.floor(options.random() * 2_500)));
    if (options.done?.()) break;
    const fault = eachOnce[i - 1] ?? kinds[Math.floor(options.random() * kinds.length)];
    const outcome = await injectFault(fault, options.random, options.bed, options.workers, options.bouncer);
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

/** The fleet's application role, reaching its schemas through PgBouncer (transaction mode). */
const FLEET_APP = { user: 'fleet_app', password: 'fleet-app-pw' };
const FLEET_BOUNCER_ADMIN = { user: 'fleet_bouncer_admin', password: 'fleet-bouncer-admin-pw' };

/**
 * PgBouncer in transaction mode in front of the fleet database `database`, as an application's
 * connection pooler: role `fleet_app` (USAGE on the fleet's schemas, nothing else), SCRAM through
 * PgBouncer's userlist, TLS to the server. Stop it (or let the testbed's teardown) when done.
 */
export async function startFleetBouncer(bed: LifecycleTestbed, database: string, schemas: number): Promise<PgbouncerProcess> {
  await bed.pg.createRole(FLEET_APP.user, { password: FLEET_APP.password });
  await bed.pg.query(`GRANT USAGE ON SCHEMA ${fleetSchemas(schemas).join(', ')} TO ${FLEET_APP.user}`, [], database);
  return PgbouncerProcess.start({
    settings: { host: bed.pg.host, port: bed.pg.port, dbname: database, serverTlsCaFile: bed.pg.tls!.caFile, defaultPoolSize: 4, maxClientConn: 50, adminUsers: [FLEET_BOUNCER_ADMIN.user] },
    users: [{ name: FLEET_APP.user, secret: await bed.pg.storedPassword(FLEET_APP.user) }, { name: FLEET_BOUNCER_ADMIN.user, secret: scramSha256Verifier(FLEET_BOUNCER_ADMIN.password) }],
  });
}

/** What the application traffic saw: calls that succeeded, failures by message shape, context violations. */
export interface AppTrafficResult {
  readonly calls: number;
  readonly ok: number;
  /** Failed calls, counted by their error's name and message with numbers removed. */
  readonly failures: Record<string, number>;
  /** A call that ran with another tenant's search_path: must never happen. */
  readonly wrongContext: readonly string[];
  /** A failure that was not an Error object (a library bug). */
  readonly notErrors: readonly string[];
}

/**
 * An application using the library: `concurrency` loops of withTenant calls on random fleet
 * tenants through PgBouncer (a guarded pg.Pool, as the router uses), each checking that it runs
 * in its own tenant's schema. A fault fails calls; it must never crash this process, run a call
 * in another tenant's context, or keep the pool from recovering. stop() ends the loops.
 */
export class AppTraffic {
  private readonly pool: Pool;
  private readonly tenants: { id: string; slug: string; schema: string }[];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private calls = 0;
  private ok = 0;
  private readonly failures: Record<string, number> = {};
  private readonly wrongContext: string[] = [];
  private readonly notErrors: string[] = [];

  constructor(bouncer: PgbouncerProcess, database: string, schemas: number, private readonly random: () => number, concurrency = 2) {
    this.pool = guardedPool({ ...bouncer.clientConfig({ ...FLEET_APP, database }), max: Math.max(1, concurrency), connectionTimeoutMillis: 10_000 });
    this.tenants = fleetSchemas(schemas).map((schema, i) => ({ id: randomUUID(), slug: fleetSlug(i), schema }));
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  /** One call on a random tenant; resolves true if it succeeded (failures are recorded, never thrown). */
  async call(): Promise<boolean> {
    const tenant = this.tenants[Math.floor(this.random() * this.tenants.length)];
    this.calls++;
    try {
      const schema = await withTenant(this.pool, { model: 'bridge', id: tenant.id, slug: tenant.slug }, async (c) =>
        (await c.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0].schema);
      if (schema !== tenant.schema) this.wrongContext.push(`${tenant.slug} ran in ${schema}`);
      this.ok++;
      return true;
    } catch (e) {
      // isNativeError, not instanceof: under jest, errors made by Node's core come from another realm.
      const isError = types.isNativeError(e);
      if (!isError) this.notErrors.push(String(e));
      const key = isError ? `${e.name}: ${e.message.replace(/\d+/g, 'N').slice(0, 160)}` : 'not an Error';
      this.failures[key] = (this.failures[key] ?? 0) + 1;
      return false;
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      // A failed call is retried after a pause, as a client retries a failed request (pacing, not synchronisation).
      if (!(await this.call())) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  result(): AppTrafficResult {
    return { calls: this.calls, ok: this.ok, failures: { ...this.failures }, wrongContext: [...this.wrongContext], notErrors: [...this.notErrors] };
  }

  /** Ends the loops (each finishes its call in flight) and the pool. */
  async stop(): Promise<AppTrafficResult> {
    this.running = false;
    await Promise.all(this.loops);
    await this.pool.end();
    return this.result();
  }
}

/**
 * Lifecycle jobs on the queue per state, leaving out the hourly billing job (its scheduler keeps
 * one `usage-report` job delayed until the next hour; it is not a tenant's job).
 */
export async function lifecycleJobCounts(queue: LifecycleQueue): Promise<{ failed: number; active: number; waiting: number; delayed: number }> {
  const states = ['failed', 'active', 'waiting', 'delayed'] as const;
  const counts = { failed: 0, active: 0, waiting: 0, delayed: 0 };
  for (const state of states) {
    const jobs = await queue.queue.getJobs([state]);
    counts[state] = jobs.filter((j) => j && j.name !== USAGE_REPORT_JOB).length;
  }
  return counts;
}
