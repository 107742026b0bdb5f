import type { Pool, PoolClient, QueryResult } from 'pg';
import { connectionLost, ConnectionLostError, DatabaseUnavailableError, guardPool } from '../db/lost-connections';
import { quoteIdent, quoteLiteral } from '../db/sql';
import { assertCustomSetting, DEFAULT_TENANT_SETTING, validateTenantContext, type TenantContext } from './tenant-context';

export interface WithTenantOptions {
  /** The setting the pool RLS policy reads. @default "app.tenant_id" */
  readonly tenantSetting?: string;
}

/** Thrown when the callback left state on the session that would reach the next user of the connection. */
export class SessionStateLeakError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionStateLeakError';
  }
}

/** Thrown when the callback uses its client after withTenant finished, or calls what it must not (release, end). */
export class TenantClientRevokedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TenantClientRevokedError';
  }
}

/**
 * Runs `fn` in one transaction on one connection of `pool`, with the tenant's context applied
 * transaction-locally:
 *
 * - pool:   `set_config('app.tenant_id', <id>, true)` (the RLS policy reads it);
 * - bridge: `set_config('search_path', <quoted schema>, true)`;
 * - silo:   nothing (the connection is the tenant's own database),
 *
 * sent in the same message as BEGIN ({@link beginSql}).
 *
 * Then COMMIT (resolving to fn's result) or, if anything failed, ROLLBACK and rethrow. Only
 * unnamed statements are sent. Guarantees, so that nothing of one unit of work reaches the next
 * user of the connection (the next request here, or another client behind PgBouncer in
 * transaction mode):
 *
 * - `fn` gets a revocable handle, not the pooled client: `query`, `escapeIdentifier`,
 *   `escapeLiteral` and event listeners only (listeners it added are removed at the end; no
 *   `release`, `end`, `connection`, no cursors/streams that outlive the call). Once withTenant
 *   has finished, every use of the handle throws {@link TenantClientRevokedError}: a reference
 *   kept by `fn` can never run a statement in another tenant's transaction.
 * - In the same message as COMMIT/ROLLBACK (no extra round trip), the session is checked: the
 *   tenant setting at session level (a `SET app.tenant_id` or `set_config(…, false)` by `fn`), a
 *   search_path different from the one at BEGIN, a role other than the login role (`SET ROLE`),
 *   temporary tables, holdable cursors. Any of them: the session's tenant setting, search_path
 *   and role are reset in that same message (so a PgBouncer server connection does not keep
 *   them either), the connection is destroyed rather than pooled, and withTenant throws
 *   {@link SessionStateLeakError} (fail closed; the transaction itself was already committed).
 * - A connection whose ROLLBACK fails is destroyed instead of being returned to the pool.
 * - A connection the server ends during the call (terminated backend, restart, failover, PgBouncer
 *   restart) fails the call, never the process: withTenant throws {@link ConnectionLostError}
 *   naming the tenant (nothing was committed, unless the loss came during COMMIT: then the
 *   outcome is unknown and the message says so), the dead connection is destroyed, and the next
 *   call gets a fresh one. A call that cannot get a connection at all (server or PgBouncer down
 *   or restarting) throws {@link DatabaseUnavailableError} naming the tenant; nothing ran, so it
 *   is safe to repeat. `pool` is guarded on first use (lib/db/lost-connections.ts): its idle
 *   connections that die are discarded instead of crashing the process. Nothing is retried: `fn`
 *   may have had effects outside the database.
 *
 * `fn` must not end the transaction itself (COMMIT, ROLLBACK). If `fn` swallows an error, the
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

  guardPool(pool);
  const client = await pool.connect().catch((error: unknown) => {
    throw new DatabaseUnavailableError(`withTenant ${context.slug}: could not get a database connection (${(error as { message?: string })?.message ?? String(error)}); nothing ran`, { cause: error });
  });
  const handle = revocableClient(client, context.slug);
  let broken: Error | undefined;
  let searchPath: string | undefined;
  let committing = false;
  const finish = async (end: 'COMMIT' | 'ROLLBACK'): Promise<QueryResult> => {
    const [ended, state] = asArray(await client.query(endSql(end, setting)));
    const leaks = sessionLeaks(state.rows[0] as SessionState, searchPath);
    if (leaks.length > 0) {
      // Reset on this server connection (PgBouncer keeps it), then never reuse our connection.
      broken = new SessionStateLeakError(`withTenant ${context.slug}: the unit of work left session state behind (${leaks.join('; ')}); the connection was discarded`);
      await client.query(sessionResetSql(setting)).catch(() => undefined);
      throw broken;
    }
    return ended;
  };
  try {
    try {
      const [, begin] = asArray(await client.query(beginSql(context, setting)));
      searchPath = begin.rows[0].search_path;
      const result = await fn(handle.client);
      handle.revoke();
      committing = connectionLost(client) === undefined; // a connection already lost never sends the COMMIT
      const commit = await finish('COMMIT');
      // COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK: fn swallowed an error.
      if (commit.command === 'ROLLBACK') {
        throw new Error(`withTenant ${context.slug}: the transaction was aborted by an earlier error (caught inside fn); it was rolled back, not committed`);
      }
      return result;
    } catch (error) {
      handle.revoke();
      if (!broken) {
        try {
          await finish('ROLLBACK');
        } catch (rollbackError) {
          // The connection's state is unknown (broken socket, terminated backend) or leaked: never reuse it.
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
          if (rollbackError instanceof SessionStateLeakError) throw rollbackError;
        }
      }
      // Checked after the ROLLBACK attempt: the socket's end (and with it the 'error') may come after the query's error.
      const lost = connectionLost(client);
      if (lost) {
        broken = lost;
        const outcome = committing ? 'it was lost during COMMIT: the transaction may or may not have committed' : 'nothing was committed';
        throw new ConnectionLostError(`withTenant ${context.slug}: the database connection was lost (${lost.message}); ${outcome}; the connection was discarded`, lost, { cause: error });
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

/**
 * BEGIN, the session's search_path to compare with at the end, and the tenant context, in one
 * round trip (one simple-protocol message, which takes no parameters: the values are a validated
 * UUID and a validated schema name, quoted as literals all the same).
 */
