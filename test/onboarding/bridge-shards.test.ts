import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { builtinHooks } from '../../lib/hooks/builtin-hooks';
import { readDeployOutputs } from '../../lib/hooks/deploy-outputs';
import { runPostApply } from '../../lib/hooks/post-apply';
import { listTenantTargets } from '../../lib/migrate/control-plane';
import { submitOffboarding } from '../../lib/offboarding/submit';
import { bridgeShardMoves } from '../../lib/onboarding/bridge-placement';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import { OnboardingRequestError, type OnboardingRequest } from '../../lib/onboarding/request';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { TenantRouter } from '../../lib/runtime/router';
import { ARN, MASTERS, useLifecycleTestbed } from '../support/lifecycle';

/**
 * Bridge shards in the lifecycle, on real PostgreSQL: shard "b" is a second database on the
 * testbed's server standing in for a second Aurora cluster (its own platform outputs,
 * bridge_shard_b_*). Placement is decided once at submission, under the control plane's lock,
 * recorded in the registry entry and the control plane; the hooks, the migration runner, the
 * router and offboarding follow it.
 */
const bed = useLifecycleTestbed();
let services: LifecycleServices;
/** A queue that accepts nothing: jobs are run directly by the test (runLifecycleJob). */
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');

const DEFAULT_AND_US = '[{ id: default, capacity: 2 }, { id: usdata, capacity: 1, residency: [us] }]';
const WITH_B = '[{ id: default, capacity: 2 }, { id: usdata, capacity: 1, residency: [us] }, { id: b, capacity: 2 }]';
let platformYaml: string;
/** platform.yaml of the testbed with these bridge shards in us-east-1. */
function useShards(shards: string, placement?: 'least-full' | 'fill-first'): void {
  const text = platformYaml.replace(/^(    oidcProviderArn: .*oidc\.eks\.us-east-1\..*)$/m, `$1\n    bridgeShards: ${shards}${placement ? `\n    bridgePlacement: ${placement}` : ''}`);
  if (text === platformYaml) throw new Error('test bug: the us-east-1 region of platform.yaml was not found');
  writeFileSync(join(bed().root, 'platform.yaml'), text);
}

const request = (n: string, extra: Partial<OnboardingRequest> = {}): OnboardingRequest => ({
  email: `ops@${n}.example`, company: `Shard ${n}`, plan: 'pro', model: 'bridge', region: 'us-east-1', slug: `shard-${n}`, paymentMethod: 'pm_card_visa', ...extra,
});
const shardOf = (s: SubmittedOnboarding) => (s.job.request.entry as { placement?: { bridgeShard?: string } }).placement?.bridgeShard;
const recordedShard = async (id: string) => (await cp("SELECT placement->>'bridge_shard' AS s FROM tenancy.tenants WHERE id = $1", [id]))[0]?.s;
const counts = async () => (await cp(`SELECT (SELECT count(*) FROM tenancy.tenants)::int AS tenants, (SELECT count(*) FROM tenancy.lifecycle_jobs)::int AS jobs,
  (SELECT count(*) FROM tenancy.tenant_domains)::int AS domains, (SELECT count(*) FROM tenancy.audit_log)::int AS audit`))[0];

async function expectFull(req: OnboardingRequest, message: RegExp): Promise<void> {
  const before = await counts();
  const error = await submitOnboarding(services, noQueue, req).then(() => undefined, (e) => e);
  expect(error).toBeInstanceOf(OnboardingRequestError);
  expect(error.message).toMatch(message);
  expect(await counts()).toEqual(before); // nothing half-written
}

beforeAll(async () => {
  platformYaml = readFileSync(join(bed().root, 'platform.yaml'), 'utf8');
  for (const db of ['tenants_b', 'tenants_usdata']) await bed().pg.createDatabase(db, { owner: MASTERS.bridge.user });
  // The platform outputs of both shards (same server, another database: "another cluster").
  const outputs = JSON.parse(readFileSync(bed().platformOutputsFile, 'utf8'));
  const home = outputs['platform-us-east-1'];
  for (const [id, db] of [['b', 'tenants_b'], ['usdata', 'tenants_usdata']]) {
    Object.assign(home, {
      [`bridge_shard_${id}_cluster_identifier`]: `tenancy-bridge-${id}`, [`bridge_shard_${id}_endpoint`]: home.bridge_endpoint, [`bridge_shard_${id}_port`]: home.bridge_port,
      [`bridge_shard_${id}_database`]: db, [`bridge_shard_${id}_master_secret_arn`]: ARN('rds!cluster-bridge'),
    });
  }
  writeFileSync(bed().platformOutputsFile, JSON.stringify(outputs));
  useShards(DEFAULT_AND_US);
  services = bed().track(await bed().open(), (s) => s.close());
});

