import type { Pool, PoolClient } from 'pg';
import { inTransaction } from '../../control-plane/transaction';

/**
 * A Pool (the call runs its own transaction) or a PoolClient already inside the caller's
 * transaction (the call's writes commit or roll back with the caller's).
 */
export type CreditsDb = Pool | PoolClient;

/** Runs `fn` in the caller's transaction when `db` is a checked-out client, else in a new one. */
export function inCreditsTransaction<T>(db: CreditsDb, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return isClient(db) ? fn(db) : inTransaction(db, fn);
}

const isClient = (db: CreditsDb): db is PoolClient => typeof (db as PoolClient).release === 'function';
