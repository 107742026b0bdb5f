// Bridge shards in platform.yaml and the registry: the shards' schema, the rules a tenant's
// placement must follow, the least-full choice and the fill `npm start` prints.
import { BridgeFleetFullError, bridgeShardFillLines, chooseBridgeShard } from '../../lib/registry/bridge-shards';
import type { Registry } from '../../lib/registry/load-registry';
import { estimateMonthlyCost } from '../../lib/pricing/estimate-cost';
import { BETA_ID, GAMMA_ID, PLATFORM_YAML, expectAccepted, expectRejected, otherTenantYaml, tenantYaml } from './helpers';

/** The sample platform.yaml with these bridge shards in us-east-1. */
const withShards = (shards: string): string => {
  const text = PLATFORM_YAML.replace(/^(    oidcProviderArn: .*oidc\.eks\.us-east-1\..*)$/m, `$1\n    bridgeShards: ${shards}`);
  if (text === PLATFORM_YAML) throw new Error('test bug: the us-east-1 region of platform.yaml was not found');
  return text;
};
const SHARDS = withShards('[{ id: default, capacity: 2 }, { id: b, capacity: 2 }, { id: us-only, capacity: 4, residency: [us] }]');

describe('platform.yaml bridgeShards', () => {
  test('shards with an id, a capacity and optionally residencies are accepted; without any, the region has one unlimited "default" shard', () => {
    const registry = expectAccepted({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml() } });
    expect(registry.platform.regions['us-east-1'].bridgeShards).toEqual([{ id: 'default', capacity: 2 }, { id: 'b', capacity: 2 }, { id: 'us-only', capacity: 4, residency: ['us'] }]);
    expect(expectAccepted({ tenants: { 'acme.yaml': tenantYaml() } }).platform.regions['us-east-1'].bridgeShards).toBeUndefined();
  });

  test.each([
    ['a shard listed twice', '[{ id: b, capacity: 2 }, { id: b, capacity: 3 }]', 'regions.us-east-1.bridgeShards[1].id', /bridge shard "b" is listed twice/],
    ['an id that is no DNS label', '[{ id: B_2, capacity: 2 }]', 'regions.us-east-1.bridgeShards[0].id', /must be a shard id/],
    ['a capacity of 0', '[{ id: b, capacity: 0 }]', 'regions.us-east-1.bridgeShards[0].capacity', /expected number to be >=1/i],
    ['no capacity', '[{ id: b }]', 'regions.us-east-1.bridgeShards[0].capacity', /^required: Bridge tenants \(schemas\) the shard takes/],
    ['an unknown residency', '[{ id: b, capacity: 2, residency: [mars] }]', 'regions.us-east-1.bridgeShards[0].residency[0]', /invalid option/i],
  ])('%s is refused, naming the field', (_name, shards, path, message) => {
    expectRejected({ platform: withShards(shards), tenants: {} }, [{ file: 'platform.yaml', path, message }], false);
  });
});

describe('a bridge tenant\'s placement', () => {
  test('on a listed shard, or without one on a listed "default" shard, is accepted', () => {
    const registry = expectAccepted({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml({}, 'placement: { bridgeShard: b }\n'), 'beta.yaml': otherTenantYaml('beta', BETA_ID) } });
    expect(registry.tenants.map((t) => [t.slug, t.placement])).toEqual([['acme', { bridgeShard: 'b' }], ['beta', undefined]]);
  });

  test('on a shard platform.yaml does not list is refused (its schemas would lose their cluster)', () => {
    expectRejected({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml({}, 'placement: { bridgeShard: c }\n') } }, [
      { file: 'tenants/acme.yaml', path: 'placement.bridgeShard', message: /bridge shard "c" is not a shard of us-east-1 in platform\.yaml \(regions\.us-east-1\.bridgeShards: default, b, us-only\)/ },
    ]);
  });

  test('without a placement, when platform.yaml no longer lists "default", is refused', () => {
    expectRejected({ platform: withShards('[{ id: b, capacity: 2 }]'), tenants: { 'acme.yaml': tenantYaml() } }, [
      { file: 'tenants/acme.yaml', path: 'model', message: /bridge shard "default" \(no placement: the default shard\) is not a shard of us-east-1.*keep it listed while it holds tenants/ },
    ]);
  });

  test('on a shard that does not take its residency is refused', () => {
    expectRejected({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml({}, 'placement: { bridgeShard: us-only }\n') } }, [
      { file: 'tenants/acme.yaml', path: 'placement.bridgeShard', message: /bridge shard "us-only" of us-east-1 does not take data residency "none" \(it takes us\)/ },
    ]);
  });

  test('on a pool or silo tenant is refused; a malformed shard id too', () => {
    expectRejected({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml({ model: 'pool', plan: 'starter' }, 'placement: { bridgeShard: b }\n'), 'beta.yaml': otherTenantYaml('beta', BETA_ID, {}, 'placement: { bridgeShard: "B!" }\n') } }, [
      { file: 'tenants/acme.yaml', path: 'placement', message: /only bridge tenants have a placement \(this tenant's model is pool\)/ },
      { file: 'tenants/beta.yaml', path: 'placement.bridgeShard', message: /must be a shard id/ },
    ]);
  });
});

