import { basename } from 'node:path';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { connectionLost } from '../db/lost-connections';
import { quoteIdent, quoteLiteral } from '../db/sql';
import type { MigrationSet } from './migration-set';
import { chunkSteps, planTarget, versionAfter, type Direction, type Step } from './plan';
import { ensureLockRowSql, holdForSessionSql, releaseSessionSql, tryLockSql } from '../db/platform-locks';
import { GUARD_ERRORS, guardCallSql, targetLockName, readStateSql, recordAppliedSql, recordRevertedSql, timeoutSql, type AppliedMigration } from './state';
import { splitSqlStatements } from './split-sql';
import type { MigrationTarget } from './targets';

/**
 * Applies (or reverts) one target's pending migrations:
 *
 * - transactional steps, optimistic first round trip (when the database's state read is given):
 *   `BEGIN`, `SET LOCAL lock_timeout/statement_timeout`, the guard function (lib/migrate/state.ts) that takes
 *   the target's platform lock (a row of tenancy.platform_locks, SKIP LOCKED: lib/db/platform-locks.ts)
 *   and checks its state and schema (raising otherwise),
 *   `SET LOCAL search_path`, the first file, its record, and `COMMIT` when it is the last: one
 *   round trip for the usual single pending migration. A held lock gives `skipped-locked`; a
 *   changed state falls back to:
 * - transactional steps, locked round trip: `BEGIN`, the timeouts, the lock and the state re-read
 *   in one round trip; then one round trip per migration (`COMMIT` with the last);
 * - a `-- tenancy:no-transaction` step: the same lock, held for the session (this backend recorded
 *   as the row's holder), the state re-read, the statements one by one, the record after they all
 *   succeeded, the hold released (the connection is discarded on error: a hold by a backend that
 *   is gone counts as free).
 *
 * No advisory lock: any role connected to the database (a bridge tenant's) could hold a
 * predictable advisory key and keep a target from ever migrating.
 *
 * What runs is always planned from the state seen under the lock, so two runners never apply the
 * same migration twice. Errors become an outcome; nothing here throws for a target's failure.
 */

/** Called in the transaction of the last migration of a target that changed, before COMMIT (e.g. to enforce RLS on the pool). */
export type AfterApply = (client: PoolClient, target: MigrationTarget, steps: readonly Step[]) => Promise<void>;

export interface ApplyOptions {
  readonly direction: Direction;
  readonly toVersion?: number;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly afterApply?: AfterApply;
  /**
   * The target's state as last read (the database's state query). When given, the first
   * transaction is optimistic: lock, state check and the first migration travel in one round
   * trip, a server-side guard aborting it if the lock is held or the state differs.
   */
  readonly expected?: readonly AppliedMigration[];
  /** Creates the state table when the database has none yet (memoized per database by the caller). */
  readonly ensureStateTable: () => Promise<void>;
}

export type ApplyOutcome =
  | { readonly status: 'applied'; readonly steps: readonly Step[]; readonly version: number }
  | { readonly status: 'up-to-date'; readonly version: number }
  | { readonly status: 'skipped-locked'; readonly steps: readonly Step[]; readonly version: number }
  | { readonly status: 'edited'; readonly steps: readonly Step[]; readonly version: number; readonly edited: readonly { version: number; name: string }[] }
  | { readonly status: 'failed'; readonly steps: readonly Step[]; readonly version: number; readonly error: string; readonly code?: string; readonly file?: string };

interface LockedState {
  readonly locked: boolean;
  readonly applied: AppliedMigration[];
  readonly schemaExists: boolean;
}

const asArray = (r: QueryResult | QueryResult[]): QueryResult[] => (Array.isArray(r) ? r : [r]);

class StepError extends Error {
  constructor(readonly cause: unknown, readonly file: string | undefined) {
    super((cause as Error)?.message ?? String(cause));
  }
}

