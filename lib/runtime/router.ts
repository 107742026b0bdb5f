import { jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, type KeyLike } from 'jose';
import { LRUCache } from 'lru-cache';
import { Pool, type Client, type ClientConfig, type PoolClient, type PoolConfig } from 'pg';
import { guardPool } from '../db/lost-connections';
import { tenantSqlNames } from '../db/sql';
import { SLUG_PATTERN } from '../registry/tenant-schema';
import type { SecretResolver } from './secret-resolver';
import { DEFAULT_TENANT_SETTING, SQL_NAME_PATTERN, UUID_PATTERN, type TenantContext, type TenantModel } from './tenant-context';
import { isPgPool, listenerClientFromConfig, listenerClientFromPool, TenantStatusListener } from './tenant-status-listener';
import { withTenant } from './with-tenant';

/** What the router reads the control plane with: a pg.Pool (its settings also open the status listener) or a connected pg.Client. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/** Where a tenant's data lives (tenancy.tenants.placement); never a password. */
export interface TenantPlacement {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** Bridge: the tenant's schema (must be `tenant_<slug>`); pool: the pool schema. */
  readonly schema?: string;
  /** The login role; must equal the secret's username. */
  readonly role: string;
  /** Reference handed to the SecretResolver (a Secrets Manager ARN in production). */
  readonly secretRef: string;
  /** The tenant's subdomain under the base domain when it is not the slug. */
  readonly subdomain?: string;
}

/** A tenant as the control plane records it. */
export interface RoutedTenant {
  readonly id: string;
  readonly slug: string;
  readonly model: TenantModel;
  readonly status: string;
  readonly placement: TenantPlacement;
  /** When the control plane recorded the tenant (a token naming it by slug must be issued after it). */
  readonly createdAt: Date;
}

/** A set of connections the router keeps one pg.Pool for. */
export interface ConnectionTarget {
  /** Pool tenants of one pool database share a target; bridge and silo tenants each have their own. */
  readonly key: string;
  readonly model: TenantModel;
  /** Set for bridge and silo targets (one per tenant). */
  readonly tenantId?: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly role: string;
  readonly secretRef: string;
}

/** A request to route: anything with Node-style (lowercase) or Fetch-style headers, or the host / bearer token directly. */
export type TenantRequest =
  | { readonly host?: string; readonly token?: string }
  | { readonly headers: Headers };

export type TenantResolutionCode =
  | 'no-tenant' // nothing in the request names a tenant
  | 'token-required' // JWT is configured and the request has no bearer token (a Host header alone is not enough)
  | 'token-invalid' // bad signature, malformed, wrong issuer/audience/algorithm, or JWT not configured
  | 'token-expired'
  | 'claim-missing'
  | 'claim-invalid'
  | 'tenant-mismatch' // the host names one tenant, the token another
  | 'unknown-tenant'
  | 'tenant-unavailable' // suspended, offboarding, offboarded, provisioning
  | 'placement-invalid'; // the control plane's placement cannot be used

const HTTP_STATUS: Readonly<Record<TenantResolutionCode, number>> = {
  'no-tenant': 400,
  'token-required': 401,
  'token-invalid': 401,
  'token-expired': 401,
  'claim-missing': 401,
  'claim-invalid': 401,
  'tenant-mismatch': 403,
  'unknown-tenant': 404,
  'tenant-unavailable': 403,
  'placement-invalid': 500,
};

/** A request the router refuses; `status` is the HTTP status an API would answer with. */
export class TenantResolutionError extends Error {
  readonly status: number;
  constructor(readonly code: TenantResolutionCode, message: string) {
    super(message);
    this.name = 'TenantResolutionError';
    this.status = HTTP_STATUS[code];
  }
}

export interface TenantRouterJwtOptions {
  /** A verification key (public key, shared secret) or a JWKS function (jose createRemoteJWKSet / createLocalJWKSet). */
  readonly key: KeyLike | Uint8Array | JWTVerifyGetKey;
  /** Claim holding the tenant id (a UUID; a slug is accepted too). @default "tenant_id" */
  readonly claim?: string;
  /**
   * Passed to jose's jwtVerify. `algorithms` is required (the accepted algorithms are pinned, never
   * taken from the token's header); set issuer and audience in production. `exp` is always required.
   */
  readonly verify?: JWTVerifyOptions;
  /**
   * Refuse requests without a bearer token, even when their Host names a tenant: a Host header is
   * chosen by the client and proves nothing. `false` routes host-only requests too (only behind a
   * gateway that has authenticated the request for that host); a token, when sent, must still
   * name the host's tenant.
   * @default true
   */
  readonly requireToken?: boolean;
  /**
   * Longest lifetime a token may have, in seconds: `exp - iat`, or `exp - now` when it has no `iat`.
   * Longer-lived tokens are refused, so a leaked token is useful for at most this long.
   * @default 3600
   */
  readonly maxLifetimeSeconds?: number;
}

