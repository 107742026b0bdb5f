import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { PoolConfig } from 'pg';
import { guardedPool } from '../db/lost-connections';
import { applyBatch, type BatchItem } from './apply-batch';
import { applyTarget, mayCreateSchema, type AfterApply, type ApplyOutcome } from './apply-target';
import type { MigrationSet, MigrationSets } from './migration-set';
import { planTarget, type Direction, type Step } from './plan';
import { summarize, type MigrationRun, type TargetResult } from './result';
import { ensureStateTable, readStates } from './state';
import { databaseKey, describeDatabase, migrationSetFor, TargetError, validateTargets, type MigrationTarget } from './targets';

/**
 * Migrates many targets at once: silo databases, bridge schemas, the pool, the control plane.
 *
 * - Targets are grouped by database (equal connections); each database gets one pg.Pool
 *   (max = databaseConcurrency) and one state query for all its targets. Up-to-date targets are
 *   reported from that query alone, without a transaction.
 * - At most `concurrency` targets are migrated at a time (and at most `concurrency` databases are
 *   open, each with at most `databaseConcurrency` connections), each target in its own transaction
 *   under its own platform lock (see apply-target.ts); targets whose pending migrations run in
 *   one transaction without a hook go several per round trip (apply-batch.ts).
 * - A target whose lock is held by another runner is retried `lockRetries` times within the run,
 *   after the database's other targets; then reported `skipped-locked`.
 * - A target's failure (or its database's) is its result; the others go on. That includes a
 *   lost connection (terminated backend, restarted or unreachable server): the target is
 *   `failed` with the error, nothing of its open transaction committed, and it is not retried in
 *   the run (a rerun applies what is pending). The database's other targets open fresh
 *   connections: after a restart they succeed once the server accepts connections again, and
 *   fail with the connection error while it does not.
 */
export interface MigrateOptions {
  readonly targets: readonly MigrationTarget[];
  /** One set for every target, or the sets by kind (bridge and silo use `tenant`). */
  readonly migrations: MigrationSet | MigrationSets;
  /** @default 'up' */
  readonly direction?: Direction;
  /** up: apply only up to this version; down: revert every version above it (required). */
  readonly toVersion?: number;
  /** Targets (and databases) migrated at the same time, over all databases. @default 10 */
  readonly concurrency?: number;
  /**
   * Connections to one database at the same time (at most `concurrency`). Migrations in one
   * database contend on its catalogs: each session applies the invalidations of every other
   * session's DDL, so beyond a couple of sessions, more add server work, not throughput
   * (bench/migrate-bench.ts: 10 sessions used ~25% more server CPU than 2 for the same 1,000
   * schemas); batching (apply-batch.ts) keeps each session busy without waiting on round trips.
   * @default 2
   */
  readonly databaseConcurrency?: number;
  /** `SET LOCAL lock_timeout` of every migration transaction. @default 5000 */
  readonly lockTimeoutMs?: number;
  /** `SET LOCAL statement_timeout` of every migration transaction; 0 for none. @default 600000 */
  readonly statementTimeoutMs?: number;
  /** Further attempts for a target whose lock another runner holds. @default 3 */
  readonly lockRetries?: number;
  /** Wait before the n-th retry: n × this. @default 200 */
  readonly lockRetryDelayMs?: number;
  /** Report what would be applied (status `pending`); read-only: no transaction, no lock, no state table. */
  readonly dryRun?: boolean;
  /** Called with every target's result as soon as it is final. */
  readonly onResult?: (result: TargetResult) => void;
  readonly afterApply?: AfterApply;
  /**
   * Enforce row-level security on the pool (lib/pool enforcePoolRls: every table with tenant_id
   * gets RLS enabled and forced, the tenant_isolation policy, a tenant_id index) in the
   * transaction of a pool target's last migration, before `afterApply`, and refuse (roll back) a
   * migration that leaves a relation neither tenant-scoped nor declared shared
   * (lib/pool/coverage.ts). @default true
   */
  readonly enforcePoolRls?: boolean;
  /** Run id (a UUID). @default a random UUID */
  readonly runId?: string;
}

export const MIGRATE_DEFAULTS = {
  concurrency: 10,
  databaseConcurrency: 2,
  lockTimeoutMs: 5_000,
  statementTimeoutMs: 600_000,
  lockRetries: 3,
  lockRetryDelayMs: 200,
} as const;

/** Targets per message of a batch (apply-batch.ts): beyond a few dozen, a round trip saves nothing more. */
const MAX_BATCH = 25;

const nonNegativeInt = (name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 0) throw new TargetError(`${name} must be a non-negative integer (got ${value})`);
  return value;
};