describe('placement across two bridge shards of capacity 2', () => {
  const placed: Record<string, SubmittedOnboarding> = {};

  test('tenants fill the first shard; a tenant whose residency the free shard does not take is refused, nothing written', async () => {
    placed.one = await submitOnboarding(services, noQueue, request('one'));
    placed.two = await submitOnboarding(services, noQueue, request('two'));
    expect([shardOf(placed.one), shardOf(placed.two)]).toEqual(['default', 'default']);
    expect(await recordedShard(placed.one.tenantId)).toBe('default');
    // usdata is empty but takes only residency "us": a tenant without one is not placed there.
    await expectFull(request('three'), /every bridge shard of region us-east-1 for data residency "none" is full \(default 2\/2\)/);
    // A "us" tenant is: the least-full shard that takes its residency.
    placed.us = await submitOnboarding(services, noQueue, request('us', { dataResidency: 'us' }));
    expect(shardOf(placed.us)).toBe('usdata');
    await expectFull(request('us2', { dataResidency: 'us' }), /every bridge shard of region us-east-1 for data residency "us" is full \(default 2\/2, usdata 1\/1\)/);
  });

  test('with a second shard listed, the next tenants go to it, then the fleet is full', async () => {
    useShards(WITH_B);
    placed.three = await submitOnboarding(services, noQueue, request('three'));
    expect(shardOf(placed.three)).toBe('b');
    expect(await recordedShard(placed.three.tenantId)).toBe('b');
    placed.four = await submitOnboarding(services, noQueue, request('four'));
    expect(shardOf(placed.four)).toBe('b');
    await expectFull(request('five'), /every bridge shard of region us-east-1 for data residency "none" is full \(default 2\/2, b 2\/2\)/);
  });

  test('a request cannot choose its shard: placement is no request field', async () => {
    await expectFull({ ...request('chooser'), placement: { bridgeShard: 'b' } } as OnboardingRequest, /placement: unknown field/);
  });

  test('placement is stable: a resubmission returns the same tenant on the same shard', async () => {
    for (const [key, n] of [['one', 'one'], ['three', 'three']] as const) {
      const again = await submitOnboarding(services, noQueue, request(n));
      expect(again.created).toBe(false);
      expect(again.tenantId).toBe(placed[key].tenantId);
      expect(shardOf(again)).toBe(shardOf(placed[key]));
    }
  });

  test('concurrent submissions never overfill a shard: one place, five requests, one placed', async () => {
    useShards('[{ id: default, capacity: 2 }, { id: usdata, capacity: 1, residency: [us] }, { id: b, capacity: 3 }]');
    const before = (await counts()).tenants;
    const results = await Promise.allSettled(['c1', 'c2', 'c3', 'c4', 'c5'].map((n) => submitOnboarding(services, noQueue, request(n))));
    const ok = results.filter((r): r is PromiseFulfilledResult<SubmittedOnboarding> => r.status === 'fulfilled');
    expect(ok.map((r) => shardOf(r.value))).toEqual(['b']);
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason.message)).toMatch(/is full \(default 2\/2, b 3\/3\)/);
    expect((await counts()).tenants).toBe(before + 1);
    const fill = await cp("SELECT coalesce(placement->>'bridge_shard', 'default') AS shard, count(*)::int AS n FROM tenancy.tenants WHERE model = 'bridge' GROUP BY 1 ORDER BY 1");
    expect(fill).toEqual([{ shard: 'b', n: 3 }, { shard: 'default', n: 2 }, { shard: 'usdata', n: 1 }]);
  });
});