/** How the router hears of tenant status changes (migration 0005: NOTIFY tenancy_tenant_status). */
export interface TenantStatusListenerConfig {
  /**
   * The dedicated LISTEN connection: client settings, or a function creating an unconnected pg.Client.
   * @default the settings of `controlPlane` when it is a pg.Pool (TLS and credentials included)
   */
  readonly client?: ClientConfig | (() => Client);
  /** Delay before reconnect attempt `attempt` (1, 2, …) after the connection is lost. @default 100 ms doubling up to 30 s */
  readonly reconnectDelayMs?: (attempt: number) => number;
}

/** What the status listener did: tests and metrics wait on these. */
export type TenantStatusEvent =
  | { readonly type: 'listening' }
  /** Cached lookups of the tenant (all tenants when tenantId is undefined) were dropped, and its own pool retired. */
  | { readonly type: 'invalidated'; readonly tenantId?: string }
  /** The LISTEN connection failed or was lost: the cache was cleared and is bypassed until 'listening'. */
  | { readonly type: 'disconnected'; readonly error: Error }
  | { readonly type: 'reconnecting'; readonly attempt: number; readonly delayMs: number };

export type PoolEvent =
  | { readonly type: 'open'; readonly key: string; readonly max: number }
  | { readonly type: 'evict'; readonly key: string; readonly reason: string }
  | { readonly type: 'end'; readonly key: string };

export interface TenantRouterOptions {
  /** The control-plane database (schema tenancy). */
  readonly controlPlane: Queryable;
  readonly secrets: SecretResolver;
  /** Tenants are resolved from `<subdomain>.<baseDomain>` Host headers when set. */
  readonly baseDomain?: string;
  /** Tenants are resolved from `Authorization: Bearer <jwt>` when set; a token is then required (see `jwt.requireToken`). */
  readonly jwt?: TenantRouterJwtOptions;
  /** Most connections all pools together may hold (the sum of their `max`). */
  readonly connectionBudget: number;
  /** `max` of each pool. @default 10 (capped at the budget) */
  readonly maxConnectionsPerPool?: number | ((target: ConnectionTarget) => number);
  /** Other pg.Pool settings (ssl, idleTimeoutMillis, connectionTimeoutMillis, …). */
  readonly poolConfig?: Omit<PoolConfig, 'host' | 'port' | 'database' | 'user' | 'password' | 'max' | 'connectionString'>;
  /**
   * How long a control-plane lookup is reused. 0 looks the tenant up on every request. Cached
   * lookups are used only while the status listener is listening, and are dropped as soon as the
   * control plane announces a change of the tenant.
   * @default 30000
   */
  readonly tenantCacheTtlMs?: number;
  /**
   * The LISTEN connection that evicts cached tenants when their status changes. Required while
   * caching (tenantCacheTtlMs > 0) unless `controlPlane` is a pg.Pool (its settings are reused).
   * `false` accepts serving a suspended tenant from the cache until the TTL expires.
   * @default derived from `controlPlane`
   */
  readonly statusListener?: TenantStatusListenerConfig | false;
  /** Status-listener events: listening, invalidated, disconnected, reconnecting. */
  readonly onStatusEvent?: (event: TenantStatusEvent) => void;
  /** Statuses that may connect. @default ["active", "past_due"] (past_due: a failed payment within its grace period, lib/billing/webhooks) */
  readonly allowedStatuses?: readonly string[];
  /** The setting the pool RLS policy reads. @default "app.tenant_id" */
  readonly tenantSetting?: string;
  /** Creates the pg.Pool of a target (tests wrap it). @default new pg.Pool(config) */
  readonly createPool?: (config: PoolConfig, target: ConnectionTarget) => Pool;
  /** Pools opened, evicted and ended. */
  readonly onPoolEvent?: (event: PoolEvent) => void;
  /** Errors of idle connections the server closed (already discarded by the pool; the next request opens a fresh one). */
  readonly onPoolError?: (error: Error, target: ConnectionTarget) => void;
}

