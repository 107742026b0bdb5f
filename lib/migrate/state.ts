import type { ClientBase, Pool } from 'pg';
import { CREATE_PLATFORM_LOCKS, createIfMissing, PLATFORM_LOCKS_TABLE } from '../db/platform-locks';
import { quoteLiteral } from '../db/sql';
import type { Migration } from './migration-set';

/**
 * Migration state: `tenancy.schema_migrations` in every migrated database, next to the data it
 * describes, so that a migration and its record commit in one transaction.
 */
export const STATE_TABLE = 'tenancy.schema_migrations';

/** The state table, the platform-lock table and the guard function, each created when missing. */
const createStateTableSql = (): string => `
CREATE SCHEMA IF NOT EXISTS tenancy;
CREATE TABLE IF NOT EXISTS tenancy.schema_migrations (
  target      text NOT NULL,
  version     integer NOT NULL,
  name        text NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, version)
);
${CREATE_PLATFORM_LOCKS}
${createGuardFunctionSql()}`;

/**
 * The server-side half of a migration's single round trip (lib/migrate/apply-target.ts): takes
 * the target's platform lock (lib/db/platform-locks.ts, SKIP LOCKED), checks that the target's
 * state is still the one the runner planned from and that its schema exists (creating it when
 * allowed), raising a {@link GUARD_ERRORS} SQLSTATE otherwise.
 *
 * A function, not a DO block per target: a DO block is compiled and each of its statements
 * planned anew on every call (~1.5 ms of server CPU per target, half again the server work of
 * a typical tenant migration); a function's plans are cached per session. Versioned by name
 * (created only when missing, never replaced: concurrent runners cannot race on it); a
 * different body gets a new name. Executable by its owner (the role that migrates) only.
 */
export const GUARD_FUNCTION = 'tenancy.migrate_guard_v1';
const GUARD_SIGNATURE = `${GUARD_FUNCTION}(text, text, text, text, boolean)`;

/** SQLSTATEs the guard raises (class "TN", not used by PostgreSQL). */
export const GUARD_ERRORS = { locked: 'TNLCK', stateChanged: 'TNSTA', noSchema: 'TNSCH' } as const;

function createGuardFunctionSql(): string {
  return `DO $tenancy_ensure$BEGIN
IF to_regprocedure('${GUARD_SIGNATURE}') IS NULL THEN
CREATE FUNCTION ${GUARD_FUNCTION}(lock_name text, target_name text, expected_state text, schema_name text, create_schema boolean)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $guard$
BEGIN
  INSERT INTO ${PLATFORM_LOCKS_TABLE} (name) VALUES (lock_name) ON CONFLICT (name) DO NOTHING;
  PERFORM 1 FROM ${PLATFORM_LOCKS_TABLE} l WHERE l.name = lock_name
    AND (l.holder_pid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = l.holder_pid AND a.backend_start = l.holder_since))
    FOR UPDATE OF l SKIP LOCKED;
  IF NOT FOUND THEN RAISE EXCEPTION 'target locked' USING ERRCODE = '${GUARD_ERRORS.locked}'; END IF;
  IF coalesce((SELECT string_agg(m.version::text || ':' || m.checksum, ',' ORDER BY m.version) FROM ${STATE_TABLE} m WHERE m.target = target_name), '') <> expected_state THEN
    RAISE EXCEPTION 'state changed' USING ERRCODE = '${GUARD_ERRORS.stateChanged}';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema_name) THEN
    IF NOT create_schema THEN RAISE EXCEPTION 'schema missing' USING ERRCODE = '${GUARD_ERRORS.noSchema}'; END IF;
    EXECUTE format('CREATE SCHEMA %I', schema_name);
  END IF;
END
$guard$;
REVOKE ALL ON FUNCTION ${GUARD_SIGNATURE} FROM PUBLIC;
END IF;
END$tenancy_ensure$;`;
}

/** The guard's call for one target (literals only: it travels in a multi-statement simple query). */
export function guardCallSql(target: string, lockName: string, applied: readonly AppliedMigration[], schema: string, createSchema: boolean): string {
  const state = [...applied].sort((a, b) => a.version - b.version).map((a) => `${a.version}:${a.checksum}`).join(',');
  return `SELECT ${GUARD_FUNCTION}(${quoteLiteral(lockName)}, ${quoteLiteral(target)}, ${quoteLiteral(state)}, ${quoteLiteral(schema)}, ${createSchema})`;
}

/** A row of the state table. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
}

/**
 * The platform lock of a target (one per target per database): a row of tenancy.platform_locks,
 * which no tenant role can lock (lib/db/platform-locks.ts), not an advisory lock, whose
 * predictable key any role connected to the database could hold.
 */
export function targetLockName(target: string): string {
  return `migrate:${target}`;
}

const isUndefinedTable = (e: unknown): boolean => (e as { code?: string })?.code === '42P01' || (e as { code?: string })?.code === '3F000';

/**
 * The state of many targets of one database with one query. `exists` is false when the state
 * table is missing (nothing was ever applied there; it is created before the first apply).
 */
export async function readStates(pool: Pool | ClientBase, targets: readonly string[]): Promise<{ exists: boolean; byTarget: Map<string, AppliedMigration[]> }> {
  const byTarget = new Map<string, AppliedMigration[]>(targets.map((t) => [t, []]));
  try {
    const { rows } = await pool.query<{ target: string; version: number; name: string; checksum: string }>(
      `SELECT target, version, name, checksum FROM ${STATE_TABLE} WHERE target = ANY($1::text[]) ORDER BY target, version`,
      [targets],
    );
    for (const r of rows) byTarget.get(r.target)?.push({ version: r.version, name: r.name, checksum: r.checksum });
    return { exists: true, byTarget };
  } catch (e) {
    if (isUndefinedTable(e)) return { exists: false, byTarget };
    throw e;
  }
}

/**
 * Creates the state table and the platform-lock table if missing. Concurrent runners may race:
 * the loser's duplicate-object error is retried (no lock, so nothing a tenant holds can stall it).
 */
export async function ensureStateTable(client: ClientBase): Promise<void> {
  await createIfMissing(client, createStateTableSql());
}

/** Statements that record an applied migration (literals only: they travel in multi-statement simple queries). */
export function recordAppliedSql(target: string, migration: Migration): string {
  return `INSERT INTO ${STATE_TABLE} (target, version, name, checksum) VALUES (${quoteLiteral(target)}, ${migration.version}, ${quoteLiteral(migration.name)}, ${quoteLiteral(migration.checksum)})`;
}

/** Statement that forgets a reverted migration. */
export function recordRevertedSql(target: string, version: number): string {
  return `DELETE FROM ${STATE_TABLE} WHERE target = ${quoteLiteral(target)} AND version = ${version}`;
}

/** Statement that reads one target's state (after its lock is held). */
export function readStateSql(target: string): string {
  return `SELECT version, name, checksum FROM ${STATE_TABLE} WHERE target = ${quoteLiteral(target)} ORDER BY version`;
}

/** Settings of a migration transaction (or session, for no-transaction files). */
export function timeoutSql(options: { lockTimeoutMs: number; statementTimeoutMs: number; local: boolean }): string {
  const set = options.local ? 'SET LOCAL' : 'SET';
  return `${set} lock_timeout = '${Math.trunc(options.lockTimeoutMs)}ms'; ${set} statement_timeout = '${Math.trunc(options.statementTimeoutMs)}ms'`;
}
