import type { ClientBase, PoolClient } from 'pg';
import type { ChangeReason } from './plan';

/**
 * The rollout records of the control plane (tenancy.rollouts, tenancy.rollout_stacks: migration
 * 0012): what `tenancy fleet deploy` writes, `fleet status` reads and `fleet resume` continues.
 * The row life cycle is the contract between the coordinator (lib/fleet/rollout.ts) and the
 * workers (lib/fleet/rollout-worker.ts): pending → queued (coordinator) → applying → applied |
 * failed, or back to queued for a retry (worker); a resume puts failed and interrupted rows back to
 * pending.
 */
export type RolloutStatus = 'running' | 'stopped' | 'finished';
export type RolloutStackStatus = 'pending' | 'queued' | 'applying' | 'applied' | 'failed';
export const ROLLOUT_STACK_STATUSES: readonly RolloutStackStatus[] = ['pending', 'queued', 'applying', 'applied', 'failed'];

/** A wave as planned when the rollout was created. */
export interface RolloutWave {
  readonly index: number;
  /** "platform", "canary", or the cumulative percentage it reaches ("10%"). */
  readonly name: string;
  readonly size: number;
}

export interface Rollout {
  readonly id: string;
  readonly status: RolloutStatus;
  readonly waves: readonly RolloutWave[];
  readonly parallel: number;
  /** "0", "3", "5%". */
  readonly maxFailures: string;
  readonly artifacts: string;
  readonly outdir: string;
  readonly libraryVersion: string;
  readonly stopReason: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
}