interface PoolEntry {
  readonly target: ConnectionTarget;
  readonly pool: Pool;
  readonly max: number;
  /** withTenant calls using (or waiting on) the pool: it is ended only when this is 0. */
  active: number;
  retired: boolean;
  /** Connections open (pg.Pool 'connect' minus 'remove': a removed connection's socket is closed). */
  open: number;
  /** pool.end() was called / has resolved. */
  ending: boolean;
  poolEnded: boolean;
  finished: boolean;
}

interface Waiter {
  readonly max: number;
  readonly grant: () => void;
  readonly fail: (error: Error) => void;
}

const TENANT_COLUMNS = 'id::text AS id, slug, model, status, placement, created_at';
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Routes a request to its tenant's database: resolves the tenant (Host subdomain or JWT claim),
 * looks it up in the control plane (refusing unknown and non-active tenants), and runs work
 * through {@link withTenant} on a pg.Pool for the tenant's connection target.
 *
 * Pools: pool tenants of one pool database share one pg.Pool (one role for all); bridge and silo
 * tenants get one each. The sum of the pools' `max` never exceeds `connectionBudget`: opening a
 * pool first evicts least-recently-used idle pools (ending them), and waits while in-use pools
 * hold the budget. An evicted pool still in use is ended when its last user finishes, and its
 * connections count against the budget until it has ended.
 */
export class TenantRouter {
  private readonly pools: LRUCache<string, PoolEntry>;
  private readonly retiring = new Set<PoolEntry>();
  private readonly drained: (() => void)[] = [];
  private readonly opening = new Map<string, Promise<PoolEntry>>();
  private readonly waiters: Waiter[] = [];
  private readonly tenants?: LRUCache<string, RoutedTenant>;
  private readonly budget: number;
  private readonly allowedStatuses: ReadonlySet<string>;
  private readonly claim: string;
  private readonly baseDomain?: string;
  private readonly maxTokenLifetime: number;
  private readonly listener?: TenantStatusListener;
  /** Bumped by every invalidation: a lookup that started before one must not fill the cache. */
  private generation = 0;
  private reserved = 0;
  private closed = false;

  constructor(private readonly options: TenantRouterOptions) {
    const budget = options.connectionBudget;
    if (!Number.isInteger(budget) || budget < 1) throw new Error(`TenantRouter: connectionBudget ${budget} must be a positive integer`);
    this.budget = budget;
    this.allowedStatuses = new Set(options.allowedStatuses ?? ['active', 'past_due']);
    this.claim = options.jwt?.claim ?? 'tenant_id';
    this.maxTokenLifetime = options.jwt?.maxLifetimeSeconds ?? 3600;
    if (options.jwt) {
      if (!Number.isInteger(this.maxTokenLifetime) || this.maxTokenLifetime < 1) {
        throw new Error(`TenantRouter: jwt.maxLifetimeSeconds ${this.maxTokenLifetime} must be a positive integer`);
      }
      const algorithms = options.jwt.verify?.algorithms;
      if (!algorithms || algorithms.length === 0) throw new Error('TenantRouter: jwt.verify.algorithms must list the accepted signing algorithms (e.g. ["ES256"])');
    }
    if (options.baseDomain !== undefined) {
      const domain = options.baseDomain.toLowerCase().replace(/\.$/, '');
      if (!/^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(domain)) throw new Error(`TenantRouter: baseDomain ${JSON.stringify(options.baseDomain)} is not a domain name`);
      this.baseDomain = domain;
    }
    // Each pool holds at least one connection of the budget, so the count never binds before the
    // budget does; eviction is done by makeRoom(), the cache gives the recency order.
    this.pools = new LRUCache<string, PoolEntry>({
      max: budget,
      dispose: (entry, key, reason) => {
        this.options.onPoolEvent?.({ type: 'evict', key, reason });
        this.retire(entry);
      },
    });
    const ttl = options.tenantCacheTtlMs ?? 30_000;
    if (ttl > 0) this.tenants = new LRUCache<string, RoutedTenant>({ max: 10_000, ttl });
    if (ttl > 0 && options.statusListener !== false) this.listener = this.createListener(ttl, options.statusListener);
  }

