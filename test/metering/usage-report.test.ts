/**
 * Usage end to end: API calls through the metering middleware on a real node:http server, counted
 * in a real Redis, reported hour by hour to the local Stripe-compatible server's meters, recorded in
 * a real control plane. The meter event summaries equal the traffic sent, exactly; a closed hour is
 * reported once however often the report runs; an open hour is not reported. Time is an injected
 * clock (the recorder's, the reporter's and the Stripe server's), never a sleep.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { registerUsageCommand } from '../../lib/cli/usage-command';
import { UsageRecorder } from '../../lib/metering/usage-recorder';
import { usageMiddleware } from '../../lib/metering/usage-middleware';
import { UsageReporter } from '../../lib/metering/usage-reporter';
import { MockClock } from '../../lib/testing/stripe-mock';
import { runCommand } from '../support/cli';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { stripeFor, testKey, useStripeMock } from '../support/stripe-mock';
import { meteringControlPlane, summedUsage, usageMeters } from './metering-fixture';

const HOUR = 3_600_000;
/** 2026-11-03 10:00 UTC; the test's clock moves from here. */
const T0 = Date.UTC(2026, 10, 3, 10, 0, 0);
let now = T0 + 7 * 60_000;
const clock = new MockClock(Math.floor(now / 1000));
const setNow = (ms: number) => {
  now = ms;
  clock.set(Math.floor(ms / 1000));
};

const pg = usePostgres();
const redisServer = useRedis();
const stripeServer = useStripeMock({ clock });

let cp: Awaited<ReturnType<typeof meteringControlPlane>>;
let redis: Redis;
let recorder: UsageRecorder;
let server: Server;
let port: number;
const key = testKey();

