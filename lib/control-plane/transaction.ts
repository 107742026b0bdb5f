import type { ClientBase, Pool, PoolClient } from 'pg';
import { connectionLost, ConnectionLostError, guardPool } from '../db/lost-connections';

/**
 * Runs `fn` in one transaction on one connection of the control plane's `pool`: COMMIT, or
 * ROLLBACK and rethrow. A connection the server ends meanwhile fails the call with a
 * {@link ConnectionLostError} (never the process, never retried) and is destroyed, not pooled.
 */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  guardPool(pool);
  const c = await pool.connect();
  let committing = false;
  let lost: Error | undefined;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    committing = connectionLost(c) === undefined;
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    // After the ROLLBACK attempt: the socket's end (and its 'error') may follow the query's error.
    lost = connectionLost(c);
    if (lost) {
      const outcome = committing ? 'it was lost during COMMIT: the transaction may or may not have committed' : 'nothing was committed';
      throw new ConnectionLostError(`control plane: the database connection was lost (${lost.message}); ${outcome}`, lost, { cause: e });
    }
    throw e;
  } finally {
    c.release(lost);
  }
}

/**
 * Appends to the control plane's audit log, on `c` — inside the transaction of the change it
 * records. The database chains the entry (seq, prev_hash, hash: migration 0004's trigger) and holds
 * the chain head until this transaction ends, so keep what follows in the transaction short.
 */
export async function appendAudit(c: Pick<ClientBase, 'query'>, actor: string, action: string, tenantId: string | null, details: Record<string, unknown>): Promise<void> {
  await c.query('INSERT INTO tenancy.audit_log (actor, action, tenant_id, details) VALUES ($1, $2, $3, $4)', [actor, action, tenantId, JSON.stringify(details)]);
}
