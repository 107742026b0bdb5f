import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { counterKey, DIMENSION_PATTERN, HOUR_MS, hourIndexKey, hourLabel, isTenantId, USAGE_KEY_PREFIX } from './usage-keys';

/**
 * Counts usage per tenant, dimension and UTC hour in Redis without ever making a request wait on
 * Redis: `record()` only adds to an in-process buffer (a Map increment); a timer flushes the
 * buffer every `flushIntervalMs` as batches of INCRBY + EXPIRE (and the hour's index set), one Lua
 * script per batch, all batches in one pipeline.
 *
 * Exactly once per batch: each batch carries a random id that the script claims first
 * (`SET <prefix>:batch:<id> NX`); a batch whose reply was lost (a timeout, Redis restarting) is
 * sent again as it was, with the same id, and applied at most once. Counts recorded meanwhile
 * go into the next batch, never into a batch that may already have been applied.
 *
 * Bounded: the buffer and the unsent batches together hold at most `maxBufferedKeys` distinct
 * counters (tenant × dimension × hour; a counter in an unsent batch may also count on in the
 * buffer, so at most twice that many entries). When Redis is down that long, a record for a
 * counter not yet held is dropped and counted in `stats().dropped` (and passed to `onDrop`);
 * counters already held keep counting. Redis down, slow or refusing: the flush fails or times out, the batches
 * stay buffered, the requests never notice.
 *
 * What is lost in the worst case (README "Metering"): the counts still buffered when the process
 * dies (at most `flushIntervalMs` of traffic while Redis is up; everything since Redis went away
 * while it is down); records dropped at the bound (counted); and a counter whose key expired in
 * Redis (`ttlSeconds`) before its hour was reported.
 */
export interface UsageRecorderOptions {
  /**
   * A redis:// URL (the recorder opens its own connection, with no offline queue so that commands
   * fail at once while Redis is away) or an ioredis client the caller owns.
   */
  readonly redis: string | Redis;
  /** @default 1000 */
  readonly flushIntervalMs?: number;
  /** A flush not answered within this is abandoned for now (its batches stay buffered). @default 2000 */
  readonly flushTimeoutMs?: number;
  /** Most counters (tenant × dimension × hour) buffered and unsent together. @default 100000 */
  readonly maxBufferedKeys?: number;
  /** Counters per Lua batch. @default 1000 */
  readonly batchKeys?: number;
  /** Expiry of the counters and the hour index; the reporter must run within it. @default 8 days */
  readonly ttlSeconds?: number;
  /** @default "tenancy:usage" */
  readonly keyPrefix?: string;
  /** Milliseconds since the epoch: which hour a record counts in. @default Date.now */
  readonly now?: () => number;
  /** A record dropped at the bound (or refused: a tenant id that is not a lowercase UUID, a bad dimension). */
  readonly onDrop?: (drop: { tenantId: string; dimension: string; count: number; reason: 'buffer-full' | 'invalid' }) => void;
  /** A failed or timed-out flush (the batches stay buffered and are sent again). */
  readonly onFlushError?: (error: Error) => void;
}

export interface UsageRecorderStats {
  /** Counter entries in the buffer and in unsent batches. */
  readonly bufferedKeys: number;
  /** The counts they hold. */
  readonly bufferedCount: number;
  /** Counts dropped because the buffer was full. */
  readonly dropped: number;
  /** Counts refused as invalid (tenant id or dimension). */
  readonly rejected: number;
  /** Counts Redis confirmed. */
  readonly flushed: number;
  readonly flushFailures: number;
}

interface Entry {
  readonly tenantId: string;
  readonly dimension: string;
  readonly hour: string;
  count: number;
}

interface Batch {
  readonly id: string;
  readonly entries: readonly Entry[];
}