export async function applyTarget(pool: Pool, target: MigrationTarget, set: MigrationSet, options: ApplyOptions): Promise<ApplyOutcome> {
  const lockName = targetLockName(target.name);
  const schema = quoteIdent(target.schema);
  const createSchema = mayCreateSchema(target);
  const done: Step[] = [];
  let version = 0;
  let client: PoolClient | undefined;
  let discard = false;
  const plan = (applied: readonly AppliedMigration[]) => planTarget(set, applied, { direction: options.direction, toVersion: options.toVersion });
  const readState = `${readStateSql(target.name)}; SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${quoteLiteral(target.schema)}) AS schema_exists`;
  const stateQueries = `${ensureLockRowSql(lockName)}; ${tryLockSql(lockName)}; ${readState}`;
  const parseState = (results: QueryResult[]): LockedState => {
    const [lock, state, exists] = results.slice(-3);
    return {
      locked: lock.rows[0].locked === true,
      applied: state.rows.map((r) => ({ version: Number(r.version), name: String(r.name), checksum: String(r.checksum) })),
      schemaExists: exists.rows[0].schema_exists === true,
    };
  };

  try {
    await options.ensureStateTable();
    client = await pool.connect();
    let expected = options.expected;
    for (;;) {
      let applied: readonly AppliedMigration[];
      let prelude: string;
      let fused = false;
      if (expected && firstStepIsTransactional(plan(expected))) {
        // Optimistic: one round trip takes the lock, checks the state and runs the first migration.
        applied = expected;
        prelude = `BEGIN; ${timeoutSql({ ...options, local: true })};\n${guardCallSql(target.name, lockName, applied, target.schema, createSchema)};\n`;
        fused = true;
      } else {
        // Lock the target in a transaction and read its state under the lock.
        const locked = parseState(asArray(await client.query(
          `BEGIN; ${timeoutSql({ ...options, local: true })}; ${stateQueries}`,
        )));
        version = Math.max(0, ...locked.applied.map((a) => a.version));
        if (!locked.locked) {
          await client.query('ROLLBACK');
          return { status: 'skipped-locked', steps: done, version };
        }
        const p = plan(locked.applied);
        if (p.action !== 'migrate') {
          await client.query('ROLLBACK');
          if (p.action === 'none') return done.length ? { status: 'applied', steps: done, version } : { status: 'up-to-date', version };
          if (p.action === 'edited') return { status: 'edited', steps: done, version, edited: p.edited };
          return { status: 'failed', steps: done, version, error: p.error };
        }
        if (!locked.schemaExists && !createSchema) {
          await client.query('ROLLBACK');
          return { status: 'failed', steps: done, version, ...missingSchema(schema) };
        }
        applied = locked.applied;
        prelude = !locked.schemaExists ? `CREATE SCHEMA IF NOT EXISTS ${schema};\n` : '';
      }
      expected = undefined;
      version = Math.max(0, ...applied.map((a) => a.version));
      const p = plan(applied);
      if (p.action !== 'migrate') throw new Error('unreachable: no migration planned');
      const chunks = chunkSteps(p.steps);
      const chunk = chunks[0];
      const last = chunks.length === 1;

      if (chunk[0].script.transactional) {
        try {
          for (let i = 0; i < chunk.length; i++) {
            const commit = last && i === chunk.length - 1 && !options.afterApply;
            await runInTransaction(client, target, chunk[i], i === 0 ? prelude : '', commit);
          }
        } catch (e) {
          const code = e instanceof StepError ? (e.cause as { code?: string })?.code : undefined;
          if (!fused || (code !== GUARD.locked && code !== GUARD.stateChanged && code !== GUARD.noSchema)) throw e;
          await client.query('ROLLBACK');
          if (code === GUARD.locked) return { status: 'skipped-locked', steps: done, version };
          if (code === GUARD.noSchema) return { status: 'failed', steps: done, version, ...missingSchema(schema) };
          continue; // the state changed since it was read: lock, re-read and plan again
        }
        if (last && options.afterApply) {
          try {
            await options.afterApply(client, target, [...done, ...chunk]);
          } catch (e) {
            throw new StepError(e, (e as { file?: string })?.file); // e.g. the pool migration that left a table uncovered
          }
          await client.query('COMMIT');
        } else if (!last) {
          await client.query('COMMIT');
        }
        done.push(...chunk);
        version = versionAfter(applied.map((a) => a.version), chunk);
        if (last) return { status: 'applied', steps: done, version };
        continue;
      }

      // A no-transaction step: trade the transaction lock for a session hold, re-read, run, record.
      await client.query('ROLLBACK');
      discard = true; // until the session is clean again
      const held = parseState(asArray(await client.query(`BEGIN; ${timeoutSql({ ...options, local: true })}; ${stateQueries}`)));
      if (!held.locked) {
        await client.query('ROLLBACK');
        discard = false;
        return { status: 'skipped-locked', steps: done, version };
      }
      await client.query(`${holdForSessionSql(lockName)}; COMMIT`);
      const session = parseState(asArray(await client.query(`${timeoutSql({ ...options, local: false })}; SELECT true AS locked; ${readState}`)));
      const again = plan(session.applied);
      const step = chunk[0];
      const same = again.action === 'migrate' && again.steps[0].migration.version === step.migration.version && again.steps[0].direction === step.direction;
      if (same) {
        if (!session.schemaExists && createSchema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(`SET search_path TO ${schema}${target.role ? `; SET ROLE ${quoteIdent(target.role)}` : ''}`);
        const statements = splitSqlStatements(step.script.sql);
        for (const statement of statements) {
          try {
            await client.query(statement);
          } catch (e) {
            throw new StepError(e, step.script.file);
          }
        }
        await client.query(`RESET ROLE; ${recordSql(target, step)}`);
        done.push(step);
        version = versionAfter(session.applied.map((a) => a.version), [step]);
      }
      await client.query(`RESET ROLE; ${releaseSessionSql(lockName)}; RESET lock_timeout; RESET statement_timeout; RESET search_path`);
      discard = false;
      if (same && last) {
        if (options.afterApply) {
          await client.query(`BEGIN; ${timeoutSql({ ...options, local: true })}; SET LOCAL search_path TO ${schema}`);
          try {
            await options.afterApply(client, target, done);
          } catch (e) {
            throw new StepError(e, undefined);
          }
          await client.query('COMMIT');
        }
        return { status: 'applied', steps: done, version };
      }
    }
  } catch (e) {
    const cause = e instanceof StepError ? e.cause : e;
    const file = e instanceof StepError ? e.file : undefined;
    if (client && !discard) {
      try {
        await client.query('ROLLBACK');
      } catch {
        discard = true;
      }
    }
    // Checked after the ROLLBACK attempt: the socket's end (and its 'error') may follow the query's error.
    const lost = client ? connectionLost(client) : undefined;
    if (lost) discard = true;
    return failedOutcome(cause, file, lost, done, version);
  } finally {
    // A session that may still hold a lock or settings is closed rather than returned to the pool.
    client?.release(discard ? true : undefined);
  }
}

/** A target's failure as an outcome: the server's message (and detail), the file, a lost connection named. */
export function failedOutcome(cause: unknown, file: string | undefined, lost: Error | undefined, steps: readonly Step[], version: number): ApplyOutcome {
  const pgError = cause as { message?: string; code?: string; detail?: string };
  const what = `${pgError?.message ?? String(cause)}${pgError?.detail ? ` (${pgError.detail})` : ''}`;
  const message = `${file ? `${basename(file)}: ` : ''}${lost ? `the connection to the database was lost: ${what}${lost.message === what ? '' : ` (${lost.message})`}` : what}`;
  const code = [pgError?.code, (lost as { code?: unknown } | undefined)?.code].find((c): c is string => typeof c === 'string');
  return { status: 'failed', steps, version, error: message, code, file };
}

/** The runner may create the target's schema when it is missing (the pool's, the control plane's, or `createSchema`). */
export const mayCreateSchema = (target: MigrationTarget): boolean => target.createSchema ?? (target.kind === 'pool' || target.kind === 'control-plane');

export const missingSchema = (schema: string) => ({ error: `schema ${schema} does not exist in this database (provision the tenant first)`, code: '3F000' });

export const firstStepIsTransactional = (p: ReturnType<typeof planTarget>): boolean => p.action === 'migrate' && p.steps[0].script.transactional;

export const GUARD = GUARD_ERRORS;

/**
 * The text of one migration in an open transaction: search_path (and role), the file, the record
 * (`RETURNING` a column named `recordMarker`, when given: lib/migrate/apply-batch.ts finds it in
 * the replies), and COMMIT when it is the last.
 */
export function stepSql(target: MigrationTarget, step: Step, prelude: string, commit: boolean, recordMarker?: string): string {
  const schema = quoteIdent(target.schema);
  const role = target.role ? `SET LOCAL ROLE ${quoteIdent(target.role)};\n` : '';
  const returning = recordMarker ? ` RETURNING true AS ${quoteIdent(recordMarker)}` : '';
  return `${prelude}SET LOCAL search_path TO ${schema};\n${role}${step.script.sql}\n;\n${target.role ? 'RESET ROLE;\n' : ''}${recordSql(target, step)}${returning};${commit ? '\nCOMMIT;' : ''}`;
}

function recordSql(target: MigrationTarget, step: Step): string {
  return step.direction === 'up' ? recordAppliedSql(target.name, step.migration) : recordRevertedSql(target.name, step.migration.version);
}

/**
 * One migration in the open transaction, in one round trip: search_path (and role), the file,
 * the record, and COMMIT when it is the last. The record's result is checked, so a file that
 * swallowed what follows it (an unterminated comment) can never commit unrecorded DDL.
 */
async function runInTransaction(client: PoolClient, target: MigrationTarget, step: Step, prelude: string, commit: boolean): Promise<void> {
  const text = stepSql(target, step, prelude, commit);
  let results: QueryResult[];
  try {
    results = asArray(await client.query(text));
  } catch (e) {
    throw new StepError(e, step.script.file);
  }
  const record = results[results.length - (commit ? 2 : 1)];
  const end = results[results.length - 1];
  const recorded = record && record.command === (step.direction === 'up' ? 'INSERT' : 'DELETE') && record.rowCount === 1;
  if (!recorded || (commit && end?.command !== 'COMMIT')) {
    throw new StepError(new Error('the migration did not run to its end (an unterminated comment or a transaction statement in the file?); rolled back'), step.script.file);
  }
}
