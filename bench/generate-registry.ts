// Deterministic synthetic tenant registries for the benchmarks: a project root with the
// repository's platform.yaml and tenants/<slug>.yaml files that all pass loadRegistry().
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { prng } from '../test/support/seeded-random';

export interface GeneratedRegistry {
  /** Project root: platform.yaml and tenants/. */
  readonly root: string;
  readonly size: number;
  /** Tenants that get a stack (everything but offboarded). */
  readonly liveTenants: number;
  readonly byModel: Readonly<Record<Model, number>>;
  /** A live silo tenant from the middle of the registry, for the "select one" measurement. */
  readonly selectSlug: string;
}

type Model = 'silo' | 'bridge' | 'pool';
type Plan = 'free' | 'starter' | 'pro' | 'enterprise';

/** Model mix of the issue: 10% silo, 30% bridge, 60% pool (exact counts, then shuffled). */
const MODEL_SHARES: readonly [Model, number][] = [['silo', 0.1], ['bridge', 0.3], ['pool', 0.6]];

/** Plan mix per model; free only allows pool (lib/plans.ts). */
const PLAN_WEIGHTS: Readonly<Record<Model, readonly [Plan, number][]>> = {
  pool: [['free', 45], ['starter', 35], ['pro', 15], ['enterprise', 5]],
  bridge: [['starter', 35], ['pro', 50], ['enterprise', 15]],
  silo: [['starter', 10], ['pro', 45], ['enterprise', 45]],
};

/** Quota ceilings of lib/plans.ts; overrides are set at the ceiling so they stay valid. */
const QUOTA_CEILINGS: Readonly<Record<Plan, { cpu: string; memory: string; storage: string; pods: number }>> = {
  free: { cpu: '1', memory: '2Gi', storage: '5Gi', pods: 10 },
  starter: { cpu: '4', memory: '8Gi', storage: '50Gi', pods: 30 },
  pro: { cpu: '16', memory: '32Gi', storage: '200Gi', pods: 100 },
  enterprise: { cpu: '64', memory: '128Gi', storage: '1Ti', pods: 500 },
};

const STATUS_WEIGHTS: readonly [string, number][] = [['active', 94], ['provisioning', 2], ['suspended', 2], ['offboarding', 1], ['offboarded', 1]];

/**
 * The first silo tenants get fixed profiles so even the 100-tenant registry covers every
 * silo variant the equivalence check should see (plans, HIPAA, PCI, EU/GDPR).
 */
const SILO_COVERAGE: readonly { plan: Plan; hipaa?: boolean; pci?: boolean; eu?: boolean }[] = [
  { plan: 'starter' },
  { plan: 'pro', hipaa: true },
  { plan: 'enterprise', pci: true },
  { plan: 'pro', eu: true },
  { plan: 'enterprise' },
  { plan: 'enterprise', hipaa: true },
];

const ADJECTIVES = ['amber', 'brisk', 'cobalt', 'dapper', 'eager', 'fable', 'golden', 'hazel', 'ivory', 'jolly', 'keen', 'lunar', 'mellow', 'nimble', 'orbit', 'polar', 'quartz', 'rapid', 'solar', 'tidal', 'umber', 'vivid', 'woven', 'zesty'];
const NOUNS = ['anchor', 'beacon', 'canyon', 'delta', 'ember', 'forge', 'grove', 'harbor', 'island', 'jetty', 'kernel', 'lagoon', 'meadow', 'nexus', 'oasis', 'prairie', 'quarry', 'ridge', 'summit', 'tundra', 'valley', 'willow', 'yonder', 'zenith'];
const SUFFIXES = ['Inc.', 'LLC', 'GmbH', 'Ltd', 'Labs', 'Health', 'Payments', 'Analytics'];


function weighted<T>(rand: () => number, weights: readonly [T, number][]): T {
  const total = weights.reduce((n, [, w]) => n + w, 0);
  let r = rand() * total;
  for (const [value, w] of weights) if ((r -= w) < 0) return value;
  return weights[weights.length - 1][0];
}

