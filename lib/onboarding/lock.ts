import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

/**
 * A lock on one tenant's lifecycle, held by a whole onboarding or offboarding job, in Redis:
 *
 * - taken with `SET <key> <token> NX PX <ttl>` (ttl 30000 ms by default): only one holder;
 * - renewed every ttl/3 while the job runs (compare-and-pexpire, a Lua script), so a job longer
 *   than the ttl (a real `cdktf deploy` of an RDS instance) keeps it. The renewal timer runs on
 *   the worker's event loop, which the CPU-heavy steps never block: they run in child processes
 *   (synthesis: synthesize-in-child.ts; deploy and destroy: the cdktf CLI);
 * - released with compare-and-delete (a Lua script): a holder whose lock expired and was taken
 *   by another never deletes the other's lock.
 *
 * The token is `tenancy/<host>/<pid>/<process id>/<uuid>`: host and pid are for people reading
 * it; the holder's identity is the random process id ({@link PROCESS_LOCK_ID}) and the uuid of the
 * acquisition. Nothing on this host decides that another holder is gone: two workers in separate
 * PID namespaces (containers with one host name, both PID 1) look alike by host and pid. A lock is
 * taken over only when Redis expired it, that is at most one ttl after its holder stopped
 * renewing it. How each path ends the lock:
 *
 * - success, failure, a lost lock, SIGTERM between steps: released (compare-and-delete);
 * - the worker killed (kill -9, OOM, the host gone), or Redis unreachable when it would release:
 *   not released; the key expires one ttl after the last renewal, then another worker takes it.
 */
export interface LockOptions {
  /** PX of the SET. @default 30000 */
  readonly ttlMs?: number;
  /** How often a held lock is extended. @default ttlMs / 3 */
  readonly renewEveryMs?: number;
  /** Prefix of the keys. @default "tenancy:lock:" */
  readonly prefix?: string;
}

export const LOCK_DEFAULTS = { ttlMs: 30_000, prefix: 'tenancy:lock:' } as const;

/** This process's identity in lock tokens: random, so it tells apart processes with the same host name and pid. */
export const PROCESS_LOCK_ID = randomBytes(8).toString('hex');

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export class LockLostError extends Error {
  constructor(readonly key: string) {
    super(`lock ${key} was lost (it expired and may be held by another worker); stopping before the next step`);
    this.name = 'LockLostError';
  }
}

/** A held lock. */
export class LockHandle {
  private timer?: NodeJS.Timeout;
  private lostFlag = false;
  private released = false;

  constructor(private readonly redis: Redis, readonly key: string, readonly token: string, private readonly ttlMs: number, renewEveryMs: number) {
    this.timer = setInterval(() => {
      this.renew().catch(() => undefined);
    }, renewEveryMs);
    this.timer.unref();
  }

  /** True once a renewal found the lock gone or someone else's. */
  get lost(): boolean {
    return this.lostFlag;
  }

  /** Throws {@link LockLostError} when the lock is no longer ours: call it before every step. */
  async assertHeld(): Promise<void> {
    if (this.lostFlag || (await this.redis.get(this.key)) !== this.token) {
      this.lostFlag = true;
      throw new LockLostError(this.key);
    }
  }

  /** Extends the lock to a full ttl; false (and lost) when it is not ours any more. */
  async renew(): Promise<boolean> {
    if (this.released || this.lostFlag) return false;
    const ok = (await this.redis.eval(RENEW, 1, this.key, this.token, String(this.ttlMs))) === 1;
    if (!ok) this.lostFlag = true;
    return ok;
  }

  /** Compare-and-delete; true when the lock was still ours. Safe to call twice. */
  async release(): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.released) return false;
    this.released = true;
    return (await this.redis.eval(RELEASE, 1, this.key, this.token)) === 1;
  }
}

/** Who holds a lock, from its token (for messages; never to decide whether the holder is alive). */
export function lockHolder(token: string): { host: string; pid: number; process: string } | undefined {
  const m = /^tenancy\/([^/]+)\/(\d+)\/([0-9a-f]{16})\/[0-9a-f-]+$/.exec(token);
  return m ? { host: m[1], pid: Number(m[2]), process: m[3] } : undefined;
}

export class RedisLock {
  readonly ttlMs: number;
  private readonly renewEveryMs: number;
  private readonly prefix: string;

  constructor(private readonly redis: Redis, options: LockOptions = {}) {
    this.ttlMs = options.ttlMs ?? LOCK_DEFAULTS.ttlMs;
    if (!Number.isSafeInteger(this.ttlMs) || this.ttlMs < 100) throw new Error(`lock ttl must be an integer ≥ 100 ms (got ${this.ttlMs})`);
    this.renewEveryMs = options.renewEveryMs ?? Math.max(50, Math.floor(this.ttlMs / 3));
    this.prefix = options.prefix ?? LOCK_DEFAULTS.prefix;
  }

  keyOf(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** How often a held lock is renewed. */
  get renewalMs(): number {
    return this.renewEveryMs;
  }

  /**
   * Takes the lock `name` if it is free (never held, released, or expired in Redis); undefined
   * when someone else holds it, whoever that is and however long ago it renewed.
   */
  async tryAcquire(name: string): Promise<LockHandle | undefined> {
    const key = this.keyOf(name);
    const token = `tenancy/${hostname()}/${process.pid}/${PROCESS_LOCK_ID}/${randomUUID()}`;
    const ok = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    return ok === 'OK' ? new LockHandle(this.redis, key, token, this.ttlMs, this.renewEveryMs) : undefined;
  }

  /**
   * Takes the lock, waiting for it up to `waitMs` (polling every `pollMs`, growing to 1 s).
   * Throws when it is still held after that.
   */
  async acquire(name: string, options: { waitMs: number; pollMs?: number }): Promise<LockHandle> {
    const deadline = Date.now() + options.waitMs;
    let poll = options.pollMs ?? 25;
    for (;;) {
      const handle = await this.tryAcquire(name);
      if (handle) return handle;
      if (Date.now() >= deadline) throw new Error(`lock ${this.keyOf(name)} is held by ${await this.redis.get(this.keyOf(name))}; gave up after ${options.waitMs} ms`);
      await new Promise((r) => setTimeout(r, poll));
      poll = Math.min(1000, poll * 2);
    }
  }

  /** Runs `fn` holding the lock `name` (waiting for it), then releases it. */
  async withLock<T>(name: string, options: { waitMs: number }, fn: (handle: LockHandle) => Promise<T>): Promise<T> {
    const handle = await this.acquire(name, options);
    try {
      return await fn(handle);
    } finally {
      await handle.release().catch(() => undefined);
    }
  }
}
