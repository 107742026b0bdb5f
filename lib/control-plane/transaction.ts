import type { ClientBase, Pool, PoolClient } from 'pg';

/** Runs `fn` in one transaction on one connection of `pool`: COMMIT, or ROLLBACK and rethrow. */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
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
