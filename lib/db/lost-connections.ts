import { Client, Pool, type ClientConfig, type PoolClient, type PoolConfig } from 'pg';

/**
 * Lost connections fail the call, never the process.
 *
 * node-postgres reports a connection the server ended (pg_terminate_backend, an admin shutdown or
 * restart, a failover, a PgBouncer restart, a network loss) as an 'error' event: on the Pool for
 * an idle pooled client, on the client itself while it is checked out or held (also between two
 * queries, when no query is there to reject). An 'error' event nobody listens to ends the Node
 * process. Every Pool and Client the project opens is therefore made here, or guarded here:
 *
 * - a pool gets an 'error' listener (an idle client that died; pg has already discarded it, the
 *   next checkout opens a fresh connection), and each client it hands out gets an 'error'
 *   listener for as long as it is checked out, removed when it is released;
 * - a client gets an 'error' listener for its whole life.
 *
 * The listener only records the error ({@link connectionLost}); the call that was using the
 * connection fails on its own (its query rejects, a later query rejects with "not queryable"),
 * and the code that holds the client names its target in the error it throws
 * ({@link ConnectionLostError}) and releases the client with the error, so that it is destroyed,
 * never pooled again. Nothing here retries: the caller knows whether its operation is safe to repeat.
 */

/** The error that ended a client's connection, once it was lost while guarded. */
const lostErrors = new WeakMap<object, Error>();
const guardedPools = new WeakSet<object>();
const guardedClients = new WeakSet<object>();

/**
 * Thrown by a call that could not get a connection at all (server or PgBouncer down, restarting,
 * refusing): nothing ran, so the call is always safe to repeat; `cause` is the connect error.
 */
export class DatabaseUnavailableError extends Error {
  /** The SQLSTATE the server refused with (28P01 a failed login, 57P03 starting up, …), or the socket error code (ECONNREFUSED, …). */
  readonly code?: string;

  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string') this.code = code;
  }
}

/** Thrown by a call whose connection the server ended; `cause` is what the call itself saw. */
export class ConnectionLostError extends Error {
  /** The SQLSTATE the server ended the connection with (57P01 terminated by an administrator, 57P02, …), when it sent one. */
  readonly code?: string;

  constructor(message: string, readonly lost: Error, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause ?? lost });
    this.name = 'ConnectionLostError';
    const code = (lost as { code?: unknown }).code;
    if (typeof code === 'string') this.code = code;
  }
}

export interface GuardPoolOptions {
  /** Errors of idle connections the server closed (already discarded by the pool): for logs and metrics. */
  readonly onIdleError?: (error: Error) => void;
}

/**
 * Makes `pool` safe against lost connections (see the file comment). Idempotent: a pool guarded
 * twice keeps the first options.
 */
export function guardPool<P extends Pool>(pool: P, options: GuardPoolOptions = {}): P {
  if (guardedPools.has(pool)) return pool;
  guardedPools.add(pool);
  pool.on('error', (error) => options.onIdleError?.(error));
  const listeners = new WeakMap<PoolClient, (error: Error) => void>();
  pool.on('acquire', (client) => {
    lostErrors.delete(client);
    const listener = recorder(client);
    listeners.set(client, listener);
    client.on('error', listener);
  });
  // pg-pool puts its own idle listener back before it emits 'release': the client is never unguarded.
  pool.on('release', (_error, client) => {
    const listener = listeners.get(client);
    if (!listener) return;
    listeners.delete(client);
    client.removeListener('error', listener);
  });
  return pool;
}

/** A guarded pg.Pool. */
export function guardedPool(config: PoolConfig, options: GuardPoolOptions = {}): Pool {
  return guardPool(new Pool(config), options);
}

/** Makes a client (not from a pool) safe against a lost connection for its whole life. Idempotent. */
export function guardClient<C extends Client>(client: C): C {
  if (guardedClients.has(client)) return client;
  guardedClients.add(client);
  client.on('error', recorder(client));
  return client;
}

/** A guarded, not yet connected pg.Client. */
export function guardedClient(config: ClientConfig): Client {
  return guardClient(new Client(config));
}

/** The error that ended `client`'s connection while it was guarded (checked out of a guarded pool, or a guarded client); undefined while it is alive. */
export function connectionLost(client: object): Error | undefined {
  return lostErrors.get(client);
}

const recorder = (client: object) => (error: Error) => {
  if (!lostErrors.has(client)) lostErrors.set(client, error);
};