export async function migrateTargets(options: MigrateOptions): Promise<MigrationRun> {
  const startedAt = new Date();
  const direction = options.direction ?? 'up';
  const concurrency = nonNegativeInt('concurrency', options.concurrency ?? MIGRATE_DEFAULTS.concurrency);
  if (concurrency < 1) throw new TargetError('concurrency must be at least 1');
  const databaseConcurrency = Math.min(concurrency, nonNegativeInt('databaseConcurrency', options.databaseConcurrency ?? MIGRATE_DEFAULTS.databaseConcurrency));
  if (databaseConcurrency < 1) throw new TargetError('databaseConcurrency must be at least 1');
  const lockTimeoutMs = nonNegativeInt('lockTimeoutMs', options.lockTimeoutMs ?? MIGRATE_DEFAULTS.lockTimeoutMs);
  const statementTimeoutMs = nonNegativeInt('statementTimeoutMs', options.statementTimeoutMs ?? MIGRATE_DEFAULTS.statementTimeoutMs);
  const lockRetries = nonNegativeInt('lockRetries', options.lockRetries ?? MIGRATE_DEFAULTS.lockRetries);
  const lockRetryDelayMs = nonNegativeInt('lockRetryDelayMs', options.lockRetryDelayMs ?? MIGRATE_DEFAULTS.lockRetryDelayMs);
  if (options.toVersion !== undefined) nonNegativeInt('toVersion', options.toVersion);
  if (direction === 'down' && options.toVersion === undefined) throw new TargetError('down migrations need a target version (toVersion / --to)');
  validateTargets(options.targets);

  const sets = new Map<MigrationTarget, MigrationSet>();
  for (const t of options.targets) {
    const set = migrationSetFor(t, options.migrations);
    if (!set) throw new TargetError(`target ${JSON.stringify(t.name)}: no ${t.kind === 'bridge' || t.kind === 'silo' ? 'tenant' : t.kind} migrations given`);
    sets.set(t, set);
  }
  if (direction === 'down') assertRevertible([...new Set(sets.values())], options.toVersion!);

  const groups = new Map<string, { connection: PoolConfig; targets: MigrationTarget[] }>();
  for (const t of options.targets) {
    const key = databaseKey(t.connection);
    const group = groups.get(key) ?? { connection: t.connection, targets: [] };
    group.targets.push(t);
    groups.set(key, group);
  }

  const results = new Map<MigrationTarget, TargetResult>();
  const emit = (r: TargetResult, t: MigrationTarget) => {
    results.set(t, r);
    options.onResult?.(r);
  };
  const targetLimit = pLimit(concurrency);
  const groupLimit = pLimit(concurrency);
  const enforceRls = options.enforcePoolRls ?? true;
  const userAfterApply = options.afterApply;
  // Only targets with something to run before COMMIT get a hook (the others save a round trip).
  const afterApplyFor = (t: MigrationTarget): AfterApply | undefined =>
    enforceRls && t.kind === 'pool'
      ? async (client, target, steps) => {
        // Loaded for pool targets only: a fleet of tenant schemas does not pay for these modules at start-up.
        const { enforcePoolRls } = require('../pool/provision') as typeof import('../pool/provision');
        const { assertPoolCoverage } = require('../pool/coverage') as typeof import('../pool/coverage');
        await enforcePoolRls(client, target.schema);
        // Nothing may be left outside tenant isolation: a table without tenant_id must be declared shared.
        await assertPoolCoverage(client, target.schema, steps.map((s) => ({ file: s.script.file, sql: s.script.sql })));
        await userAfterApply?.(client, target, steps);
      }
      : userAfterApply;
  const common = { direction, toVersion: options.toVersion, lockTimeoutMs, statementTimeoutMs };

  await Promise.all([...groups.values()].map((group) => groupLimit(async () => {
    // Guarded (lib/db/lost-connections.ts): a connection the server ends fails its target, never the run.
    const pool = guardedPool({ application_name: 'tenancy-migrate', ...group.connection, max: databaseConcurrency });
    // At most databaseConcurrency of this database's targets (or batches) at a time, within the overall limit.
    const databaseLimit = pLimit(databaseConcurrency);
    const limited = <T>(fn: () => Promise<T>) => databaseLimit(() => targetLimit(fn));
    const database = describeDatabase(group.connection);
    const began = Date.now();
    try {
      let state: Awaited<ReturnType<typeof readStates>>;
      try {
        state = await targetLimit(() => readStates(pool, group.targets.map((t) => t.name)));
      } catch (e) {
        for (const t of group.targets) emit(resultOf(t, database, direction, { status: 'failed', steps: [], version: 0, error: `reading ${database}: ${(e as Error).message}`, code: (e as any)?.code }, 1, Date.now() - began), t);
        return;
      }
      const todo: MigrationTarget[] = [];
      for (const t of group.targets) {
        const applied = state.byTarget.get(t.name) ?? [];
        const plan = planTarget(sets.get(t)!, applied, { direction, toVersion: options.toVersion });
        const tookMs = Date.now() - began;
        if (plan.action === 'none') emit(resultOf(t, database, direction, { status: 'up-to-date', version: plan.version }, 0, tookMs), t);
        else if (plan.action === 'edited') emit(resultOf(t, database, direction, { status: 'edited', steps: [], version: plan.version, edited: plan.edited }, 0, tookMs), t);
        else if (plan.action === 'refuse') emit(resultOf(t, database, direction, { status: 'failed', steps: [], version: plan.version, error: plan.error }, 0, tookMs), t);
        else if (options.dryRun) emit(resultOf(t, database, direction, { status: 'pending', steps: plan.steps, version: plan.version }, 0, tookMs), t);
        else todo.push(t);
      }
      if (todo.length === 0) return;

      // Also when the state table exists: a database migrated by an older version may lack the platform-lock table.
      let stateTable: Promise<void> | undefined;
      const ensure = () => (stateTable ??= (async () => {
        const client = await pool.connect();
        try {
          await ensureStateTable(client);
        } finally {
          client.release();
        }
      })().catch((e) => {
        stateTable = undefined; // let the next target try again and report its own error
        throw e;
      }));

      // Targets whose pending migrations run in one transaction without a hook go in batches,
      // several per round trip (apply-batch.ts); the others, and those a batch sends back, alone.
      const batchItem = (t: MigrationTarget): BatchItem | undefined => {
        if (afterApplyFor(t)) return undefined;
        const expected = state.byTarget.get(t.name) ?? [];
        const plan = planTarget(sets.get(t)!, expected, { direction, toVersion: options.toVersion });
        if (plan.action !== 'migrate' || !plan.steps.every((s) => s.script.transactional)) return undefined;
        return { target: t, expected, steps: plan.steps, createSchema: mayCreateSchema(t) };
      };
      const alone = (t: MigrationTarget, expected: boolean) => limited(async () => {
        const start = Date.now();
        const outcome = await applyTarget(pool, t, sets.get(t)!, { ...common, afterApply: afterApplyFor(t), expected: expected ? state.byTarget.get(t.name) ?? [] : undefined, ensureStateTable: ensure });
        return [{ t, outcome, ms: Date.now() - start }];
      });
      let pending = todo;
      for (let attempt = 1; pending.length > 0; attempt++) {
        const final = attempt > lockRetries;
        const items = pending.map((t) => ({ t, item: batchItem(t) }));
        const batched = items.flatMap((x) => (x.item ? [x.item] : []));
        // Enough batches to keep every connection busy, none so large that a slow one holds up the run.
        const batchSize = Math.min(MAX_BATCH, Math.max(1, Math.ceil(batched.length / databaseConcurrency)));
        const batches: BatchItem[][] = [];
        for (let i = 0; i < batched.length; i += batchSize) batches.push(batched.slice(i, i + batchSize));
        const outcomes = (await Promise.all([
          ...items.filter((x) => !x.item).map((x) => alone(x.t, true)),
          ...batches.map((batch) => limited(() => applyBatch(pool, batch, { ...common, ensureStateTable: ensure, batchSize }))
            .then((done) => Promise.all(done.map(({ item, outcome, ms }) => (outcome.status === 'run-alone' ? alone(item.target, false) : [{ t: item.target, outcome, ms }]))))
            .then((nested) => nested.flat())),
        ])).flat();
        pending = [];
        for (const { t, outcome, ms } of outcomes) {
          if (outcome.status === 'skipped-locked' && !final) pending.push(t);
          else emit(resultOf(t, database, direction, outcome, attempt, ms), t);
        }
        if (pending.length) await delay(lockRetryDelayMs * attempt);
      }
    } finally {
      await pool.end().catch(() => undefined);
    }
  })));

  const finishedAt = new Date();
  const ordered = options.targets.map((t) => results.get(t)!);
  return {
    id: options.runId ?? randomUUID(),
    direction,
    toVersion: options.toVersion,
    dryRun: Boolean(options.dryRun),
    startedAt,
    finishedAt,
    results: ordered,
    summary: summarize(ordered, finishedAt.getTime() - startedAt.getTime()),
  };
}