export function beginSql(tenant: TenantContext, setting = DEFAULT_TENANT_SETTING): string {
  const context = validateTenantContext(tenant);
  assertCustomSetting(setting, 'beginSql');
  const begin = "BEGIN; SELECT current_setting('search_path') AS search_path";
  switch (context.model) {
    case 'pool':
      return `${begin}; SELECT set_config(${quoteLiteral(setting)}, ${quoteLiteral(context.id)}, true)`;
    case 'bridge':
      return `${begin}; SELECT set_config('search_path', ${quoteLiteral(quoteIdent(context.schema!))}, true)`;
    case 'silo':
      return begin;
  }
}

/** COMMIT or ROLLBACK, and the session check, in one round trip. */
export function endSql(end: 'COMMIT' | 'ROLLBACK', setting = DEFAULT_TENANT_SETTING): string {
  return `${end}; ${sessionCheckSql(setting)}`;
}

interface SessionState {
  tenant: string;
  search_path: string;
  role_changed: boolean;
  temp_tables: boolean;
  held_cursors: boolean;
}

/**
 * What the session holds once the transaction is over (sent after COMMIT/ROLLBACK in the same
 * message, so it runs on the same server connection, PgBouncer or not). The temp-table probe only
 * scans pg_class when the session has a temporary schema at all.
 */
