/**
 * Storage usage against moto's S3: each tenant's bytes are the sum over ListObjectsV2 of its own
 * prefix, every page (a tenant with more than 1,000 objects), tenants listed concurrently; a
 * tenant whose slug starts another's (`acme`, `acme-corp`) never counts the other's objects.
 * Yesterday's value is reported once as a meter event (decimal GB) and recorded in the control plane.
 */
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import pLimit from 'p-limit';
import { S3StorageMeasure } from '../../lib/metering/storage-usage';
import { dayWindow } from '../../lib/metering/usage-keys';
import { UsageReporter } from '../../lib/metering/usage-reporter';
import { createBucket } from '../../lib/local/aws-api';
import { startMoto, type MotoServer } from '../../lib/local/moto';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { stripeFor, testKey, useStripeMock } from '../support/stripe-mock';
import { meteringControlPlane, summedUsage, usageMeters } from './metering-fixture';

const BUCKET = 'tenancy-usage-test';
const pg = usePostgres();
const redisServer = useRedis();
const stripeServer = useStripeMock();
let moto: MotoServer;
let s3: S3Client;
let cp: Awaited<ReturnType<typeof meteringControlPlane>>;
let listCalls = 0;

beforeAll(async () => {
  moto = await startMoto();
  s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  s3.middlewareStack.add((next, context) => (args) => {
    if (context.commandName === 'ListObjectsV2Command') listCalls++;
    return next(args);
  }, { step: 'initialize', name: 'countListCalls' });
  await createBucket(moto.endpoint, BUCKET);
  cp = await meteringControlPlane(pg());
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  await cp?.close();
});

async function put(keys: string[], size: number): Promise<void> {
  const limit = pLimit(16);
  const body = Buffer.alloc(size, 1);
  await Promise.all(keys.map((key) => limit(() => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body })))));
}

test('each tenant\'s prefix summed over every page, reported once for the closed day', async () => {
  const key = testKey();
  const stripe = stripeFor(stripeServer(), key);
  const meters = await usageMeters(stripe);
  const acme = await cp.tenant(stripe, 'acme');
  const corp = await cp.tenant(stripe, 'acme-corp');
  const empty = await cp.tenant(stripe, 'empty-one');

  await put(Array.from({ length: 1205 }, (_, i) => `tenants/acme/files/${String(i).padStart(5, '0')}`), 1000);
  await put(['tenants/acme-corp/a', 'tenants/acme-corp/b'], 2500);
  await put(['tenants/acmeish', 'other/acme/x'], 777);

  const measure = new S3StorageMeasure({ client: s3, bucket: BUCKET, prefix: 'tenants/{slug}/', concurrency: 4 });
  listCalls = 0;
  expect(await measure.bytes(acme)).toBe(1_205_000);
  expect(listCalls).toBe(2); // 1,000 keys, then 205

  const redis = new Redis(redisServer().url, { maxRetriesPerRequest: 1 });
  try {
    const reporter = new UsageReporter({ pool: cp.pool, redis, stripe, storage: measure });
    const run = await reporter.run();
    expect(run.dimensions.storage_gb).toMatchObject({ reported: 3, failed: 0 });
    const day = dayWindow(Date.now() - 300_000, -1);
    expect(run.windows.day).toBe(day.label);
    const sum = (customer: string) => summedUsage(stripe, meters.storage_gb.meterId, customer, day.start / 1000, day.end / 1000);
    expect(await sum(acme.customer!)).toBeCloseTo(0.001205, 12);
    expect(await sum(corp.customer!)).toBeCloseTo(0.000005, 12);
    expect(await sum(empty.customer!)).toBe(0);
    const events = stripeServer().meterEvents(key).filter((e) => e.event_name === 'tenancy.storage_gb');
    expect(events.map((e) => [e.identifier, e.payload.value]).sort()).toEqual([
      [`${acme.id}:storage_gb:${day.label}`, '0.001205'],
      [`${corp.id}:storage_gb:${day.label}`, '0.000005'],
      [`${empty.id}:storage_gb:${day.label}`, '0'],
    ].sort());

    // More objects later the same day: the closed day is not measured or sent again.
    await put(['tenants/acme-corp/c'], 9999);
    listCalls = 0;
    const again = await reporter.run();
    expect(again.dimensions.storage_gb).toMatchObject({ reported: 0, alreadyReported: 3 });
    expect(listCalls).toBe(0);
    expect(stripeServer().meterEvents(key).filter((e) => e.event_name === 'tenancy.storage_gb')).toHaveLength(3);
    const recorded = await cp.pool.query("SELECT value::text, status FROM tenancy.usage_reports WHERE tenant_id = $1 AND dimension = 'storage_gb'", [acme.id]);
    expect(recorded.rows).toEqual([{ value: '0.001205', status: 'reported' }]);
  } finally {
    redis.disconnect();
  }
  // The objects are really there (the listing, not the test, paged).
  const first = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'tenants/acme/' }));
  expect(first.IsTruncated).toBe(true);
}, 300_000);

test('a prefix without a tenant placeholder or trailing slash is refused', () => {
  expect(() => new S3StorageMeasure({ client: s3, bucket: BUCKET, prefix: 'tenants/{slug}' })).toThrow(/must end with "\/"/);
  expect(() => new S3StorageMeasure({ client: s3, bucket: BUCKET, prefix: 'tenants/' })).toThrow(/must contain \{tenant_id\} or \{slug\}/);
  expect(() => new S3StorageMeasure({ client: s3, bucket: BUCKET, prefix: 'tenants/{plan}/{slug}/' })).toThrow(/only \{tenant_id\} and \{slug\}/);
});