  private createListener(ttl: number, config: TenantStatusListenerConfig | undefined): TenantStatusListener {
    const client = config?.client;
    let createClient: () => Client;
    if (typeof client === 'function') createClient = client;
    else if (client) createClient = listenerClientFromConfig(client);
    else if (isPgPool(this.options.controlPlane)) createClient = listenerClientFromPool(this.options.controlPlane);
    else {
      throw new Error(
        `TenantRouter: tenantCacheTtlMs ${ttl} caches tenant lookups, but nothing would tell the router of a suspension: ` +
          'pass statusListener.client (or a pg.Pool as controlPlane), set tenantCacheTtlMs: 0, or set statusListener: false to accept serving a suspended tenant until the TTL expires',
      );
    }
    const emit = (event: TenantStatusEvent) => this.options.onStatusEvent?.(event);
    return new TenantStatusListener({
      createClient,
      reconnectDelayMs: config?.reconnectDelayMs,
      onListening: () => {
        // Lookups that started before LISTEN was active may hold a state older than a missed NOTIFY.
        this.generation++;
        emit({ type: 'listening' });
      },
      onNotification: (tenantId) => {
        this.invalidate(tenantId);
        emit({ type: 'invalidated', ...(tenantId ? { tenantId } : {}) });
      },
      onDisconnected: (error) => {
        // Changes go unannounced from now on: forget everything, and bypass the cache until LISTEN is back.
        this.generation++;
        this.tenants?.clear();
        emit({ type: 'disconnected', error });
      },
      onReconnectScheduled: (attempt, delayMs) => emit({ type: 'reconnecting', attempt, delayMs }),
    });
  }

  /**
   * Resolves when the status listener is listening (starting it if needed): from then on cached
   * lookups are used. Rejects when the router has no listener (no cache, or statusListener: false) or is closed.
   */
  whenListening(): Promise<void> {
    if (!this.listener) return Promise.reject(new Error('TenantRouter: no status listener (tenant caching is off or statusListener is false)'));
    if (this.closed) return Promise.reject(new Error('TenantRouter closed'));
    return this.listener.whenListening();
  }

