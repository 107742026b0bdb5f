import { createHash } from 'node:crypto';
import type { ClientBase, Pool } from 'pg';
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
);`;

/** A row of the state table. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
}

/** Advisory-lock namespace (first key) of per-target locks: "tena". */
const TARGET_LOCK_NAMESPACE = 0x74656e61;
/** Advisory-lock namespace of the state-table creation: "tenb". */
const STATE_TABLE_LOCK = [0x74656e62, 0] as const;

/** The two-int advisory-lock key of a target, derived from its name (one lock per target per database). */
export function advisoryKey(target: string): readonly [number, number] {
  return [TARGET_LOCK_NAMESPACE, createHash('sha256').update(target).digest().readInt32BE(0)];
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

/** Creates the state table if missing, serialized between concurrent runners by a transaction-level advisory lock. */
export async function ensureStateTable(client: ClientBase): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${STATE_TABLE_LOCK[0]}, ${STATE_TABLE_LOCK[1]});${CREATE_STATE_TABLE}`);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
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
