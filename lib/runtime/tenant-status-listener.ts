import { Client, type ClientConfig, type Pool } from 'pg';
import { UUID_PATTERN } from './tenant-context';

/** The channel migration 0005 (control plane) notifies with a tenant's id when its status or placement changes. */
export const TENANT_STATUS_CHANNEL = 'tenancy_tenant_status';

/** The `application_name` of the LISTEN connection (visible in pg_stat_activity). */
export const TENANT_STATUS_LISTENER_NAME = 'tenancy-router-listener';

/** 100 ms, doubling per failed attempt, at most 30 s. */
export function defaultReconnectDelayMs(attempt: number): number {
  return Math.min(30_000, 100 * 2 ** Math.min(attempt - 1, 20));
}

export interface TenantStatusListenerOptions {
  /** Creates the (not yet connected) client of one connection attempt. */
  readonly createClient: () => Client;
  /** Delay before reconnect attempt `attempt` (1 for the first after a loss). @default {@link defaultReconnectDelayMs} */
  readonly reconnectDelayMs?: (attempt: number) => number;
  /** LISTEN is active: from now on every change is announced. */
  readonly onListening: () => void;
  /** A tenant changed; undefined when the payload is not a tenant id (treat as "any tenant"). */
  readonly onNotification: (tenantId: string | undefined) => void;
  /** The connection failed or was lost: changes may go unannounced until `onListening`. */
  readonly onDisconnected: (error: Error) => void;
  /** The next attempt is scheduled. */
  readonly onReconnectScheduled?: (attempt: number, delayMs: number) => void;
}

/**
 * One LISTEN connection to the control plane on {@link TENANT_STATUS_CHANNEL}. It never throws
 * into the process: a failed connect, an 'error' event (server restart, terminated backend,
 * network loss) or an unexpected end is reported through `onDisconnected`, and the listener
 * reconnects with backoff until {@link close}.
 */
export class TenantStatusListener {
  private client?: Client;
  private state: 'idle' | 'connecting' | 'listening' | 'waiting' | 'closed' = 'idle';
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(private readonly options: TenantStatusListenerOptions) {}

  /** True while LISTEN is active on a live connection. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /** Connects (once; later calls do nothing). */
  start(): void {
    if (this.state === 'idle') void this.connect();
  }

  /** Resolves when LISTEN is active (starting the listener if needed); rejects once closed. */
  whenListening(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error('the tenant status listener is closed'));
    this.start();
    if (this.state === 'listening') return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Ends the connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('the tenant status listener is closed'));
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    this.state = 'connecting';
    let client: Client;
    try {
      client = this.options.createClient();
    } catch (e) {
      return this.schedule(asError(e));
    }
    this.client = client;
    // Handlers before connect(): an 'error' without a listener would crash the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the LISTEN connection to the control plane ended')));
    client.on('notification', (message) => {
      if (client !== this.client || message.channel !== TENANT_STATUS_CHANNEL) return;
      const payload = message.payload?.trim().toLowerCase() ?? '';
      this.options.onNotification(UUID_PATTERN.test(payload) ? payload : undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${TENANT_STATUS_CHANNEL}`);
    } catch (e) {
      return this.lost(client, asError(e));
    }
    if (client !== this.client || this.state !== 'connecting') return;
    this.state = 'listening';
    this.attempt = 0;
    this.options.onListening();
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  /** The current client failed: report it, drop it, and reconnect later. Late events of older clients are ignored. */
  private lost(client: Client, error: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (this.state === 'closed') return;
    this.schedule(error);
  }

  private schedule(error: Error): void {
    this.state = 'waiting';
    this.options.onDisconnected(error);
    this.attempt++;
    const delayMs = Math.max(0, (this.options.reconnectDelayMs ?? defaultReconnectDelayMs)(this.attempt));
    this.options.onReconnectScheduled?.(this.attempt, delayMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'waiting') void this.connect();
    }, delayMs);
    // A pending reconnect alone does not keep the process alive.
    this.timer.unref();
  }
}

/** A LISTEN client with the settings of `pool` (TLS included); pg.Pool keeps the password and TLS key non-enumerable. */
export function listenerClientFromPool(pool: Pool): () => Client {
  const options = (pool as unknown as { options: ClientConfig & Record<string, unknown> }).options;
  const ssl = options.ssl && typeof options.ssl === 'object' ? { ...options.ssl, key: options.ssl.key } : options.ssl;
  return listenerClientFromConfig({ ...options, password: options.password, ssl });
}

/** A LISTEN client with the given settings, named in pg_stat_activity, with TCP keep-alive so a dead peer is noticed. */
export function listenerClientFromConfig(config: ClientConfig): () => Client {
  return () => new Client({ keepAlive: true, ...config, application_name: TENANT_STATUS_LISTENER_NAME });
}

/** Whether a control-plane handle is a pg.Pool whose settings a LISTEN connection can reuse. */
export function isPgPool(value: unknown): value is Pool {
  const candidate = value as { options?: unknown; connect?: unknown; totalCount?: unknown } | null;
  return !!candidate && typeof candidate === 'object' && typeof candidate.options === 'object' && typeof candidate.connect === 'function' && typeof candidate.totalCount === 'number';
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
