/**
 * A usage report killed mid-run (kill -9 of the `tenancy usage report` child process, while one of
 * its meter events is held in flight by the Stripe server and others are done) and run again
 * reports nothing twice: windows the control plane recorded as reported are not sent again, and
 * windows sent but not yet recorded (the held one arrives at Stripe after the kill) are sent again
 * with their identifier and value, which Stripe refuses as duplicates. In the end every window is
 * at Stripe exactly once and the meter summaries equal the usage counted, exactly.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { registerUsageCommand } from '../../lib/cli/usage-command';
import { UsageRecorder } from '../../lib/metering/usage-recorder';
import { runCommand } from '../support/cli';
import { repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { stripeFor, testKey, useStripeMock } from '../support/stripe-mock';
import { CLI, until } from '../support/worker-process';
import { meteringControlPlane, migrationsThroughUsage, summedUsage, usageMeters } from './metering-fixture';

const HOUR = 3_600_000;
const key = testKey();
/** The 13th meter event is held in flight until the test lets it go (after the kill). */
const HOLD_AT = 13;
let meterEventPosts = 0;
let release!: () => void;
const released = new Promise<void>((resolve) => (release = resolve));
let reachedHold!: (identifier: string) => void;
const held = new Promise<string>((resolve) => (reachedHold = resolve));

const pg = usePostgres();
const redisServer = useRedis();
const stripeServer = useStripeMock({
  beforeExecute: (r) => {
    if (r.method !== 'POST' || r.path !== '/v1/billing/meter_events') return undefined;
    if (++meterEventPosts !== HOLD_AT) return undefined;
    reachedHold(String(r.params.identifier));
    return released;
  },
});

let cp: Awaited<ReturnType<typeof meteringControlPlane>>;
let migrations: ReturnType<typeof migrationsThroughUsage>;
let root: string;

beforeAll(async () => {
  for (const file of [CLI, join(repoRoot(), 'dist', 'lib', 'metering', 'usage-reporter.js')]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -p tsconfig.json\` (npm test does) before this test`);
  }
  cp = await meteringControlPlane(pg());
  migrations = migrationsThroughUsage();
  root = mkdtempSync(join(tmpdir(), 'tenancy-metering-root-'));
}, 120_000);

afterAll(async () => {
  release?.();
  await cp?.close();
  migrations?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('kill -9 of a running report, then a rerun: every closed hour at Stripe once, summaries exact', async () => {
  const stripe = stripeFor(stripeServer(), key);
  const meters = await usageMeters(stripe);
  const tenants = [await cp.tenant(stripe, 'echo'), await cp.tenant(stripe, 'foxtrot'), await cp.tenant(stripe, 'golf')];

  // 8 closed hours (ten to three hours ago, real time: the child reports with the real clock) × 3 tenants.
  const base = (Math.floor(Date.now() / HOUR) - 10) * HOUR;
  let now = base;
  const recorder = new UsageRecorder({ redis: redisServer().url, now: () => now, flushIntervalMs: 60_000 });
  const expected = new Map<string, number>();
  for (let hour = 0; hour < 8; hour++) {
    now = base + hour * HOUR + 60_000;
    tenants.forEach((t, i) => {
      const n = (hour + 1) * (i + 2);
      for (let k = 0; k < n; k++) recorder.record(t.id);
      expected.set(t.id, (expected.get(t.id) ?? 0) + n);
    });
  }
  expect(await recorder.close()).toMatchObject({ bufferedKeys: 0, dropped: 0 });

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TENANCY_ROOT: root,
    TENANCY_CONTROL_PLANE_URL: cp.url,
    TENANCY_REDIS_URL: redisServer().url,
    TENANCY_MIGRATIONS: migrations.dir,
    TENANCY_ACTOR: 'metering-crash-test',
    STRIPE_SECRET_KEY: key,
    TENANCY_STRIPE_API_URL: stripeServer().url,
    TENANCY_USAGE_SEATS: 'off',
    // Five windows per control-plane write, all five in flight: the held 13th is in the third batch.
    TENANCY_USAGE_BATCH: '5',
    TENANCY_USAGE_CONCURRENCY: '5',
  };
  const child = spawn(process.execPath, [CLI, 'usage', 'report', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c) => (output += String(c)));
  child.stderr!.on('data', (c) => (output += String(c)));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const heldIdentifier = await Promise.race([held, exited.then((code) => Promise.reject(new Error(`the report exited (${code}) before its 13th meter event: ${output}`)))]);
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');

  // Mid-run state: the first two batches recorded reported, the rest not.
  const statuses = await cp.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tenancy.usage_reports GROUP BY status ORDER BY status');
  expect(statuses.rows).toEqual([{ status: 'pending', n: 14 }, { status: 'reported', n: 10 }]);
  const reportedBefore = (await cp.pool.query<{ identifier: string }>("SELECT identifier FROM tenancy.usage_reports WHERE status = 'reported'")).rows.map((r) => r.identifier);

  // The held event reaches Stripe after its sender died: sent, never recorded as reported.
  release();
  await until(async () => stripeServer().meterEvents(key).some((e) => e.identifier === heldIdentifier), 'the held meter event to be accepted', 60_000, 50);
  const acceptedBefore = stripeServer().meterEvents(key).length;
  expect(acceptedBefore).toBeGreaterThanOrEqual(11);

  // The rerun.
  const requestsBefore = stripeServer().requests.length;
  const rerun = await runCommand(registerUsageCommand, ['usage', 'report', '--json'], { env });
  expect(rerun.stderr).toBe('');
  expect(rerun.code).toBe(0);
  const summary = JSON.parse(rerun.stdout);
  expect(summary.dimensions.api_calls.reported).toBe(24 - acceptedBefore);
  expect(summary.dimensions.api_calls.reported + summary.dimensions.api_calls.alreadyReported).toBe(24);
  const resent = stripeServer().requests.slice(requestsBefore).filter((r) => r.path === '/v1/billing/meter_events').map((r) => String(r.params.identifier));
  expect(resent.filter((id) => reportedBefore.includes(id))).toEqual([]);
  expect(resent).toContain(heldIdentifier);

  // Every window at Stripe once; the summaries are the usage counted.
  const accepted = stripeServer().meterEvents(key).map((e) => String(e.identifier));
  expect(accepted.length).toBe(24);
  expect(new Set(accepted).size).toBe(24);
  for (const t of tenants) {
    expect(await summedUsage(stripe, meters.api_calls.meterId, t.customer!, base / 1000, (base + 8 * HOUR) / 1000)).toBe(expected.get(t.id));
  }
  const all = await cp.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tenancy.usage_reports GROUP BY status');
  expect(all.rows).toEqual([{ status: 'reported', n: 24 }]);

  // A third run sends nothing.
  const eventsBefore = stripeServer().requests.filter((r) => r.path === '/v1/billing/meter_events').length;
  const third = await runCommand(registerUsageCommand, ['usage', 'report', '--json'], { env });
  expect(third.code).toBe(0);
  expect(JSON.parse(third.stdout).dimensions.api_calls).toMatchObject({ reported: 0, alreadyReported: 24 });
  expect(stripeServer().requests.filter((r) => r.path === '/v1/billing/meter_events').length).toBe(eventsBefore);
}, 240_000);