describe('choosing a shard', () => {
  const registry = (): Registry => expectAccepted({ platform: SHARDS, tenants: { 'acme.yaml': tenantYaml(), 'gamma.yaml': otherTenantYaml('gamma', GAMMA_ID, {}, 'placement: { bridgeShard: b }\n') } });
  const none = { region: 'us-east-1', dataResidency: 'none' as const };

  test('the least-full matching shard by fill ratio; on a tie, the first listed', () => {
    const platform = registry().platform;
    expect(chooseBridgeShard(platform, none, new Map()).id).toBe('default');
    expect(chooseBridgeShard(platform, none, new Map([['default', 1]])).id).toBe('b');
    expect(chooseBridgeShard(platform, none, new Map([['default', 1], ['b', 1]])).id).toBe('default');
    // A "us" tenant may also go to us-only (1/4 is less full than 1/2).
    expect(chooseBridgeShard(platform, { ...none, dataResidency: 'us' }, new Map([['default', 1], ['b', 1], ['us-only', 1]])).id).toBe('us-only');
  });

  test('with bridgePlacement fill-first: the first listed shard with room, so shards fill one after the other', () => {
    const platform = expectAccepted({ platform: SHARDS.replace(/^(    bridgeShards: .*)$/m, '$1\n    bridgePlacement: fill-first'), tenants: { 'acme.yaml': tenantYaml() } }).platform;
    expect(platform.regions['us-east-1'].bridgePlacement).toBe('fill-first');
    const order: string[] = [];
    const fill = new Map<string, number>();
    for (let i = 0; i < 4; i++) {
      const id = chooseBridgeShard(platform, none, fill).id;
      order.push(id);
      fill.set(id, (fill.get(id) ?? 0) + 1);
    }
    expect(order).toEqual(['default', 'default', 'b', 'b']);
    expect(registry().platform.regions['us-east-1'].bridgePlacement).toBe('least-full'); // the default
  });

  test('a bridgePlacement that is not a strategy is refused, naming the field', () => {
    expectRejected({ platform: SHARDS.replace(/^(    bridgeShards: .*)$/m, '$1\n    bridgePlacement: random'), tenants: { 'acme.yaml': tenantYaml() } }, [
      { file: 'platform.yaml', path: 'regions.us-east-1.bridgePlacement', message: /least-full|fill-first/ },
    ]);
  });

  test('every matching shard full: an error naming region, residency and each shard\'s fill', () => {
    const full = () => chooseBridgeShard(registry().platform, none, new Map([['default', 2], ['b', 2]]));
    expect(full).toThrow(BridgeFleetFullError);
    expect(full).toThrow('every bridge shard of region us-east-1 for data residency "none" is full (default 2/2, b 2/2): add a shard to platform.yaml regions.us-east-1.bridgeShards (and deploy platform-us-east-1) or raise a capacity');
  });

  test('npm start prints each shard\'s fill from the registry', () => {
    expect(bridgeShardFillLines(registry())).toEqual([
      'bridge shard us-east-1/default: 1/2 tenants (50%)',
      'bridge shard us-east-1/b: 1/2 tenants (50%)',
      'bridge shard us-east-1/us-only: 0/4 tenants (0%, residency us)',
    ]);
    expect(bridgeShardFillLines(expectAccepted({ tenants: { 'acme.yaml': tenantYaml() } }))).toEqual(['bridge shard us-east-1/default: 1 tenant (no capacity limit)']);
  });

  test('npm start\'s cost estimate: a bridge tenant pays a share of its own shard\'s cluster', () => {
    const r = registry();
    const basis = (slug: string) => estimateMonthlyCost(r.tenants.find((t) => t.slug === slug)!, r).basis;
    expect([basis('acme'), basis('gamma')]).toEqual(['1/1 of tenancy-bridge (us-east-1)', '1/1 of tenancy-bridge-b (us-east-1)']);
  });
});
