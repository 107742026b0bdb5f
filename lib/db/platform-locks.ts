import type { ClientBase } from 'pg';
import { quoteLiteral } from './sql';

/**
 * The platform's locks in a tenant-facing database (the bridge cluster's tenants database, a silo
 * database, the pool): rows of `tenancy.platform_locks`, locked with `FOR UPDATE`.
 *
 * Not advisory locks: those live in one namespace per database that every role may use
 * (`pg_advisory_lock` is executable by PUBLIC, and only a superuser could revoke that on the
 * pg_catalog functions; RDS's master user is not one), and `pg_locks`, readable by PUBLIC, shows
 * the keys in use. A tenant role connected to the shared bridge database could hold another
 * tenant's migration key or the provisioning key for ever. A row lock needs privileges on the
 * table, and no tenant role has any on schema `tenancy` (owned by the master user, nothing
 * granted), so no tenant can take, hold or even see these locks.
 *
 * A session that must keep the lock across transactions (a `-- tenancy:no-transaction`
 * migration) records itself as the row's holder (its backend pid and start time); the lock is
 * free again as soon as that backend is gone, so a crashed runner never leaves it held.
 */
export const PLATFORM_LOCKS_TABLE = 'tenancy.platform_locks';

export const CREATE_PLATFORM_LOCKS = `
CREATE SCHEMA IF NOT EXISTS tenancy;
CREATE TABLE IF NOT EXISTS tenancy.platform_locks (
  name          text PRIMARY KEY,
  holder_pid    integer,
  holder_since  timestamptz
);`;

/** The lock row exists (a committed row is never waited on by ON CONFLICT DO NOTHING). */
export function ensureLockRowSql(name: string): string {
  return `INSERT INTO ${PLATFORM_LOCKS_TABLE} (name) VALUES (${quoteLiteral(name)}) ON CONFLICT (name) DO NOTHING`;
}

/** No session holds the lock across transactions, or the one that did is gone (pg_stat_activity is read only then). */
const NO_LIVE_SESSION_HOLD = `(l.holder_pid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = l.holder_pid AND a.backend_start = l.holder_since))`;

/**
 * One row, `locked` true when this transaction now holds the lock: never waits (SKIP LOCKED), false
 * when another transaction or a live session holds it. Run after {@link ensureLockRowSql}, in a transaction.
 */
export function tryLockSql(name: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${PLATFORM_LOCKS_TABLE} l WHERE l.name = ${quoteLiteral(name)} AND ${NO_LIVE_SESSION_HOLD} FOR UPDATE OF l SKIP LOCKED) AS locked`;
}

/** PL/pgSQL: `FOUND` is true when the lock is now held by this transaction (see {@link tryLockSql}). */
export function tryLockPlpgsql(name: string): string {
  return `${ensureLockRowSql(name)}; PERFORM 1 FROM ${PLATFORM_LOCKS_TABLE} l WHERE l.name = ${quoteLiteral(name)} AND ${NO_LIVE_SESSION_HOLD} FOR UPDATE OF l SKIP LOCKED`;
}

/** Records this session as the holder beyond the transaction (the row must be locked by it). */
export function holdForSessionSql(name: string): string {
  return `UPDATE ${PLATFORM_LOCKS_TABLE} SET holder_pid = pg_backend_pid(), holder_since = (SELECT backend_start FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid()) WHERE name = ${quoteLiteral(name)}`;
}

/** Releases a session hold (see {@link holdForSessionSql}). */
export function releaseSessionSql(name: string): string {
  return `UPDATE ${PLATFORM_LOCKS_TABLE} SET holder_pid = NULL, holder_since = NULL WHERE name = ${quoteLiteral(name)} AND holder_pid = pg_backend_pid()`;
}

const DUPLICATE_OBJECT = new Set(['23505', '42P07', '42P06', '42710']);

/**
 * Runs idempotent DDL (`CREATE … IF NOT EXISTS`) in its own transaction, retrying when a
 * concurrent session created the same object first (IF NOT EXISTS does not serialize: the loser
 * gets a unique violation). Needs no lock that a tenant could hold.
 */
export async function createIfMissing(client: ClientBase, ddl: string, attempts = 3): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN');
    try {
      await client.query(ddl);
      await client.query('COMMIT');
      return;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (attempt >= attempts || !DUPLICATE_OBJECT.has((e as { code?: string })?.code ?? '')) throw e;
    }
  }
}

/** Creates the lock table and the row of lock `name` when missing, in their own transactions: call it before BEGIN, then {@link lockWithin}. */
export async function prepareLock(client: ClientBase, name: string): Promise<void> {
  await createIfMissing(client, CREATE_PLATFORM_LOCKS);
  await client.query(ensureLockRowSql(name));
}

/** In an open transaction: waits for the lock at most `timeoutMs`, then fails naming it. */
export async function lockWithin(client: ClientBase, name: string, timeoutMs: number): Promise<void> {
  await client.query(`SET LOCAL lock_timeout = '${Math.max(1, Math.trunc(timeoutMs))}ms'`);
  try {
    await client.query(`SELECT 1 FROM ${PLATFORM_LOCKS_TABLE} WHERE name = $1 FOR UPDATE`, [name]);
  } catch (e) {
    if ((e as { code?: string })?.code === '55P03') throw new Error(`the platform lock ${JSON.stringify(name)} is held by another run of the platform; gave up after ${timeoutMs} ms (run again)`);
    throw e;
  }
}
