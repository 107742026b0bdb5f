import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { lockHolder, LockLostError, PROCESS_LOCK_ID, RedisLock } from '../../lib/onboarding/lock';
import { useRedis } from '../support/redis';

/** The tenant lock on a real redis-server: SET NX PX, compare-and-delete, renewal; no holder is ever judged stale by its pid (test/reliability/unstealable-locks.test.ts). */
const redis = useRedis();
let client: Redis;
let other: Redis;

beforeAll(() => {
  client = new Redis(redis().port, '127.0.0.1', { maxRetriesPerRequest: null });
  other = new Redis(redis().port, '127.0.0.1', { maxRetriesPerRequest: null });
});
afterAll(() => {
  client.disconnect();
  other.disconnect();
});

/** Exit code of a process that ran and ended: its pid names nobody now. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

test('SET NX PX: one holder; the token names host, pid and this process\'s random id; the key expires after the ttl', async () => {
  const lock = new RedisLock(client, { ttlMs: 600_000 });
  const a = await lock.tryAcquire('tenant:one');
  expect(a).toBeDefined();
  expect(await new RedisLock(other).tryAcquire('tenant:one')).toBeUndefined();
  expect(lockHolder(a!.token)).toEqual({ host: hostname(), pid: process.pid, process: PROCESS_LOCK_ID });
  const ttl = await client.pttl('tenancy:lock:tenant:one');
  expect(ttl).toBeGreaterThan(590_000);
  expect(ttl).toBeLessThanOrEqual(600_000);
  expect(await a!.release()).toBe(true);
  expect(await client.exists('tenancy:lock:tenant:one')).toBe(0);
});

test("compare-and-delete: a holder whose lock was taken over never deletes the new holder's lock", async () => {
  const lock = new RedisLock(client);
  const a = (await lock.tryAcquire('tenant:two'))!;
  // a's lock expires (simulated) and b takes it.
  await client.del('tenancy:lock:tenant:two');
  const b = (await new RedisLock(other).tryAcquire('tenant:two'))!;
  expect(await a.release()).toBe(false);
  expect(await client.get('tenancy:lock:tenant:two')).toBe(b.token);
  await expect(a.assertHeld()).rejects.toBeInstanceOf(LockLostError);
  expect(await b.release()).toBe(true);
});

test('renewal extends the ttl while held, and reports a lost lock', async () => {
  const lock = new RedisLock(client, { ttlMs: 60_000, renewEveryMs: 3_600_000 });
  const a = (await lock.tryAcquire('tenant:three'))!;
  await client.pexpire('tenancy:lock:tenant:three', 1_000);
  expect(await a.renew()).toBe(true);
  expect(await client.pttl('tenancy:lock:tenant:three')).toBeGreaterThan(50_000);
  await client.set('tenancy:lock:tenant:three', 'someone-else');
  expect(await a.renew()).toBe(false);
  expect(a.lost).toBe(true);
  await a.release();
  expect(await client.get('tenancy:lock:tenant:three')).toBe('someone-else');
  await client.del('tenancy:lock:tenant:three');
});

test('a lock held by a dead process of this host, by an earlier life of this pid, by a live process or by another host is never broken: only its TTL frees it', async () => {
  const holders = [
    `tenancy/${hostname()}/${deadPid()}/0123456789abcdef/00000000-0000-4000-8000-000000000001`,
    `tenancy/${hostname()}/${process.pid}/0123456789abcdef/00000000-0000-4000-8000-000000000002`,
    `tenancy/${hostname()}/${process.ppid}/0123456789abcdef/00000000-0000-4000-8000-000000000003`,
    `tenancy/some-other-host/${deadPid()}/0123456789abcdef/00000000-0000-4000-8000-000000000004`,
  ];
  for (const token of holders) {
    await client.set('tenancy:lock:tenant:four', token, 'PX', 600_000);
    expect(await new RedisLock(client).tryAcquire('tenant:four')).toBeUndefined();
    expect(await client.get('tenancy:lock:tenant:four')).toBe(token);
  }
  await client.del('tenancy:lock:tenant:four');
});

test('withLock waits for a held lock and runs once it is released', async () => {
  const lock = new RedisLock(client);
  const first = (await lock.tryAcquire('registry-git'))!;
  const order: string[] = [];
  const waiting = lock.withLock('registry-git', { waitMs: 60_000 }, async () => {
    order.push('second');
  });
  order.push('first');
  await first.release();
  await waiting;
  expect(order).toEqual(['first', 'second']);
  expect(await client.exists('tenancy:lock:registry-git')).toBe(0);
});