export interface RolloutStack {
  readonly rolloutId: string;
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly tenantId: string | null;
  readonly wave: number;
  readonly change: 'new' | 'changed';
  readonly reasons: readonly ChangeReason[];
  readonly contentHash: string;
  readonly fileHash: string;
  readonly components: Record<string, string>;
  readonly libraryVersion: string;
  readonly fleetTenants: number;
  readonly artifactKey: string;
  readonly status: RolloutStackStatus;
  readonly round: number;
  readonly attempts: number;
  readonly worker: string | null;
  readonly error: string | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

/** A stack as the coordinator creates it (status pending, round 0). */
export type NewRolloutStack = Pick<RolloutStack, 'stack' | 'kind' | 'tenantId' | 'wave' | 'change' | 'reasons' | 'contentHash' | 'fileHash' | 'components' | 'libraryVersion' | 'fleetTenants' | 'artifactKey'>;

export type NewRollout = Pick<Rollout, 'id' | 'waves' | 'parallel' | 'maxFailures' | 'artifacts' | 'outdir' | 'libraryVersion' | 'createdBy'>;

/** Another rollout is running: two would race for the same stacks. */
export class RolloutConflictError extends Error {
  constructor(readonly running: Pick<Rollout, 'id' | 'createdAt' | 'createdBy'>) {
    super(`rollout ${running.id} is running (created ${running.createdAt.toISOString()} by ${running.createdBy}): wait for it (tenancy fleet status ${running.id}), or, if its coordinator is gone, continue it with tenancy fleet resume ${running.id}`);
    this.name = 'RolloutConflictError';
  }
}

type Queryable = Pick<ClientBase, 'query'>;

const ROLLOUT_COLUMNS = `id::text AS id, status, waves, parallel, max_failures AS "maxFailures", artifacts, outdir, library_version AS "libraryVersion",
  stop_reason AS "stopReason", created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt", finished_at AS "finishedAt"`;

const STACK_COLUMNS = `rollout_id::text AS "rolloutId", stack, kind, tenant_id::text AS "tenantId", wave, change, reasons, content_hash AS "contentHash",
  file_hash AS "fileHash", components, library_version AS "libraryVersion", fleet_tenants AS "fleetTenants", artifact_key AS "artifactKey",
  status, round, attempts, worker, error, started_at AS "startedAt", finished_at AS "finishedAt"`;

/** The running rollout, if any (at most one: partial unique index rollouts_one_running). */
export async function runningRollout(db: Queryable): Promise<Rollout | undefined> {
  const { rows } = await db.query(`SELECT ${ROLLOUT_COLUMNS} FROM tenancy.rollouts WHERE status = 'running'`);
  return rows[0];
}

export async function rolloutById(db: Queryable, id: string): Promise<Rollout | undefined> {
  if (!UUID.test(id)) return undefined;
  const { rows } = await db.query(`SELECT ${ROLLOUT_COLUMNS} FROM tenancy.rollouts WHERE id = $1::uuid`, [id]);
  return rows[0];
}

/** The rollout created last. */
export async function latestRollout(db: Queryable): Promise<Rollout | undefined> {
  const { rows } = await db.query(`SELECT ${ROLLOUT_COLUMNS} FROM tenancy.rollouts ORDER BY created_at DESC, id LIMIT 1`);
  return rows[0];
}

/** Every stack of a rollout, by wave then name. */
export async function rolloutStacks(db: Queryable, rolloutId: string): Promise<RolloutStack[]> {
  const { rows } = await db.query(`SELECT ${STACK_COLUMNS} FROM tenancy.rollout_stacks WHERE rollout_id = $1 ORDER BY wave, stack`, [rolloutId]);
  return rows;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === '23505';

/**
 * Inserts a running rollout and its pending stacks in one transaction on `client` (a dedicated
 * connection: `prepare` runs inside the transaction, after the rollout row took the one-running
 * index, so a second `fleet deploy` is refused before it uploads anything, and a failed `prepare`
 * leaves no record). Throws {@link RolloutConflictError} while another rollout runs.
 */
export async function createRollout(client: ClientBase, rollout: NewRollout, prepare: () => Promise<NewRolloutStack[]>): Promise<void> {
  await client.query('BEGIN');
  try {
    try {
      await client.query(
        `INSERT INTO tenancy.rollouts (id, status, waves, parallel, max_failures, artifacts, outdir, library_version, created_by)
         VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8)`,
        [rollout.id, JSON.stringify(rollout.waves), rollout.parallel, rollout.maxFailures, rollout.artifacts, rollout.outdir, rollout.libraryVersion, rollout.createdBy],
      );
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      await client.query('ROLLBACK');
      const running = await runningRollout(client);
      throw new RolloutConflictError(running ?? { id: '(one that has just finished)', createdAt: new Date(), createdBy: 'unknown' });
    }
    const stacks = await prepare();
    await client.query(
      `INSERT INTO tenancy.rollout_stacks (rollout_id, stack, kind, tenant_id, wave, change, reasons, content_hash, file_hash, components, library_version, fleet_tenants, artifact_key)
       SELECT $1, r.stack, r.kind, r."tenantId", r.wave, r.change, r.reasons, r."contentHash", r."fileHash", r.components, r."libraryVersion", r."fleetTenants", r."artifactKey"
         FROM jsonb_to_recordset($2::jsonb) AS r(stack text, kind text, "tenantId" uuid, wave integer, change text, reasons text[], "contentHash" text,
                                               "fileHash" text, components jsonb, "libraryVersion" text, "fleetTenants" integer, "artifactKey" text)`,
      [rollout.id, JSON.stringify(stacks)],
    );
    await client.query('COMMIT');
  } catch (e) {
    if (!(e instanceof RolloutConflictError)) await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * pending → queued, round + 1, committed, then `enqueue(round)` (the BullMQ add of the round's job
 * id). In this order a worker never takes a job whose row is not queued yet (a row a concurrent
 * UPDATE has not committed does not match the worker's claim at all: it is skipped, not waited
 * for). A failed add puts the row back to pending; a coordinator that dies between the commit and
 * the add leaves a queued row without a job, which the next look (reconcileInFlight in rollout.ts)
 * or a resume puts back to pending, to be queued with the next round. False when the row was not
 * pending (nothing enqueued).
 */
export async function enqueueStack(db: Queryable, rolloutId: string, stack: string, enqueue: (round: number) => Promise<void>): Promise<boolean> {
  const { rows } = await db.query(
    `UPDATE tenancy.rollout_stacks SET status = 'queued', round = round + 1, error = NULL
      WHERE rollout_id = $1 AND stack = $2 AND status = 'pending' RETURNING round`,
    [rolloutId, stack],
  );
  if (rows.length === 0) return false;
  const round: number = rows[0].round;
  try {
    await enqueue(round);
  } catch (e) {
    await db.query(`UPDATE tenancy.rollout_stacks SET status = 'pending' WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status = 'queued'`, [rolloutId, stack, round]).catch(() => undefined);
    throw e;
  }
  return true;
}

/**
 * A queued or applying row whose job ended without the worker recording the end (its attempts
 * used up before it could claim or record, or the job is gone) → failed, with why. Only for the
 * row's current round: a resumed stack's newer job is left alone.
 */
export async function failStackWithoutWorker(db: Queryable, rolloutId: string, stack: string, round: number, error: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE tenancy.rollout_stacks SET status = 'failed', error = $4, finished_at = now()
      WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status IN ('queued', 'applying')`,
    [rolloutId, stack, round, error.slice(0, 4000)],
  );
  return (rowCount ?? 0) > 0;
}

/** Rows back to pending for a resume (failed ones, and interrupted ones whose job is no longer live). */
export async function resetStacksToPending(db: Queryable, rolloutId: string, stacks: readonly string[]): Promise<void> {
  if (stacks.length === 0) return;
  await db.query(
    `UPDATE tenancy.rollout_stacks SET status = 'pending', worker = NULL, started_at = NULL, finished_at = NULL
      WHERE rollout_id = $1 AND stack = ANY($2::text[]) AND status IN ('failed', 'queued', 'applying')`,
    [rolloutId, stacks],
  );
}

/** running → stopped, with why. */
export async function stopRollout(db: Queryable, rolloutId: string, reason: string): Promise<void> {
  await db.query(`UPDATE tenancy.rollouts SET status = 'stopped', stop_reason = $2, updated_at = now() WHERE id = $1 AND status = 'running'`, [rolloutId, reason]);
}

/** running → finished. */
export async function finishRollout(db: Queryable, rolloutId: string): Promise<void> {
  await db.query(`UPDATE tenancy.rollouts SET status = 'finished', stop_reason = NULL, updated_at = now(), finished_at = now() WHERE id = $1 AND status = 'running'`, [rolloutId]);
}

/** stopped → running for a resume; {@link RolloutConflictError} while another rollout runs. */
export async function restartRollout(db: Queryable, rolloutId: string): Promise<void> {
  try {
    await db.query(`UPDATE tenancy.rollouts SET status = 'running', stop_reason = NULL, updated_at = now() WHERE id = $1 AND status = 'stopped'`, [rolloutId]);
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    const running = await runningRollout(db);
    throw new RolloutConflictError(running ?? { id: '(one that has just finished)', createdAt: new Date(), createdBy: 'unknown' });
  }
}

// ---------------------------------------------------------------------------------------------
// The coordinator's lock
// ---------------------------------------------------------------------------------------------

/**
 * The advisory lock a coordinator holds, on its own session, for as long as it runs a rollout: a
 * rollout that is `running` while nobody holds its lock was interrupted (its coordinator died,
 * which ends the session and frees the lock), and `fleet resume` may continue it. Two-key form,
 * (namespace, hashtext(id)): no clash with the project's single-key advisory locks. The control
 * plane is the platform's own database: no tenant role connects to it (lib/db/platform-locks.ts
 * says why tenant-facing databases use row locks instead).
 */
const LOCK_NAMESPACE = 7_316_014;
const LOCK_ARGS = `${LOCK_NAMESPACE}, hashtext($1::text)`;

/** Takes the rollout's coordinator lock on `session` without waiting; false when another session holds it. */
export async function tryLockRollout(session: PoolClient | ClientBase, rolloutId: string): Promise<boolean> {
  const { rows } = await session.query(`SELECT pg_try_advisory_lock(${LOCK_ARGS}) AS ok`, [rolloutId.toLowerCase()]);
  return rows[0].ok === true;
}

export async function unlockRollout(session: PoolClient | ClientBase, rolloutId: string): Promise<void> {
  await session.query(`SELECT pg_advisory_unlock(${LOCK_ARGS})`, [rolloutId.toLowerCase()]);
}

/** The backend pid of the session holding the rollout's coordinator lock, or null (no coordinator runs it). */
export async function rolloutLockHolder(db: Queryable, rolloutId: string): Promise<number | null> {
  const { rows } = await db.query(
    `SELECT pid FROM pg_catalog.pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ${LOCK_NAMESPACE}::oid AND objid = hashtext($1::text)::oid`,
    [rolloutId.toLowerCase()],
  );
  return rows[0]?.pid ?? null;
}
