import type { Pool, PoolClient } from 'pg';
import { quoteIdent } from '../db/sql';
import { assertCustomSetting, DEFAULT_TENANT_SETTING, validateTenantContext, type TenantContext } from './tenant-context';

export interface WithTenantOptions {
  /** The setting the pool RLS policy reads. @default "app.tenant_id" */
  readonly tenantSetting?: string;
}

/**
 * Runs `fn` in one transaction on one connection of `pool`, with the tenant's context applied
 * transaction-locally:
 *
 * - pool:   `select set_config('app.tenant_id', <id>, true)` (the RLS policy reads it);
 * - bridge: `select set_config('search_path', <quoted schema>, true)`;
 * - silo:   nothing (the connection is the tenant's own database).
 *
 * Then COMMIT (resolving to fn's result) or, if anything failed, ROLLBACK and rethrow. Nothing
 * is set at session level, so the connection can go back to the pool, or to PgBouncer in
 * transaction mode, without carrying the tenant to the next user; only unnamed statements are
 * sent. A connection whose ROLLBACK fails is destroyed instead of being returned to the pool.
 *
 * `fn` must not end the transaction itself (COMMIT, ROLLBACK) nor use session-level SET: both
 * would make later statements run outside the tenant's context. If `fn` swallows an error, the
 * transaction is aborted and PostgreSQL turns the COMMIT into a ROLLBACK: withTenant then throws.
 */
export async function withTenant<T>(
  pool: Pool,
  tenant: TenantContext,
  fn: (client: PoolClient) => Promise<T>,
  options: WithTenantOptions = {},
): Promise<T> {
  // Validate before taking a connection: a bad context never reaches the server.
  const context = validateTenantContext(tenant);
  const setting = options.tenantSetting ?? DEFAULT_TENANT_SETTING;
  assertCustomSetting(setting, 'withTenant');

  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    try {
      await client.query('BEGIN');
      await applyTenantContext(client, context, setting);
      const result = await fn(client);
      const commit = await client.query('COMMIT');
      // COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK: fn swallowed an error.
      if (commit.command === 'ROLLBACK') {
        throw new Error(`withTenant ${context.slug}: the transaction was aborted by an earlier error (caught inside fn); it was rolled back, not committed`);
      }
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection's state is unknown (broken socket, terminated backend): never reuse it.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw error;
    }
  } finally {
    client.release(broken ?? false);
  }
}

/** The statements withTenant runs after BEGIN; exported for tests and for callers that manage their own transaction. */
export async function applyTenantContext(client: Pick<PoolClient, 'query'>, tenant: TenantContext, setting = DEFAULT_TENANT_SETTING): Promise<void> {
  const context = validateTenantContext(tenant);
  assertCustomSetting(setting, 'applyTenantContext');
  switch (context.model) {
    case 'pool':
      await client.query('select set_config($1, $2, true)', [setting, context.id]);
      return;
    case 'bridge':
      await client.query("select set_config('search_path', $1, true)", [quoteIdent(context.schema!)]);
      return;
    case 'silo':
      return;
  }
}