/** Refuses a down run up front when a migration above the target version has no `.down.sql`. */
function assertRevertible(sets: readonly MigrationSet[], toVersion: number): void {
  const missing = sets.flatMap((s) => s.migrations.filter((m) => m.version > toVersion && !m.down).map((m) => m.up.file.replace(/\.up\.sql$/, '.down.sql')));
  if (missing.length) throw new TargetError(`cannot migrate down to ${toVersion}: missing ${missing.join(', ')}`);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const stepsOf = (steps: readonly Step[]) => steps.map((s) => ({ version: s.migration.version, name: s.migration.name, direction: s.direction }));

function resultOf(t: MigrationTarget, database: string, direction: Direction, outcome: ApplyOutcome | { status: 'pending'; steps: readonly Step[]; version: number }, attempts: number, durationMs: number): TargetResult {
  return {
    target: t.name,
    kind: t.kind,
    ...(t.tenantId ? { tenantId: t.tenantId } : {}),
    ...(t.slug ? { slug: t.slug } : {}),
    schema: t.schema,
    database,
    status: outcome.status,
    direction,
    version: outcome.version,
    migrations: 'steps' in outcome ? stepsOf(outcome.steps) : [],
    ...(outcome.status === 'failed' ? { error: outcome.error, ...(outcome.code ? { code: outcome.code } : {}), ...(outcome.file ? { file: outcome.file } : {}) } : {}),
    ...(outcome.status === 'edited' ? { edited: outcome.edited } : {}),
    attempts,
    durationMs,
  };
}