  /** The cache, when it may be used: always with statusListener false, else only while LISTEN is active. */
  private usableCache(): LRUCache<string, RoutedTenant> | undefined {
    if (!this.tenants) return undefined;
    if (!this.listener) return this.tenants;
    this.listener.start();
    return this.listener.listening ? this.tenants : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Resolution
  // -------------------------------------------------------------------------------------------

  /** The tenant a request is for; throws TenantResolutionError when it cannot be served. */
  async resolve(request: TenantRequest): Promise<RoutedTenant> {
    const { host, token } = requestParts(request);
    if (this.options.jwt && this.options.jwt.requireToken !== false && token === undefined) {
      throw new TenantResolutionError('token-required', 'a bearer token is required: the Host header alone does not identify the tenant (jwt.requireToken)');
    }
    const subdomain = host === undefined ? undefined : this.subdomainOf(host);
    const byToken = token === undefined ? undefined : await this.tenantFromToken(token);
    const byHost = subdomain === undefined ? undefined : await this.lookup('subdomain', subdomain);
    if (subdomain !== undefined && !byHost) throw new TenantResolutionError('unknown-tenant', `no tenant has the subdomain ${JSON.stringify(subdomain)}`);
    if (byToken && byHost && byToken.id !== byHost.id) {
      throw new TenantResolutionError('tenant-mismatch', `the token is for tenant ${byToken.slug} but the host is tenant ${byHost.slug}'s`);
    }
    const tenant = byToken ?? byHost;
    if (!tenant) {
      const why = host !== undefined && this.baseDomain ? `host ${JSON.stringify(host)} is not <tenant>.${this.baseDomain} and there is no bearer token` : 'no tenant subdomain and no bearer token';
      throw new TenantResolutionError('no-tenant', `cannot tell the tenant: ${why}`);
    }
    if (!this.allowedStatuses.has(tenant.status)) {
      throw new TenantResolutionError('tenant-unavailable', `tenant ${tenant.slug} is ${tenant.status}; only ${[...this.allowedStatuses].join(', ')} tenants are served`);
    }
    return tenant;
  }

  /** The tenant subdomain of a Host header value, or undefined when it is not `<label>.<baseDomain>`. */
  subdomainOf(host: string): string | undefined {
    if (!this.baseDomain) return undefined;
    const name = host.trim().toLowerCase().replace(/:[0-9]+$/, '').replace(/\.$/, '');
    const suffix = `.${this.baseDomain}`;
    if (!name.endsWith(suffix)) return undefined;
    const label = name.slice(0, -suffix.length);
    return HOST_LABEL.test(label) ? label : undefined;
  }

  private async tenantFromToken(token: string): Promise<RoutedTenant> {
    const jwt = this.options.jwt;
    if (!jwt) throw new TenantResolutionError('token-invalid', 'a bearer token was sent but JWT verification is not configured');
    let payload: JWTPayload;
    const verify: JWTVerifyOptions = { ...jwt.verify, requiredClaims: [...new Set([...(jwt.verify?.requiredClaims ?? []), 'exp'])] };
    try {
      ({ payload } = await jwtVerify(token, jwt.key as any, verify));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw new TenantResolutionError('token-expired', `the token expired: ${(e as Error).message}`);
      throw new TenantResolutionError('token-invalid', `the token was refused: ${(e as Error).message}${code ? ` (${code})` : ''}`);
    }
    const now = Math.floor((verify.currentDate ?? new Date()).getTime() / 1000);
    const lifetime = payload.exp! - (typeof payload.iat === 'number' ? payload.iat : now);
    if (lifetime > this.maxTokenLifetime) {
      const span = typeof payload.iat === 'number' ? 'exp - iat' : 'exp - now (no iat)';
      throw new TenantResolutionError('token-invalid', `the token was refused: its lifetime of ${lifetime} s (${span}) exceeds the maximum of ${this.maxTokenLifetime} s (jwt.maxLifetimeSeconds)`);
    }
    const value = payload[this.claim];
    if (value === undefined || value === null || value === '') throw new TenantResolutionError('claim-missing', `the token has no ${JSON.stringify(this.claim)} claim`);
    if (typeof value === 'string' && UUID_PATTERN.test(value)) return this.require(await this.lookup('id', value.toLowerCase()), `id ${value}`);
    if (typeof value === 'string' && SLUG_PATTERN.test(value)) {
      const tenant = this.require(await this.lookup('slug', value), `slug ${value}`);
      // A slug is reused once its tenant is offboarded: a token naming a slug is only good for the
      // tenant that held it when the token was issued, so it must say when that was.
      if (typeof payload.iat !== 'number') {
        throw new TenantResolutionError('claim-invalid', `the token names tenant ${value} by slug but has no "iat": a slug can pass to a new tenant after an offboarding, so a slug token must carry its issue time (or name the tenant by id)`);
      }
      if (payload.iat < Math.floor(tenant.createdAt.getTime() / 1000)) {
        throw new TenantResolutionError('claim-invalid', `the token names tenant ${value} by slug but was issued before that tenant existed (an earlier tenant with the same slug was offboarded)`);
      }
      return tenant;
    }
    throw new TenantResolutionError('claim-invalid', `the token's ${JSON.stringify(this.claim)} claim is neither a tenant id nor a slug`);
  }

  /** The tenant with this id as the control plane records it (any status), for work done per tenant outside a request (usage reporting). */
  tenantById(id: string): Promise<RoutedTenant | undefined> {
    return this.lookup('id', id.toLowerCase());
  }

  private require(tenant: RoutedTenant | undefined, what: string): RoutedTenant {
    if (!tenant) throw new TenantResolutionError('unknown-tenant', `no tenant has the ${what}`);
    return tenant;
  }

  private async lookup(by: 'id' | 'slug' | 'subdomain', value: string): Promise<RoutedTenant | undefined> {
    const cacheKey = `${by}:${value}`;
    const cache = this.usableCache();
    const cached = cache?.get(cacheKey);
    if (cached) return cached;
    const generation = this.generation;
    const where = by === 'id' ? 'id = $1::uuid' : by === 'slug' ? 'slug = $1' : "coalesce(placement->>'subdomain', slug) = $1";
    const { rows: all } = await this.options.controlPlane.query(`SELECT ${TENANT_COLUMNS} FROM tenancy.tenants WHERE ${where} ORDER BY created_at DESC`, [value]);
    if (all.length === 0) return undefined;
    // A new tenant may reuse an offboarded tenant's slug (and subdomain): the live one answers; with
    // none, the newest offboarded one (refused as unavailable, not unknown).
    const live = all.filter((r) => r.status !== 'offboarded');
    const rows = live.length > 0 ? live : all.slice(0, 1);
    if (rows.length > 1) throw new TenantResolutionError('placement-invalid', `${rows.length} tenants have the ${by} ${JSON.stringify(value)}`);
    const tenant = parseTenantRow(rows[0]);
    if (cache && generation === this.generation && this.usableCache() === cache) cache.set(cacheKey, tenant);
    return tenant;
  }

  /**
   * Forgets cached control-plane lookups (all, or one tenant's) and retires the tenant's own pool
   * (bridge, silo: ended once its running work is done), e.g. after a status change. The status
   * listener calls it on every NOTIFY.
   */
  invalidate(tenantId?: string): void {
    this.generation++;
    const id = tenantId?.toLowerCase();
    if (this.tenants) {
      if (id === undefined) this.tenants.clear();
      else for (const [key, tenant] of [...this.tenants.entries()]) if (tenant.id === id) this.tenants.delete(key);
    }
    const own = [...this.pools.entries()].filter(([, entry]) => entry.target.tenantId !== undefined && (id === undefined || entry.target.tenantId === id));
    for (const [key] of own) this.pools.delete(key);
  }

  // -------------------------------------------------------------------------------------------
  // Running work
  // -------------------------------------------------------------------------------------------

  /**
   * Resolves the tenant of `request` and runs `fn` through withTenant on its connection target's
   * pool. A connection the server ends meanwhile rejects the call with a ConnectionLostError
   * naming the tenant (never retried: `fn` is a transaction); the next call gets a fresh connection.
   */
  async withTenant<T>(request: TenantRequest, fn: (client: PoolClient, tenant: RoutedTenant) => Promise<T>): Promise<T> {
    const tenant = await this.resolve(request);
    return this.withResolvedTenant(tenant, fn);
  }

  /** Like withTenant, for a tenant already resolved. */
  async withResolvedTenant<T>(tenant: RoutedTenant, fn: (client: PoolClient, tenant: RoutedTenant) => Promise<T>): Promise<T> {
    const target = connectionTarget(tenant);
    const entry = await this.acquire(target);
    try {
      return await withTenant(entry.pool, tenantContext(tenant), (client) => fn(client, tenant), { tenantSetting: this.options.tenantSetting ?? DEFAULT_TENANT_SETTING });
    } catch (e) {
      // A refused login (rotated password): drop the pool so the next request resolves the secret again.
      if ((e as { code?: string }).code === '28P01' && this.pools.peek(target.key) === entry) this.pools.delete(target.key);
      throw e;
    } finally {
      this.release(entry);
    }
  }

  /** The connection target of a tenant: which pool serves it. */
  targetOf(tenant: RoutedTenant): ConnectionTarget {
    return connectionTarget(tenant);
  }

  /** Budget accounting and the pools held, for metrics and tests. */
  stats(): { budget: number; committed: number; reserved: number; waiting: number; pools: { key: string; max: number; active: number; retired: boolean; open: number }[] } {
    const describe = (e: PoolEntry) => ({ key: e.target.key, max: e.max, active: e.active, retired: e.retired, open: e.open });
    return {
      budget: this.budget,
      committed: this.committed(),
      reserved: this.reserved,
      waiting: this.waiters.length,
      pools: [...[...this.pools.values()].map(describe), ...[...this.retiring].map(describe)],
    };
  }

  /** Refuses new work, ends every pool (in-use ones once their work is done) and resolves when all have ended. */
  async close(): Promise<void> {
    this.closed = true;
    const listenerClosed = this.listener?.close();
    for (const waiter of this.waiters.splice(0)) waiter.fail(new Error('TenantRouter closed'));
    this.pools.clear();
    await new Promise<void>((resolve) => {
      this.drained.push(resolve);
      this.checkDrained();
    });
    await listenerClosed;
  }

  private checkDrained(): void {
    if (!this.closed || this.retiring.size > 0 || this.pools.size > 0) return;
    for (const resolve of this.drained.splice(0)) resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Pools and the budget
  // -------------------------------------------------------------------------------------------

  private maxFor(target: ConnectionTarget): number {
    const option = this.options.maxConnectionsPerPool ?? Math.min(10, this.budget);
    const max = typeof option === 'function' ? option(target) : option;
    if (!Number.isInteger(max) || max < 1 || max > this.budget) {
      throw new Error(`TenantRouter: a pool of ${max} connections for ${target.key} does not fit the budget of ${this.budget}`);
    }
    return max;
  }

  private async acquire(target: ConnectionTarget): Promise<PoolEntry> {
    for (;;) {
      if (this.closed) throw new Error('TenantRouter closed');
      const entry = this.pools.get(target.key);
      if (entry) {
        entry.active++;
        return entry;
      }
      const opening = this.opening.get(target.key);
      if (opening) {
        await opening.catch(() => undefined);
        continue;
      }
      const open = this.open(target);
      this.opening.set(target.key, open);
      try {
        return await open;
      } finally {
        this.opening.delete(target.key);
      }
    }
  }

  /** Opens the pool of a target: credentials first (nothing reserved while waiting on them), then budget. Returns it with active = 1. */
  private async open(target: ConnectionTarget): Promise<PoolEntry> {
    const max = this.maxFor(target);
    const credentials = await this.options.secrets.resolve(target.secretRef);
    if (credentials.username !== target.role) {
      throw new TenantResolutionError('placement-invalid', `the secret ${target.secretRef} is for role ${credentials.username}, the placement says ${target.role}`);
    }
    await this.reserve(max);
    let entry: PoolEntry;
    try {
      if (this.closed) throw new Error('TenantRouter closed');
      const config: PoolConfig = {
        ...this.options.poolConfig,
        host: target.host,
        port: target.port,
        database: target.database,
        user: credentials.username,
        password: credentials.password,
        max,
      };
      // Guarded (lib/db/lost-connections.ts): a connection the server ends fails its call, never the process.
      const pool = guardPool(this.options.createPool ? this.options.createPool(config, target) : new Pool(config), { onIdleError: (error) => this.options.onPoolError?.(error, target) });
      const created: PoolEntry = { target, pool, max, active: 1, retired: false, open: 0, ending: false, poolEnded: false, finished: false };
      pool.on('connect', () => created.open++);
      pool.on('remove', () => {
        created.open--;
        this.finishEnd(created);
      });
      entry = created;
      this.reserved -= max;
      this.pools.set(target.key, entry);
    } catch (e) {
      this.reserved -= max;
      this.pump();
      throw e;
    }
    this.options.onPoolEvent?.({ type: 'open', key: target.key, max });
    return entry;
  }

  private release(entry: PoolEntry): void {
    entry.active--;
    if (entry.active === 0 && entry.retired) this.end(entry);
    this.pump();
  }

  private retire(entry: PoolEntry): void {
    if (entry.retired) return;
    entry.retired = true;
    this.retiring.add(entry);
    if (entry.active === 0) this.end(entry);
  }

  /** Ends an idle retired pool; its connections count against the budget until every one is closed. */
  private end(entry: PoolEntry): void {
    if (entry.ending) return;
    entry.ending = true;
    void entry.pool
      .end()
      .catch(() => undefined)
      .then(() => {
        entry.poolEnded = true;
        this.finishEnd(entry);
      });
  }

  private finishEnd(entry: PoolEntry): void {
    if (!entry.poolEnded || entry.open > 0 || entry.finished) return;
    entry.finished = true;
    this.retiring.delete(entry);
    this.options.onPoolEvent?.({ type: 'end', key: entry.target.key });
    this.pump();
    this.checkDrained();
  }

  /** Connections held or promised: live pools, pools still ending, reservations of pools being opened. */
  private committed(): number {
    let sum = this.reserved;
    for (const entry of this.pools.values()) sum += entry.max;
    for (const entry of this.retiring) sum += entry.max;
    return sum;
  }

  private reserve(max: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('TenantRouter closed'));
    return new Promise<void>((grant, fail) => {
      this.waiters.push({ max, grant, fail });
      this.pump();
    });
  }

  /** Grants waiting reservations in order while they fit, evicting least-recently-used idle pools to make room. */
  private pump(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0];
      this.evictIdleFor(waiter.max);
      if (this.committed() + waiter.max > this.budget) return;
      this.reserved += waiter.max;
      this.waiters.shift();
      waiter.grant();
    }
  }

  /** Evicts idle live pools, least recently used first, until `max` more would fit once every ending pool is gone. */
  private evictIdleFor(max: number): void {
    let live = this.reserved;
    for (const entry of this.pools.values()) live += entry.max;
    if (live + max <= this.budget) return;
    for (const key of [...this.pools.rkeys()]) {
      const entry = this.pools.peek(key);
      if (!entry || entry.active > 0) continue;
      this.pools.delete(key);
      live -= entry.max;
      if (live + max <= this.budget) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Headers = Readonly<Record<string, string | string[] | undefined>> | { get(name: string): string | null };

function header(headers: Headers, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const value = (headers as Readonly<Record<string, string | string[] | undefined>>)[name];
  return Array.isArray(value) ? value[0] : value;
}

function requestParts(request: TenantRequest): { host?: string; token?: string } {
  if (request === null || typeof request !== 'object') throw new TenantResolutionError('no-tenant', 'expected a request, { host } or { token }');
  if ('headers' in request && request.headers) {
    const host = header(request.headers, 'host');
    const authorization = header(request.headers, 'authorization');
    let token: string | undefined;
    if (authorization !== undefined && /^bearer\s/i.test(authorization)) {
      const match = /^bearer\s+([A-Za-z0-9_\-.]+)\s*$/i.exec(authorization);
      if (!match) throw new TenantResolutionError('token-invalid', 'the Authorization header is not "Bearer <jwt>"');
      token = match[1];
    }
    return { host: host || undefined, token };
  }
  const { host, token } = request as { host?: string; token?: string };
  return { host: host || undefined, token: token || undefined };
}

function parseTenantRow(row: { id: string; slug: string; model: string; status: string; placement: unknown; created_at: Date }): RoutedTenant {
  const where = `tenant ${row.slug}`;
  const fail = (message: string): never => {
    throw new TenantResolutionError('placement-invalid', `${where}: placement ${message}`);
  };
  if (row.model !== 'pool' && row.model !== 'bridge' && row.model !== 'silo') fail(`belongs to an unknown model ${JSON.stringify(row.model)}`);
  const p = (row.placement ?? {}) as Record<string, unknown>;
  const text = (key: string, pattern?: RegExp): string => {
    const value = p[key];
    if (typeof value !== 'string' || value === '' || /\s/.test(value)) return fail(`has no usable "${key}"`);
    if (pattern && !pattern.test(value)) fail(`"${key}" ${JSON.stringify(value)} is not valid`);
    return value;
  };
  const port = p.port === undefined ? 5432 : Number(p.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`"port" ${JSON.stringify(p.port)} is not a port`);
  const placement: TenantPlacement = {
    host: text('host'),
    port,
    database: text('database', SQL_NAME_PATTERN),
    role: text('role', SQL_NAME_PATTERN),
    secretRef: text('secret_ref'),
    ...(p.schema !== undefined ? { schema: text('schema', SQL_NAME_PATTERN) } : {}),
    ...(p.subdomain !== undefined ? { subdomain: text('subdomain', HOST_LABEL) } : {}),
  };
  if (row.model === 'bridge' && placement.schema !== undefined && placement.schema !== tenantSqlNames(row.slug).schema) {
    fail(`schema ${placement.schema} is not ${tenantSqlNames(row.slug).schema}`);
  }
  return { id: row.id.toLowerCase(), slug: row.slug, model: row.model as TenantModel, status: row.status, placement, createdAt: new Date(row.created_at) };
}

function connectionTarget(tenant: RoutedTenant): ConnectionTarget {
  const { host, port, database, role, secretRef } = tenant.placement;
  const shared = tenant.model === 'pool';
  const key = JSON.stringify([tenant.model, shared ? null : tenant.id, host, port, database, role, secretRef]);
  return { key, model: tenant.model, ...(shared ? {} : { tenantId: tenant.id }), host, port, database, role, secretRef };
}

function tenantContext(tenant: RoutedTenant): TenantContext {
  switch (tenant.model) {
    case 'pool':
      return { model: 'pool', id: tenant.id, slug: tenant.slug };
    case 'bridge':
      return { model: 'bridge', id: tenant.id, slug: tenant.slug, schema: tenant.placement.schema };
    case 'silo':
      return { model: 'silo', id: tenant.id, slug: tenant.slug };
  }
}
