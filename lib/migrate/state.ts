import type { ClientBase, Pool } from 'pg';
import { CREATE_PLATFORM_LOCKS, createIfMissing } from '../db/platform-locks';
import { quoteLiteral } from '../db/sql';
import type { Migration } from './migration-set';

/**
 * Migration state: `tenancy.schema_migrations` in every migrated database, next to the data it
 * describes, so that a migration and its record commit in one transaction.
 */
export const STATE_TABLE = 'tenancy.schema_migrations';

const CREATE_STATE_TABLE = `
CREATE SCHEMA IF NOT EXISTS tenancy;
CREATE TABLE IF NOT EXISTS tenancy.schema_migrations (
  target      text NOT NULL,
  version     integer NOT NULL,
  name        text NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, version)
);
${CREATE_PLATFORM_LOCKS}`;

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
  await createIfMissing(client, CREATE_STATE_TABLE);
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
