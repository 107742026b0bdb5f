import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'cdktf';
import { synthesize } from '../../lib/app/synthesize';
import { estimateMonthlyCost, sharedClusterMonthlyUsd } from '../../lib/pricing/estimate-cost';
import { selectStacks } from '../../stacks/select-tenants';
import { FixtureProject } from '../support/fixture-project';
import { loadSampleRegistry } from '../support/sample-registry';

const registry = loadSampleRegistry();
const stackDirs = (outdir: string) => readdirSync(join(outdir, 'stacks')).sort();

describe('selecting stacks', () => {
  test('no selector builds a platform stack per used region and every live tenant', () => {
    const s = selectStacks(registry, undefined);
    expect(s.partial).toBe(false);
    expect(s.platformRegions).toEqual(['eu-central-1', 'us-east-1']);
    expect(s.tenants.map((t) => t.slug)).not.toContain('oldco');
    expect(s.tenants).toHaveLength(registry.tenants.length - 1);
  });

  test('slugs and ids select tenants; "platform" selects the platform stacks', () => {
    const globex = registry.tenants.find((t) => t.slug === 'globex')!;
    const s = selectStacks(registry, ` acme, ${globex.id.toUpperCase()} `);
    expect(s.tenants.map((t) => t.slug)).toEqual(['acme', 'globex']);
    expect(s.platformRegions).toEqual([]);
    expect(selectStacks(registry, 'platform').platformRegions).toEqual(['eu-central-1', 'us-east-1']);
  });

  test.each([
    ['acme,nope', /no tenant with slug or id "nope"/],
    ['oldco', /oldco is offboarded/],
  ])('%s is rejected', (selector, message) => {
    expect(() => selectStacks(registry, selector)).toThrow(message);
  });
});

describe('synthesize', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.fromSample()));
  afterEach(() => project.remove());

  test('writes one directory per live tenant plus the platform stacks, and nothing else', () => {
    const { outdir } = synthesize({ root: project.root, select: '' });
    expect(outdir).toBe(join(project.root, 'cdktf.out'));
    expect(stackDirs(outdir)).toEqual([
      'platform-eu-central-1', 'platform-us-east-1',
      'tenant-acme', 'tenant-berlin-analytics', 'tenant-globex', 'tenant-initech', 'tenant-mediwell', 'tenant-payflow', 'tenant-tinyco',
    ]);
    expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.stacks)).toHaveLength(9);
  });

  test('a selector builds only the named tenant, for the per-tenant pipeline', () => {
    const { outdir } = synthesize({ root: project.root, select: 'mediwell' });
    expect(stackDirs(outdir)).toEqual(['tenant-mediwell']);
  });

  test('a new synth replaces the output but keeps terraform working files of surviving stacks', () => {
    const { outdir } = synthesize({ root: project.root, select: '' });
    const providers = join(outdir, 'stacks', 'tenant-acme', '.terraform');
    mkdirSync(providers);
    writeFileSync(join(providers, 'marker'), 'kept');
    writeFileSync(join(outdir, 'stacks', 'tenant-acme', '.terraform.lock.hcl'), 'lock');
    synthesize({ root: project.root, select: 'acme' });
    expect(stackDirs(outdir)).toEqual(['tenant-acme']);
    expect(readFileSync(join(providers, 'marker'), 'utf8')).toBe('kept');
    expect(existsSync(join(outdir, 'stacks', 'tenant-acme', '.terraform.lock.hcl'))).toBe(true);
  });

  test('a synth that fails after writing leaves the previous output byte-identical and no staging dir', () => {
    const { outdir } = synthesize({ root: project.root, select: 'acme' });
    const before = readFileSync(join(outdir, 'stacks', 'tenant-acme', 'cdk.tf.json'), 'utf8');
    // Fault injection: every stack is written to staging, then synthesis fails (as a late validation would).
    const original = App.prototype.synth;
    const spy = jest.spyOn(App.prototype, 'synth').mockImplementation(function (this: App) {
      original.call(this);
      throw new Error('injected failure after writing');
    });
    try {
      expect(() => synthesize({ root: project.root, select: '' })).toThrow(/injected failure/);
    } finally {
      spy.mockRestore();
    }
    expect(stackDirs(outdir)).toEqual(['tenant-acme']);
    expect(readFileSync(join(outdir, 'stacks', 'tenant-acme', 'cdk.tf.json'), 'utf8')).toBe(before);
    expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
  });
});

describe('cost estimates', () => {
  const cost = (slug: string) => estimateMonthlyCost(registry.tenants.find((t) => t.slug === slug)!, registry);

  test('silo tenants pay for their instance, key and application credentials secret; enterprise is multi-AZ', () => {
    expect(cost('mediwell')).toEqual({ monthlyUsd: 48 + 50 * 0.115 + 1 + 0.4, basis: 'db.t3.medium, 50 GiB' });
    expect(cost('initech').basis).toBe('db.m6g.large multi-AZ, 100 GiB');
    expect(cost('initech').monthlyUsd).toBeCloseTo(2 * 123 + 2 * 100 * 0.115 + 1 + 2 * 7.3 + 0.4, 2);
  });

  test('bridge and pool tenants share their region cluster equally; offboarded tenants cost nothing', () => {
    const poolSharers = registry.tenants.filter((t) => t.model === 'pool' && t.region === 'us-east-1' && t.status !== 'offboarded').length;
    expect(cost('acme').monthlyUsd).toBeCloseTo(sharedClusterMonthlyUsd() / poolSharers, 2);
    expect(cost('oldco').monthlyUsd).toBe(0);
    expect(cost('globex').monthlyUsd).toBeCloseTo(sharedClusterMonthlyUsd() + 0.4, 2);
  });
});