describe('a tenant on shard b, onboarded end to end', () => {
  let tenant: SubmittedOnboarding;
  const entryFile = () => join(bed().root, 'tenants', `${tenant.slug}.yaml`);

  beforeAll(async () => {
    tenant = await submitOnboarding(services, noQueue, request('three'));
    expect(shardOf(tenant)).toBe('b');
    const result = await runLifecycleJob(services, tenant.job.id);
    if (result.outcome !== 'succeeded') throw new Error(`onboarding failed: ${(await services.store.jobById(tenant.job.id))?.lastError}`);
  }, 300_000);

  test('its registry entry records the shard', () => {
    expect(parse(readFileSync(entryFile(), 'utf8'))).toMatchObject({ slug: 'shard-three', placement: { bridgeShard: 'b' } });
  });

  test('its schema is on shard b, not on the default shard; the control plane places it there', async () => {
    const schemaIn = async (db: string) => (await bed().pg.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_shard_three'", [], db)).length;
    expect(await schemaIn('tenants_b')).toBe(1);
    expect(await schemaIn(MASTERS.bridge.database)).toBe(0);
    const record = await services.controlPlane.tenantById(tenant.tenantId);
    expect(record).toMatchObject({ status: 'active', placement: { host: bed().pg.host, port: bed().pg.port, database: 'tenants_b', schema: 'tenant_shard_three', bridge_shard: 'b' } });
  });

  test('the migration runner targets its shard', async () => {
    const [target] = await listTenantTargets({ connectionString: bed().controlPlaneUrl }, { slugs: ['shard-three'] });
    expect(target.connection).toMatchObject({ host: bed().pg.host, port: bed().pg.port, database: 'tenants_b' });
  });

  test('the router places it on its shard', async () => {
    const router = new TenantRouter({ controlPlane: services.pool, secrets: { resolve: async () => { throw new Error('not used'); } }, baseDomain: 'saas.example.com', connectionBudget: 1, tenantCacheTtlMs: 0, statusListener: false });
    try {
      const routed = await router.resolve({ host: 'shard-three.saas.example.com' });
      expect(routed.placement).toMatchObject({ host: bed().pg.host, database: 'tenants_b', schema: 'tenant_shard_three' });
    } finally {
      await router.close();
    }
  });

  test('a registry edit that moves it to another shard is refused by the hooks, and nothing is recorded', async () => {
    const original = readFileSync(entryFile(), 'utf8');
    const deployed = (await services.store.steps(tenant.job.id)).find((s) => s.step === 'deploy')!.result.outputs as Record<string, unknown>;
    // The outputs of its stack synthesized from the edited entry: the default shard.
    const moved: Record<string, unknown> = { ...deployed, cluster_identifier: 'tenancy-bridge', db_name: 'tenants' };
    delete moved.bridge_shard;
    const file = join(bed().dir, 'moved-outputs.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(bed().platformOutputsFile, 'utf8')), [`tenant-${tenant.slug}`]: moved }));
    const before = await services.controlPlane.tenantById(tenant.tenantId);
    const outputs = readDeployOutputs(file);
    const [register] = await runPostApply({ outputs, hooks: builtinHooks(services.migrations).filter((h) => h.name === 'register'), controlPlane: services.controlPlane, databases: services.databases });
    expect(register).toMatchObject({ status: 'failed', error: expect.stringMatching(/registry entry puts it on bridge shard "default", but its data is on bridge shard "b".*Restore placement\.bridgeShard: b/) });
    expect(await services.controlPlane.tenantById(tenant.tenantId)).toEqual(before);
    expect(readFileSync(entryFile(), 'utf8')).toBe(original);
  });

  test('a deploy pipeline finds the same edit before it applies anything', async () => {
    const { tenants } = await services.registry.load();
    expect(await bridgeShardMoves(services.pool, tenants)).toEqual([]);
    const edited = tenants.map((t) => (t.slug === tenant.slug ? { ...t, placement: undefined } : t));
    expect(await bridgeShardMoves(services.pool, edited)).toEqual([
      'tenant shard-three: placement.bridgeShard is "default", but its data is on bridge shard "b" (control plane); a placement is never changed by an edit: restore placement.bridgeShard: b',
    ]);
  });

  test('offboarding erases it on its shard', async () => {
    const submitted = await submitOffboarding(services, noQueue, tenant.slug, { reason: 'test' });
    expect(await runLifecycleJob(services, submitted.job.id)).toMatchObject({ outcome: 'succeeded' });
    const schemaIn = async (db: string) => (await bed().pg.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_shard_three'", [], db)).length;
    expect(await schemaIn('tenants_b')).toBe(0);
    const erase = (await services.store.steps(submitted.job.id)).find((s) => s.step === 'erase-schema')!;
    expect(erase.result).toMatchObject({ schema: 'tenant_shard_three' });
    expect(existsSync(entryFile())).toBe(false);
    expect(readdirSync(join(bed().root, 'tenants', 'offboarded'))).toContain(`${tenant.slug}.${tenant.tenantId}.yaml`);
  }, 300_000);
});

describe('fill-first placement (regions.<r>.bridgePlacement) across two more shards of capacity 2', () => {
  // Two new, empty shards listed first; the earlier ones stay listed (their tenants keep them).
  const SHARDS = '[{ id: c, capacity: 2 }, { id: d, capacity: 2 }, { id: default, capacity: 2 }, { id: usdata, capacity: 1, residency: [us] }, { id: b, capacity: 3 }]';
  const placed: SubmittedOnboarding[] = [];

  test('tenants fill the first shard, then the second', async () => {
    useShards(SHARDS, 'fill-first');
    for (const n of ['f1', 'f2', 'f3', 'f4']) placed.push(await submitOnboarding(services, noQueue, request(n)));
    expect(placed.map(shardOf)).toEqual(['c', 'c', 'd', 'd']);
    expect(await Promise.all(placed.map((p) => recordedShard(p.tenantId)))).toEqual(['c', 'c', 'd', 'd']);
  });

  test('placement is stable across reruns: resubmissions, and a switch back to least-full, move nobody', async () => {
    useShards(SHARDS, 'least-full');
    for (const [i, n] of ['f1', 'f2', 'f3', 'f4'].entries()) {
      const again = await submitOnboarding(services, noQueue, request(n));
      expect(again.created).toBe(false);
      expect(shardOf(again)).toBe(shardOf(placed[i]));
    }
    const { tenants } = await services.registry.load();
    expect(await bridgeShardMoves(services.pool, tenants)).toEqual([]);
  });

  test('least-full (the default) spreads instead: of two empty shards, each takes one of the next two tenants', async () => {
    useShards(`[{ id: e, capacity: 4 }, { id: f, capacity: 4 }, ${SHARDS.slice(1)}`);
    const next = [await submitOnboarding(services, noQueue, request('s1')), await submitOnboarding(services, noQueue, request('s2'))];
    expect(next.map(shardOf)).toEqual(['e', 'f']);
  });
});
