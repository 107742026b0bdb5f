/**
 * The usage recorder when Redis is down or hangs, with a real redis-server and a real node:http
 * server behind the metering middleware:
 *
 * - Redis down (shut down, connection refused) during traffic: every request is answered 200;
 *   counters already buffered keep counting; a record for a counter beyond maxBufferedKeys is
 *   dropped and counted. Once Redis is back every buffered count arrives: what is lost is
 *   exactly what stats().dropped says, and only records of counters beyond the bound (README).
 * - Redis hanging (SIGSTOP: connections open, no replies): requests are answered while it hangs,
 *   the flush gives up after its timeout and keeps its batch; after SIGCONT each count arrives
 *   once (the batch that was in flight is not applied twice).
 * - A batch Redis applied but whose reply was lost (the connection cut with the reply unread) is
 *   sent again with its id and applied once.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { counterKey, hourLabel } from '../../lib/metering/usage-keys';
import { recorderRedisOptions, UsageRecorder } from '../../lib/metering/usage-recorder';
import { usageMiddleware } from '../../lib/metering/usage-middleware';
import { useRedis } from '../support/redis';
import { until } from '../support/worker-process';

const NOW = Date.UTC(2026, 10, 3, 14, 30);
const HOUR_LABEL = hourLabel(NOW);
const redisServer = useRedis();

let server: Server;
let port: number;
let recorder: UsageRecorder | undefined;
let redis: Redis;

function start(options: { maxBufferedKeys: number; flushTimeoutMs?: number }): UsageRecorder {
  recorder = new UsageRecorder({ redis: redisServer().url, now: () => NOW, flushIntervalMs: 3_600_000, ...options });
  return recorder;
}

beforeAll(async () => {
  redis = new Redis(redisServer().url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  server = createServer((req, res) => {
    metering(req, res);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  redis?.disconnect();
});

afterEach(async () => {
  await recorder?.close();
  recorder = undefined;
});

const metering = (req: IncomingMessage, res: Parameters<ReturnType<typeof usageMiddleware>>[1]) =>
  usageMiddleware({ recorder: recorder!, tenantOf: (r: IncomingMessage) => r.headers['x-tenant-id'] as string })(req, res);

function call(tenantId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, headers: { 'x-tenant-id': tenantId } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function traffic(calls: [string, number][]): Promise<void> {
  const statuses = await Promise.all(calls.flatMap(([t, n]) => Array.from({ length: n }, () => call(t))));
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
}

/** Flushes until nothing is buffered (the recorder's own connection may still be connecting, or reconnecting). */
const flushAll = (rec: UsageRecorder, what: string) =>
  until(async () => {
    await rec.flush();
    return rec.stats().bufferedKeys === 0;
  }, what, 60_000, 100);

const counted = async (tenantId: string) => Number((await redis.get(counterKey(tenantId, 'api_calls', HOUR_LABEL))) ?? 0);

test('Redis down during traffic: requests answered, buffered counts arrive later, the loss is exactly the counted drops beyond the bound', async () => {
  const rec = start({ maxBufferedKeys: 4 });
  const tenants = Array.from({ length: 6 }, () => randomUUID());
  // Redis up: two tenants counted and flushed.
  await traffic([[tenants[0], 3], [tenants[1], 2]]);
  await flushAll(rec, 'the first flush');
  expect(await counted(tenants[0])).toBe(3);

  await redisServer().shutdown();
  try {
    // Four counters fit the bound (tenants 0-3, in arrival order); tenants 4 and 5 do not.
    await traffic([[tenants[0], 5], [tenants[1], 1]]);
    await traffic([[tenants[2], 4]]);
    await traffic([[tenants[3], 2]]);
    await traffic([[tenants[4], 7], [tenants[5], 6]]);
    await rec.flush(); // refused: everything stays buffered, as an unsent batch
    await traffic([[tenants[0], 1], [tenants[4], 1]]); // a held counter counts on; a new one is still refused
    expect(rec.stats()).toMatchObject({ bufferedKeys: 5, bufferedCount: 13, dropped: 14 });
    expect(rec.stats().flushFailures).toBeGreaterThanOrEqual(1);
  } finally {
    await redisServer().startAgain();
  }
  await flushAll(rec, 'the recorder to flush after Redis came back');
  const sent = [3 + 5 + 1, 2 + 1, 4, 2, 7 + 1, 6];
  const arrived = await Promise.all(tenants.map(counted));
  expect(arrived).toEqual([9, 3, 4, 2, 0, 0]);
  // What was lost is what the recorder counted as dropped, no more.
  const lost = sent.reduce((a, b) => a + b, 0) - arrived.reduce((a, b) => a + b, 0);
  expect(lost).toBe(rec.stats().dropped);
  expect(lost).toBe(14);
}, 120_000);

test('Redis hanging: requests answered meanwhile, the flush times out, each count arrives once after it answers again', async () => {
  const rec = start({ maxBufferedKeys: 1000, flushTimeoutMs: 200 });
  const tenant = randomUUID();
  await traffic([[tenant, 4]]);
  await flushAll(rec, 'the first flush');
  expect(await counted(tenant)).toBe(4);

  redisServer().freeze();
  try {
    await traffic([[tenant, 6]]);
    await rec.flush(); // in flight, unanswered: gives up after 200 ms, the batch stays
    await traffic([[tenant, 5]]); // answered while Redis hangs
    await rec.flush(); // the first is still in flight: waits for it (bounded), sends nothing new
    expect(rec.stats()).toMatchObject({ bufferedCount: 11, dropped: 0 });
  } finally {
    redisServer().thaw();
  }
  await flushAll(rec, 'the recorder to flush after Redis answered again');
  expect(await counted(tenant)).toBe(15);
}, 120_000);

test('a batch applied by Redis whose reply was lost is sent again and counted once', async () => {
  const client = new Redis(redisServer().url, recorderRedisOptions());
  client.on('error', () => undefined);
  const rec = (recorder = new UsageRecorder({ redis: client, now: () => NOW, flushIntervalMs: 3_600_000, flushTimeoutMs: 200 }));
  try {
    const tenant = randomUUID();
    await traffic([[tenant, 2]]);
    await flushAll(rec, 'the first flush');
    // The recorder's connection stops reading: Redis runs the batch, its reply is never read.
    (client as unknown as { stream: NodeJS.ReadableStream }).stream.pause();
    await traffic([[tenant, 7]]);
    await rec.flush(); // times out
    await until(async () => (await counted(tenant)) === 9, 'Redis to run the batch', 60_000, 50);
    expect(rec.stats()).toMatchObject({ bufferedKeys: 1, bufferedCount: 7 });
    // The connection is cut with the reply unread: the batch counts as unsent and goes again.
    client.disconnect(true);
    await flushAll(rec, 'the batch sent again after reconnecting');
    expect(await counted(tenant)).toBe(9);
  } finally {
    await rec.close();
    recorder = undefined;
    client.disconnect();
  }
}, 120_000);