export function sessionCheckSql(setting: string): string {
  assertCustomSetting(setting, 'sessionCheckSql');
  return `SELECT coalesce(current_setting(${quoteLiteral(setting)}, true), '') AS tenant, current_setting('search_path') AS search_path,
  current_user <> session_user AS role_changed,
  CASE WHEN pg_my_temp_schema() = 0 THEN false ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = pg_my_temp_schema()) END AS temp_tables,
  EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable) AS held_cursors`;
}

/** Puts back what a leaking unit of work changed, on the server connection it ran on. */
function sessionResetSql(setting: string): string {
  return `RESET ${setting}; RESET search_path; RESET ROLE; CLOSE ALL; DISCARD TEMP`;
}

function sessionLeaks(state: SessionState, searchPath: string | undefined): string[] {
  const leaks: string[] = [];
  if (state.tenant !== '') leaks.push('the tenant setting is set at session level (SET / set_config(…, false))');
  if (searchPath !== undefined && state.search_path !== searchPath) leaks.push(`search_path was changed at session level (${state.search_path})`);
  if (state.role_changed) leaks.push('the role was changed at session level (SET ROLE)');
  if (state.temp_tables) leaks.push('temporary tables exist on the session');
  if (state.held_cursors) leaks.push('holdable cursors (WITH HOLD) are open');
  return leaks;
}

const asArray = (r: QueryResult | QueryResult[]): QueryResult[] => (Array.isArray(r) ? r : [r]);

/** What the callback may use: running statements and listening to the connection's events. */
const ALLOWED_METHODS = new Set(['query', 'escapeIdentifier', 'escapeLiteral', 'on', 'once', 'addListener', 'prependListener', 'prependOnceListener', 'off', 'removeListener']);
const LISTENER_METHODS = new Set(['on', 'once', 'addListener', 'prependListener', 'prependOnceListener']);
const ALLOWED_VALUES = new Set(['processID']);

/**
 * A handle on `client` for the callback, typed as a PoolClient so existing callbacks compile,
 * that only forwards {@link ALLOWED_METHODS} and stops working for good when revoked.
 */
function revocableClient(client: PoolClient, slug: string): { client: PoolClient; revoke: () => void } {
  let live = true;
  const listeners: [string | symbol, (...args: any[]) => void][] = [];
  const assertLive = (what: string) => {
    if (!live) throw new TenantClientRevokedError(`withTenant ${slug}: ${what} on a client of a unit of work that has finished (the connection may now serve another tenant)`);
  };
  const methods = new Map<string, (...args: any[]) => unknown>();
  for (const name of ALLOWED_METHODS) {
    methods.set(name, (...args: any[]) => {
      assertLive(`client.${name}()`);
      if (name === 'query' && args[0] && typeof args[0].submit === 'function') {
        throw new TenantClientRevokedError(`withTenant ${slug}: cursors and streams (submittable queries) keep the connection beyond the unit of work and are not available inside withTenant`);
      }
      if (LISTENER_METHODS.has(name)) listeners.push([args[0], args[1]]);
      const result = (client as any)[name](...args);
      return result === client ? proxy : result; // chaining (on() returns the emitter) stays on the handle
    });
  }
  const proxy = new Proxy(Object.create(null), {
    get(_target, prop) {
      if (typeof prop === 'symbol' || prop === 'then') return undefined; // not a thenable; inspect-safe
      const method = methods.get(prop);
      if (method) return method;
      if (ALLOWED_VALUES.has(prop)) {
        assertLive(`client.${prop}`);
        return (client as any)[prop];
      }
      throw new TenantClientRevokedError(`withTenant ${slug}: client.${prop} is not available inside withTenant (only ${[...ALLOWED_METHODS].join(', ')}); the connection is released by withTenant`);
    },
    set(_target, prop) {
      throw new TenantClientRevokedError(`withTenant ${slug}: cannot set client.${String(prop)}`);
    },
  }) as PoolClient;
  return {
    client: proxy,
    revoke: () => {
      if (!live) return;
      live = false;
      for (const [event, listener] of listeners) client.removeListener(event as string, listener);
    },
  };
}
