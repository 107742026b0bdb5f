import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { isStaleHere, lockHolder, LockLostError, RedisLock } from '../../lib/onboarding/lock';
import { useRedis } from '../support/redis';

/** The tenant lock on a real redis-server: SET NX PX, compare-and-delete, renewal, stale holders. */
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

test('SET NX PX: one holder; the token names host and pid; the key expires after the ttl', async () => {
  const lock = new RedisLock(client, { ttlMs: 600_000 });
  const a = await lock.tryAcquire('tenant:one');
  expect(a).toBeDefined();
  expect(await new RedisLock(other).tryAcquire('tenant:one')).toBeUndefined();
  expect(lockHolder(a!.token)).toEqual({ host: hostname(), pid: process.pid });
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

test('a lock held by a dead process of this host is stale: released and taken at once', async () => {
  const stale = `tenancy/${hostname()}/${deadPid()}/00000000-0000-4000-8000-000000000001`;
  expect(isStaleHere(stale)).toBe(true);
  await client.set('tenancy:lock:tenant:four', stale, 'PX', 600_000);
  const broken: string[] = [];
  const a = await new RedisLock(client).tryAcquire('tenant:four', (t) => broken.push(t));
  expect(a).toBeDefined();
  expect(broken).toEqual([stale]);
  await a!.release();
});

test("a lock of this pid that this process does not hold (an earlier life, e.g. a restarted container) is stale; one it holds is not", async () => {
  const held = (await new RedisLock(client).tryAcquire('tenant:five'))!;
  expect(isStaleHere(held.token)).toBe(false);
  expect(await new RedisLock(other).tryAcquire('tenant:five')).toBeUndefined();
  await held.release();
  const earlierLife = `tenancy/${hostname()}/${process.pid}/00000000-0000-4000-8000-000000000002`;
  expect(isStaleHere(earlierLife)).toBe(true);
});

test('a lock of a live process, or of another host, is never broken', async () => {
  const live = `tenancy/${hostname()}/${process.ppid}/00000000-0000-4000-8000-000000000003`;
  const elsewhere = `tenancy/some-other-host/${deadPid()}/00000000-0000-4000-8000-000000000004`;
  for (const token of [live, elsewhere]) {
    await client.set('tenancy:lock:tenant:six', token, 'PX', 600_000);
    expect(await new RedisLock(client).tryAcquire('tenant:six')).toBeUndefined();
    expect(await client.get('tenancy:lock:tenant:six')).toBe(token);
  }
  await client.del('tenancy:lock:tenant:six');
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