/** Claims the batch id, then applies its counters; a batch already applied is a no-op (returns 0). */
const APPLY_BATCH = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
local ttl = tonumber(ARGV[2])
local n = (#KEYS - 1) / 2
for i = 1, n do
  local counter = KEYS[2 * i]
  local index = KEYS[2 * i + 1]
  redis.call('INCRBY', counter, ARGV[1 + 2 * i])
  redis.call('EXPIRE', counter, ttl)
  redis.call('SADD', index, ARGV[2 + 2 * i])
  redis.call('EXPIRE', index, ttl)
end
return 1
`;

/** A batch id is remembered this long: a reply lost for longer than this could double count. */
const BATCH_MARKER_TTL_SECONDS = 2 * 24 * 3600;

export class UsageRecorder {
  private readonly redis: Redis;
  private readonly ownsRedis: boolean;
  /** hour → dimension → tenant id → count: the hot path hashes the tenant id once, builds no key. */
  private buffer = new Map<string, Map<string, Map<string, Entry>>>();
  private bufferedEntries = 0;
  private hourCounters = new Map<string, Map<string, Entry>>();
  private pending: Batch[] = [];
  private pendingKeys = 0;
  /** How many unsent batches hold each counter (a counter may be in one and in the buffer). */
  private readonly pendingIndex = new Map<string, number>();
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private hourFrom = -Infinity;
  private hour = '';
  private counters = { dropped: 0, rejected: 0, flushed: 0, flushFailures: 0 };
  private readonly flushIntervalMs: number;
  private readonly flushTimeoutMs: number;
  private readonly maxBufferedKeys: number;
  private readonly batchKeys: number;
  private readonly ttlSeconds: number;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(private readonly options: UsageRecorderOptions) {
    this.flushIntervalMs = positiveInteger(options.flushIntervalMs ?? 1000, 'flushIntervalMs');
    this.flushTimeoutMs = positiveInteger(options.flushTimeoutMs ?? 2000, 'flushTimeoutMs');
    this.maxBufferedKeys = positiveInteger(options.maxBufferedKeys ?? 100_000, 'maxBufferedKeys');
    this.batchKeys = positiveInteger(options.batchKeys ?? 1000, 'batchKeys');
    this.ttlSeconds = positiveInteger(options.ttlSeconds ?? 8 * 24 * 3600, 'ttlSeconds');
    this.prefix = options.keyPrefix ?? USAGE_KEY_PREFIX;
    this.now = options.now ?? Date.now;
    if (typeof options.redis === 'string') {
      this.redis = new Redis(options.redis, recorderRedisOptions());
      this.redis.on('error', () => undefined); // reconnects by itself; flush failures are reported
      this.ownsRedis = true;
    } else {
      this.redis = options.redis;
      this.ownsRedis = false;
    }
    this.redis.defineCommand('tenancyUsageApply', { lua: APPLY_BATCH });
    this.timer = setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Counts `count` (default 1) for the tenant in the current UTC hour. Synchronous, never throws,
   * never touches the network: safe on every request.
   */
  record(tenantId: string, dimension = 'api_calls', count = 1): void {
    if (!Number.isSafeInteger(count) || count <= 0) {
      this.options.onDrop?.({ tenantId: String(tenantId), dimension: String(dimension), count, reason: 'invalid' });
      return;
    }
    const counters = this.countersOf(dimension);
    // A buffered counter was validated when it was added: the hot path only increments.
    const entry = counters.get(tenantId);
    if (entry) {
      entry.count += count;
      return;
    }
    if (!isTenantId(tenantId) || typeof dimension !== 'string' || !DIMENSION_PATTERN.test(dimension)) {
      this.counters.rejected += count;
      this.options.onDrop?.({ tenantId: String(tenantId), dimension: String(dimension), count, reason: 'invalid' });
      return;
    }
    const hour = this.hour;
    // A counter waiting in an unsent batch may count on in the buffer: it is no new counter.
    if (this.bufferedEntries + this.pendingKeys >= this.maxBufferedKeys && !this.pendingIndex.has(entryKey(tenantId, dimension, hour))) {
      this.counters.dropped += count;
      this.options.onDrop?.({ tenantId, dimension, count, reason: 'buffer-full' });
      return;
    }
    counters.set(tenantId, { tenantId, dimension, hour, count });
    this.bufferedEntries++;
  }

  /** The buffer's counters of `dimension` in the clock's current hour (by tenant id). */
  private countersOf(dimension: string): Map<string, Entry> {
    const now = this.now();
    if (now < this.hourFrom || now >= this.hourFrom + HOUR_MS) {
      this.hourFrom = Math.floor(now / HOUR_MS) * HOUR_MS;
      this.hour = hourLabel(now);
      let hourMap = this.buffer.get(this.hour);
      if (!hourMap) this.buffer.set(this.hour, (hourMap = new Map()));
      this.hourCounters = hourMap;
    }
    let counters = this.hourCounters.get(dimension);
    if (!counters) {
      // Only a valid dimension gets a map (an invalid one is then refused by record()).
      if (typeof dimension !== 'string' || !DIMENSION_PATTERN.test(dimension)) return new Map();
      this.hourCounters.set(dimension, (counters = new Map()));
    }
    return counters;
  }

  /**
   * Sends what is buffered (unsent batches first, with their ids). Resolves when Redis answered
   * (what it did not confirm stays buffered) or after flushTimeoutMs; never rejects. One flush at
   * a time: a call while one is in flight waits for that one (bounded the same way).
   */
  async flush(): Promise<void> {
    if (!this.flushing) {
      if (this.bufferedEntries === 0 && this.pending.length === 0) return;
      this.cutBatches();
      // The send may outlive the timeout (a slow Redis): no new flush starts until it settled.
      this.flushing = this.sendPending().finally(() => {
        this.flushing = undefined;
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.flushTimeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([this.flushing, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.counters.flushFailures++;
      this.options.onFlushError?.(new Error(`usage flush: no answer from Redis within ${this.flushTimeoutMs} ms; ${this.pendingKeys} counters stay buffered`));
    }
  }

  stats(): UsageRecorderStats {
    let bufferedCount = 0;
    for (const e of this.bufferedList()) bufferedCount += e.count;
    for (const b of this.pending) for (const e of b.entries) bufferedCount += e.count;
    return { bufferedKeys: this.bufferedEntries + this.pendingKeys, bufferedCount, ...this.counters };
  }

  /** Stops the timer, flushes once more (bounded by flushTimeoutMs), and closes its own connection. */
  async close(): Promise<UsageRecorderStats> {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.timer);
      await this.flush();
      if (this.ownsRedis) await this.redis.quit().catch(() => this.redis.disconnect());
    }
    return this.stats();
  }

  private bufferedList(): Entry[] {
    const out: Entry[] = [];
    for (const dimensions of this.buffer.values()) for (const tenants of dimensions.values()) for (const e of tenants.values()) out.push(e);
    return out;
  }

  private cutBatches(): void {
    const entries = this.bufferedList();
    this.buffer = new Map();
    this.bufferedEntries = 0;
    this.hourFrom = -Infinity; // the current hour's maps start afresh
    for (let i = 0; i < entries.length; i += this.batchKeys) {
      const slice = entries.slice(i, i + this.batchKeys);
      this.pending.push({ id: randomUUID(), entries: slice });
      this.pendingKeys += slice.length;
      for (const e of slice) {
        const k = entryKey(e.tenantId, e.dimension, e.hour);
        this.pendingIndex.set(k, (this.pendingIndex.get(k) ?? 0) + 1);
      }
    }
  }

  private async sendPending(): Promise<void> {
    // Not connected (starting, or reconnecting after an outage): wait for the connection rather
    // than fail at once; the caller's timeout bounds the wait, later flushes wait on this one.
    if (!(await this.connected())) {
      this.flushFailed(new Error(`usage flush: the Redis connection is ${this.redis.status}`));
      return;
    }
    const batches = [...this.pending];
    const pipeline = this.redis.pipeline();
    for (const batch of batches) {
      const keys = [`${this.prefix}:batch:${batch.id}`];
      const args: (string | number)[] = [BATCH_MARKER_TTL_SECONDS, this.ttlSeconds];
      for (const e of batch.entries) {
        keys.push(counterKey(e.tenantId, e.dimension, e.hour, this.prefix), hourIndexKey(e.hour, this.prefix));
        args.push(e.count, `${e.tenantId}:${e.dimension}`);
      }
      (pipeline as unknown as { tenancyUsageApply(n: number, ...a: (string | number)[]): void }).tenancyUsageApply(keys.length, ...keys, ...args);
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (e) {
      this.flushFailed(e);
      return;
    }
    const done = new Set<Batch>();
    let firstError: Error | undefined;
    batches.forEach((batch, i) => {
      const [error] = results?.[i] ?? [new Error('no reply')];
      if (error) firstError ??= error;
      else done.add(batch);
    });
    for (const batch of done) {
      this.pendingKeys -= batch.entries.length;
      for (const e of batch.entries) {
        this.counters.flushed += e.count;
        const k = entryKey(e.tenantId, e.dimension, e.hour);
        const left = (this.pendingIndex.get(k) ?? 1) - 1;
        if (left > 0) this.pendingIndex.set(k, left);
        else this.pendingIndex.delete(k);
      }
    }
    this.pending = this.pending.filter((b) => !done.has(b));
    if (firstError) this.flushFailed(firstError);
  }

  private async connected(): Promise<boolean> {
    const redis = this.redis;
    if (redis.status === 'ready') return true;
    if (redis.status === 'end') return false;
    await new Promise<void>((resolve) => {
      const done = () => {
        redis.off('ready', done);
        redis.off('end', done);
        resolve();
      };
      redis.once('ready', done);
      redis.once('end', done);
    });
    return (redis.status as string) === 'ready';
  }

  private flushFailed(e: unknown): void {
    this.counters.flushFailures++;
    this.options.onFlushError?.(e instanceof Error ? e : new Error(String(e)));
  }
}

const entryKey = (tenantId: string, dimension: string, hour: string) => `${tenantId}:${dimension}:${hour}`;

/** A connection for the recorder: commands fail at once while disconnected (no offline queue), reconnects in the background. */
export function recorderRedisOptions(): RedisOptions {
  return { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, lazyConnect: false, retryStrategy: (times) => Math.min(times * 200, 2000) };
}

function positiveInteger(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`UsageRecorder: ${name} ${n} must be a positive integer`);
  return n;
}