beforeAll(async () => {
  cp = await meteringControlPlane(pg());
  redis = new Redis(redisServer().url, { maxRetriesPerRequest: 1 });
  recorder = new UsageRecorder({ redis: redisServer().url, now: () => now, flushIntervalMs: 60_000 });
  const metering = usageMiddleware({ recorder, tenantOf: (req: IncomingMessage) => req.headers['x-tenant-id'] as string | undefined });
  server = createServer((req, res) => {
    metering(req, res);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}, 120_000);

afterAll(async () => {
  await recorder?.close();
  await new Promise((resolve) => server?.close(resolve));
  redis?.disconnect();
  await cp?.close();
});

function call(tenantId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api', headers: { 'x-tenant-id': tenantId } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function traffic(calls: Record<string, number>): Promise<void> {
  const statuses = await Promise.all(Object.entries(calls).flatMap(([tenantId, n]) => Array.from({ length: n }, () => call(tenantId))));
  expect(statuses.every((s) => s === 200)).toBe(true);
}

test('the meter event summaries equal the API calls sent, hour by hour; each closed hour is reported once', async () => {
  const stripe = stripeFor(stripeServer(), key);
  const meters = await usageMeters(stripe);
  const alpha = await cp.tenant(stripe, 'alpha');
  const bravo = await cp.tenant(stripe, 'bravo');
  const charlie = await cp.tenant(stripe, 'charlie');
  const nocustomer = await cp.tenant(stripe, 'delta', { customer: false });
  const reporter = new UsageReporter({ pool: cp.pool, redis, stripe, now: () => now, concurrency: 4 });

  // Hour 10:00: three tenants (and one without a Stripe customer).
  await traffic({ [alpha.id]: 7, [bravo.id]: 3, [charlie.id]: 12, [nocustomer.id]: 4 });
  // Hour 11:00.
  setNow(T0 + HOUR + 20 * 60_000);
  await traffic({ [alpha.id]: 5, [charlie.id]: 1 });
  await recorder.flush();
  expect(recorder.stats()).toMatchObject({ bufferedKeys: 0, dropped: 0, rejected: 0, flushed: 32 });

  // 11:20: hour 10 is closed, hour 11 is open.
  const first = await reporter.run();
  expect(first.dimensions.api_calls).toMatchObject({ reported: 3, value: 22, alreadyReported: 0, failed: 0 });
  expect(first.noCustomer).toEqual(['delta']);
  const sum = (t: { customer?: string }, from: number, to: number) => summedUsage(stripe, meters.api_calls.meterId, t.customer!, from / 1000, to / 1000);
  expect(await sum(alpha, T0, T0 + HOUR)).toBe(7);
  expect(await sum(bravo, T0, T0 + HOUR)).toBe(3);
  expect(await sum(charlie, T0, T0 + HOUR)).toBe(12);
  expect(await sum(alpha, T0 + HOUR, T0 + 2 * HOUR)).toBe(0);

  // Run again in the same hour: nothing is sent.
  const eventsBefore = stripeServer().meterEvents(key).length;
  const again = await reporter.run();
  expect(again.dimensions.api_calls).toMatchObject({ reported: 0, alreadyReported: 3 });
  expect(stripeServer().meterEvents(key).length).toBe(eventsBefore);

  // 12:10: hour 11 closes; a late count of hour 12 stays for later.
  setNow(T0 + 2 * HOUR + 10 * 60_000);
  await traffic({ [bravo.id]: 2 });
  await recorder.flush();
  const second = await reporter.run();
  expect(second.dimensions.api_calls).toMatchObject({ reported: 2, value: 6, alreadyReported: 3 });
  expect(await sum(alpha, T0, T0 + 3 * HOUR)).toBe(12);
  expect(await sum(bravo, T0, T0 + 3 * HOUR)).toBe(3);
  expect(await sum(charlie, T0, T0 + 3 * HOUR)).toBe(13);
  // Every accepted event is a distinct window: no identifier twice.
  const identifiers = stripeServer().meterEvents(key).map((e) => e.identifier as string);
  expect(new Set(identifiers).size).toBe(identifiers.length);
  expect(identifiers.sort()).toEqual([
    `${alpha.id}:api_calls:2026-11-03T10`, `${alpha.id}:api_calls:2026-11-03T11`,
    `${bravo.id}:api_calls:2026-11-03T10`,
    `${charlie.id}:api_calls:2026-11-03T10`, `${charlie.id}:api_calls:2026-11-03T11`,
  ].sort());

  // `tenancy usage show alpha`: the two reported hours, from the control plane.
  const shown = await runCommand(registerUsageCommand, ['usage', 'show', 'alpha', '--json'], { env: { TENANCY_CONTROL_PLANE_URL: cp.url } });
  expect(shown.code).toBe(0);
  const reports = JSON.parse(shown.stdout).reports as { identifier: string; value: string; status: string; dimension: string; stripeCustomerId: string }[];
  expect(reports.map((r) => [r.identifier, r.dimension, r.value, r.status, r.stripeCustomerId])).toEqual([
    [`${alpha.id}:api_calls:2026-11-03T11`, 'api_calls', '5', 'reported', alpha.customer],
    [`${alpha.id}:api_calls:2026-11-03T10`, 'api_calls', '7', 'reported', alpha.customer],
  ]);
  const human = await runCommand(registerUsageCommand, ['usage', 'show', 'alpha'], { env: { TENANCY_CONTROL_PLANE_URL: cp.url } });
  expect(human.stdout).toContain('2026-11-03T10:00 – 2026-11-03T11:00');
  const unknown = await runCommand(registerUsageCommand, ['usage', 'show', 'nobody-here'], { env: { TENANCY_CONTROL_PLANE_URL: cp.url } });
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no tenant nobody-here in the control plane');
}, 120_000);

test('a tenant id that is not a lowercase UUID never becomes a Redis key', async () => {
  const before = recorder.stats().rejected;
  await traffic({ 'tenancy:usage:hour:2026-11-03T10': 1, 'ABCDEF00-0000-4000-8000-000000000000': 1 });
  await recorder.flush();
  expect(recorder.stats().rejected).toBe(before + 2);
  expect(await redis.keys('*ABCDEF*')).toEqual([]);
}, 60_000);
