/**
 * Issue 12, item 4: the tenant lock cannot be stolen. Its holder is a random token per process;
 * nothing about a host name or a PID makes a lock look stale: two workers in separate PID
 * namespaces (containers with one fixed host name, both PID 1) must never break each other's
 * locks. A lock is taken over only once its TTL expired in Redis (a real redis-server).
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { LOCK_DEFAULTS, LockLostError, RedisLock } from '../../lib/onboarding/lock';
import { useRedis } from '../support/redis';

const redis = useRedis();
let client: Redis;

beforeAll(() => {
  client = new Redis(redis().port, '127.0.0.1', { maxRetriesPerRequest: null });
});
afterAll(() => {
  client.disconnect();
});

/** A pid that named a process a moment ago and names nobody now. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** Holders another process could have written: this host with a dead pid, this host and this very pid (another PID namespace), PID 1. */
const foreignHolders = () => [
  ['this host, a pid that is gone', `tenancy/${hostname()}/${deadPid()}/00000000-0000-4000-8000-00000000000a`],
  ['this host and this pid (a container in another PID namespace)', `tenancy/${hostname()}/${process.pid}/00000000-0000-4000-8000-00000000000b`],
  ['this host, pid 1', `tenancy/${hostname()}/1/00000000-0000-4000-8000-00000000000c`],
] as const;

test.each([0, 1, 2])("a lock held by another process is never broken, whatever its host name and pid look like (holder %i)", async (i) => {
  const [, token] = foreignHolders()[i];
  const key = `tenancy:lock:tenant:foreign-${i}`;
  await client.set(key, token, 'PX', 600_000);
  expect(await new RedisLock(client).tryAcquire(`tenant:foreign-${i}`)).toBeUndefined();
  expect(await client.get(key)).toBe(token);
  await client.del(key);
});

test('a lock is taken over only after its TTL expired in Redis', async () => {
  const key = 'tenancy:lock:tenant:expiring';
  const crashed = `tenancy/${hostname()}/${deadPid()}/00000000-0000-4000-8000-00000000000d`;
  await client.set(key, crashed, 'PX', 1_500);
  const lock = new RedisLock(client);
  expect(await lock.tryAcquire('tenant:expiring')).toBeUndefined();
  // Waits (polling) until Redis expired the crashed holder's key, then holds it.
  const handle = await lock.acquire('tenant:expiring', { waitMs: 60_000 });
  expect(await client.exists(key)).toBe(1);
  expect(await client.get(key)).toBe(handle.token);
  await handle.release();
});

test('two processes on one host, even with one pid, hold distinct random identities; neither breaks the other', async () => {
  const a = new RedisLock(client);
  const held = (await a.tryAcquire('tenant:twins'))!;
  // A forged twin: same host, same pid, different process token (what a container twin writes).
  const twin = held.token.replace(/\/[0-9a-f]{16}\//, '/0123456789abcdef/');
  expect(twin).not.toBe(held.token);
  await held.release();
  await client.set('tenancy:lock:tenant:twins', twin, 'PX', 600_000);
  expect(await a.tryAcquire('tenant:twins')).toBeUndefined();
  expect(await client.get('tenancy:lock:tenant:twins')).toBe(twin);
  await client.del('tenancy:lock:tenant:twins');
});

test('renewal is compare-and-set: a holder whose key was taken over learns it lost the lock and never extends or deletes the other holder\'s', async () => {
  const lock = new RedisLock(client, { ttlMs: 60_000, renewEveryMs: 3_600_000 });
  const a = (await lock.tryAcquire('tenant:cas'))!;
  await client.set('tenancy:lock:tenant:cas', 'tenancy/elsewhere/1/0123456789abcdef/x', 'PX', 5_000);
  expect(await a.renew()).toBe(false);
  await expect(a.assertHeld()).rejects.toBeInstanceOf(LockLostError);
  expect(await a.release()).toBe(false);
  expect(await client.get('tenancy:lock:tenant:cas')).toBe('tenancy/elsewhere/1/0123456789abcdef/x');
  expect(await client.pttl('tenancy:lock:tenant:cas')).toBeLessThanOrEqual(5_000);
  await client.del('tenancy:lock:tenant:cas');
});

test('the default TTL is short (a crashed worker\'s tenant is free again soon) and renewed every ttl/3', async () => {
  expect(LOCK_DEFAULTS.ttlMs).toBeGreaterThanOrEqual(30_000);
  expect(LOCK_DEFAULTS.ttlMs).toBeLessThanOrEqual(60_000);
  const handle = (await new RedisLock(client).tryAcquire('tenant:default-ttl'))!;
  expect(await client.pttl('tenancy:lock:tenant:default-ttl')).toBeLessThanOrEqual(LOCK_DEFAULTS.ttlMs);
  await handle.release();
});