/** A fixed RFC 9562 version-4-shaped UUID derived from the tenant index. */
export function tenantUuid(index: number): string {
  const h = createHash('sha256').update(`cdktf-tenancy-bench:${index}`).digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Exact model counts for `size`, shuffled deterministically. */
function modelsFor(size: number, rand: () => number): Model[] {
  const models: Model[] = [];
  for (const [model, share] of MODEL_SHARES.slice(0, -1)) models.push(...Array<Model>(Math.round(size * share)).fill(model));
  models.push(...Array<Model>(size - models.length).fill(MODEL_SHARES[MODEL_SHARES.length - 1][0]));
  for (let i = models.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [models[i], models[j]] = [models[j], models[i]];
  }
  return models;
}

/** Builds tenant records for `size` tenants; the same size always yields the same records. */
export function generateTenants(size: number): Record<string, unknown>[] {
  const rand = prng(0x7e4a11c7 ^ size);
  const models = modelsFor(size, rand);
  let siloOrdinal = 0;
  return models.map((model, i) => {
    const adjective = ADJECTIVES[Math.floor(rand() * ADJECTIVES.length)];
    const noun = NOUNS[Math.floor(rand() * NOUNS.length)];
    // The index suffix makes slugs unique; words make them look like real tenants.
    const slug = `${adjective}-${noun}-${String(i).padStart(5, '0')}`;
    const coverage = model === 'silo' ? SILO_COVERAGE[siloOrdinal++] : undefined;
    const plan = coverage?.plan ?? weighted(rand, PLAN_WEIGHTS[model]);

    // HIPAA/PCI only on silo tenants, kept in the US; otherwise ~20% EU tenants, most under GDPR.
    let hipaa = false;
    let pci = false;
    if (model === 'silo') {
      const r = rand();
      hipaa = coverage ? Boolean(coverage.hipaa) : r < 0.15;
      pci = coverage ? Boolean(coverage.pci) : r >= 0.15 && r < 0.25;
    }
    const eu = coverage ? Boolean(coverage.eu) : !hipaa && !pci && rand() < 0.2;
    const gdpr = eu && (coverage !== undefined || rand() < 0.75);
    const residency = eu ? 'eu' : hipaa || pci || rand() < 0.2 ? 'us' : undefined;

    const tenant: Record<string, unknown> = {
      id: tenantUuid(i),
      slug,
      company: `${adjective[0].toUpperCase()}${adjective.slice(1)} ${noun[0].toUpperCase()}${noun.slice(1)} ${SUFFIXES[i % SUFFIXES.length]}`,
      adminEmail: `admin@${slug}.example`,
      plan,
      model,
      region: eu ? 'eu-central-1' : 'us-east-1',
    };
    if (residency) tenant.dataResidency = residency;
    if (hipaa || pci || gdpr) tenant.compliance = { soc2: true, ...(hipaa && { hipaa }), ...(pci && { pci }), ...(gdpr && { gdpr }) };
    const domainRoll = rand();
    // "-app" subdomains never collide with a slug: generated slugs end in digits.
    if (domainRoll < 0.1) tenant.domain = { subdomain: `${slug}-app`, custom: `app.${slug}.example` };
    else if (domainRoll < 0.3) tenant.domain = { subdomain: `${slug}-app` };
    if (rand() < 0.2) tenant.workload = { replicas: 1 + Math.floor(rand() * 4), ...(rand() < 0.5 && { values: { podLabels: { feature: 'reporting' } } }) };
    if (rand() < 0.15) tenant.quotas = { ...QUOTA_CEILINGS[plan] };
    // Coverage tenants stay active so they always get a stack.
    tenant.status = coverage ? 'active' : weighted(rand, STATUS_WEIGHTS);
    return tenant;
  });
}

/** Writes a project of `size` tenants under `dir` (created), with `platformFile` copied in. */
export function writeRegistry(dir: string, size: number, platformFile: string): GeneratedRegistry {
  const tenants = generateTenants(size);
  mkdirSync(join(dir, 'tenants'), { recursive: true });
  copyFileSync(platformFile, join(dir, 'platform.yaml'));
  const byModel: Record<Model, number> = { silo: 0, bridge: 0, pool: 0 };
  for (const t of tenants) {
    writeFileSync(join(dir, 'tenants', `${String(t.slug)}.yaml`), stringify(t));
    byModel[t.model as Model]++;
  }
  const live = tenants.filter((t) => t.status !== 'offboarded');
  const middle = live.slice(Math.floor(live.length / 2)).find((t) => t.model === 'silo') ?? live[0];
  return { root: dir, size, liveTenants: live.length, byModel, selectSlug: String(middle.slug) };
}
