import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PLAN_PROFILES, parseQuantity } from '../plans';
import { bridgeShardOf, bridgeShardsOf, shardAcceptsResidency } from './bridge-shards';
import { egressPolicyFor, egressRuleProblems } from './egress-policy';
import { PlatformSchema, type PlatformConfig } from './platform-schema';
import { RegistryError, type RegistryProblem } from './registry-error';
import { RESIDENCY_REGION_PREFIXES, TenantSchema, type Tenant } from './tenant-schema';
import { WorkloadValuesSchema, imageRepositoryOf, workloadValuesProblems, type ValuesProblem, type WorkloadValuesPolicy } from './workload-values';
import { YamlFile } from './yaml-file';

export interface Registry {
  readonly platform: PlatformConfig;
  /** Every tenant, sorted by slug. */
  readonly tenants: readonly Tenant[];
}

export interface LoadRegistryOptions {
  /** Project root that file names in messages are relative to. @default process.cwd() */
  readonly root?: string;
  /** Directory of tenant files. @default `<root>/tenants` */
  readonly tenantsDir?: string;
  /** Platform settings file. @default `<root>/platform.yaml` */
  readonly platformFile?: string;
}

/**
 * Directory under `tenants/` where offboarding keeps the entries of offboarded tenants
 * (`<slug>.<id>.yaml`, lib/onboarding/directory-registry-source.ts): kept for auditors, not loaded,
 * so a new tenant may take the slug.
 */
export const OFFBOARDED_DIR = 'offboarded';
/** Files in `tenants/` that are not tenant records. */
const NOT_TENANT_FILES = new Set(['tenant.schema.json', 'README.md', OFFBOARDED_DIR]);
const TENANT_FILE = /^([a-z0-9-]+)\.yaml$/;
/** Helm values override files of tenants (`<slug>.values.yaml`), merged under the tenant's inline workload.values. */
const VALUES_FILE = /^([a-z0-9-]+)\.values\.yaml$/;

/**
 * Loads platform.yaml and every tenant file, validates each against its schema and the
 * registry as a whole, and throws one RegistryError listing every problem found.
 */
export function loadRegistry(options: LoadRegistryOptions = {}): Registry {
  const root = options.root ?? process.cwd();
  const tenantsDir = options.tenantsDir ?? join(root, 'tenants');
  const platformFile = options.platformFile ?? join(root, 'platform.yaml');
  const problems: RegistryProblem[] = [];
  const rel = (p: string) => relative(root, p) || p;

  const platform = readPlatformFile(platformFile, rel(platformFile), problems);

  const parsed: { tenant: Tenant; yaml: YamlFile; fileSlug: string }[] = [];
  const valuesFiles: string[] = [];
  const dirStat = statSync(tenantsDir, { throwIfNoEntry: false });
  if (!dirStat) {
    problems.push({ file: rel(tenantsDir), path: '', message: 'tenant registry directory does not exist' });
  } else if (!dirStat.isDirectory()) {
    problems.push({ file: rel(tenantsDir), path: '', message: 'must be a directory of <slug>.yaml tenant files' });
  } else {
    for (const name of readdirSync(tenantsDir).sort()) {
      if (VALUES_FILE.test(name)) valuesFiles.push(name);
      if (name.startsWith('.') || NOT_TENANT_FILES.has(name) || VALUES_FILE.test(name)) continue;
      const file = rel(join(tenantsDir, name));
      const match = TENANT_FILE.exec(name);
      if (!match) {
        problems.push({ file, path: '', message: 'unexpected file: tenant files are named <slug>.yaml (lowercase, .yaml not .yml)' });
        continue;
      }
      const read = YamlFile.read(join(tenantsDir, name), file, problems);
      if (!read) continue;
      const tenant = read.yaml.validate(TenantSchema, read.data, problems);
      if (tenant) parsed.push({ tenant, yaml: read.yaml, fileSlug: match[1] });
    }
  }

  const valuesLayers = valuesFiles.map((name) => readValuesFile(join(tenantsDir, name), rel(join(tenantsDir, name)), VALUES_FILE.exec(name)![1], parsed, platform, problems));
  // The rules check each tenant's inline values on their own (with their lines); the values files were checked as they were read.
  checkRegistryRules(parsed, platform, problems);
  if (problems.length > 0) throw new RegistryError(problems);
  for (const layer of valuesLayers) layer?.();
  return { platform: platform!, tenants: parsed.map((p) => p.tenant).sort((a, b) => a.slug.localeCompare(b.slug)) };
}

/** Reads and validates platform.yaml; problems go to `problems` (undefined then). */
export function readPlatformFile(absPath: string, file: string, problems: RegistryProblem[]): PlatformConfig | undefined {
  const read = YamlFile.read(absPath, file, problems);
  if (!read) return undefined;
  const platform = read.yaml.validate(PlatformSchema, read.data, problems);
  if (platform && !(platform.controlPlaneRegion in platform.regions)) {
    problems.push(read.yaml.problem(['controlPlaneRegion'], `must be one of the configured regions (${Object.keys(platform.regions).join(', ')})`));
  }
  return platform;
}

/**
 * Reads and checks `tenants/<slug>.values.yaml` (problems point into that file); returns the step
 * that puts it under the tenant's inline workload.values (inline wins, maps merge like Helm), so
 * the release gets one tenant layer.
 */
function readValuesFile(
  absPath: string,
  file: string,
  slug: string,
  parsed: { tenant: Tenant; yaml: YamlFile; fileSlug: string }[],
  platform: PlatformConfig | undefined,
  problems: RegistryProblem[],
): (() => void) | undefined {
  const owner = parsed.find((p) => p.fileSlug === slug);
  if (!owner) {
    problems.push({ file, path: '', message: `values file of an unknown tenant: there is no tenants/${slug}.yaml` });
    return undefined;
  }
  const read = YamlFile.read(absPath, file, problems);
  if (!read) return undefined;
  const values = read.yaml.validate(WorkloadValuesSchema, read.data, problems);
  if (!values) return undefined;
  if (platform) for (const p of workloadValuesProblems(values, workloadValuesPolicy(owner.tenant, platform))) problems.push(locate(read.yaml, [], p));
  return () => {
    const t = owner.tenant;
    // The file's own data (equal to the parsed values, in the order it was written).
    owner.tenant = { ...t, workload: { ...t.workload, values: mergeHelmValues(read.data, t.workload.values ?? {}) } };
  };
}

/** What `tenant`'s workload values may claim under `platform`. */
export function workloadValuesPolicy(tenant: Pick<Tenant, 'slug' | 'model' | 'domain'>, platform: PlatformConfig): WorkloadValuesPolicy {
  const k8s = platform.kubernetes;
  return {
    hosts: [`${tenant.domain.subdomain ?? tenant.slug}.${platform.baseDomain}`, ...(tenant.domain.custom ? [tenant.domain.custom] : [])],
    allowedIngressAnnotations: k8s.ingress.allowedAnnotations,
    allowedImageRegistries: k8s.allowedImageRegistries,
    platformImageRepository: imageRepositoryOf(k8s.appImage),
    platformImageOnly: tenant.model === 'pool',
  };
}

/** A values problem as a registry problem at `base` + its path, on the key where it is about the key. */
function locate(yaml: TenantLocation, base: readonly PropertyKey[], p: ValuesProblem): RegistryProblem {
  const path = [...base, ...p.path];
  return p.onKey && yaml.keyProblem ? yaml.keyProblem(path, p.message) : yaml.problem(path, p.message);
}

/** Helm's merge: mappings merge key by key, anything else in `over` replaces what is in `base`. */
export function mergeHelmValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeHelmValues(out[k] as Record<string, unknown>, v) : v;
  return out;
}

/**
 * A bridge tenant's shard (its placement, or the default shard) must be one of its region's shards
 * and accept its residency: a shard that platform.yaml stops listing would take its tenants'
 * schemas with it. Other models have no placement. (Capacity is onboarding's business: a shard over
 * capacity, after a capacity was lowered to drain it, still loads.)
 */
function bridgeShardProblems(t: Tenant, yaml: TenantLocation, platform: PlatformConfig, problems: RegistryProblem[]): void {
  if (t.model !== 'bridge') {
    if (t.placement) problems.push(yaml.problem(['placement'], `only bridge tenants have a placement (this tenant's model is ${t.model})`));
    return;
  }
  const id = bridgeShardOf(t);
  const shard = bridgeShardsOf(platform, t.region).find((s) => s.id === id);
  const path = t.placement ? ['placement', 'bridgeShard'] : ['model'];
  if (!shard) {
    const listed = bridgeShardsOf(platform, t.region).map((s) => s.id).join(', ');
    problems.push(yaml.problem(path, `bridge shard "${id}"${t.placement ? '' : ' (no placement: the default shard)'} is not a shard of ${t.region} in platform.yaml (regions.${t.region}.bridgeShards: ${listed}); keep it listed while it holds tenants`));
  } else if (!shardAcceptsResidency(shard, t.dataResidency)) {
    problems.push(yaml.problem(path, `bridge shard "${id}" of ${t.region} does not take data residency "${t.dataResidency}" (it takes ${shard.residency!.join(', ')})`));
  }
}

/** Where a tenant entry came from, to point problems at it: a YAML file, or anything that can (an onboarding request, a database row). */
export type TenantLocation = Pick<YamlFile, 'file' | 'problem'> & Partial<Pick<YamlFile, 'keyProblem'>>;

/**
 * Rules that span fields or files: uniqueness, model/compliance, residency, plan limits. Exported
 * for the other registry sources (the control-plane database) and onboarding requests, which are
 * checked against the loaded registry with exactly these rules: a later entry that duplicates an
 * earlier one's id, slug or domain gets the problem.
 */
export function checkRegistryRules(parsed: readonly { tenant: Tenant; yaml: TenantLocation; fileSlug: string }[], platform: PlatformConfig | undefined, problems: RegistryProblem[]): void {
  const seen = { id: new Map<string, string>(), slug: new Map<string, string>(), domain: new Map<string, string>() };
  const claim = (kind: keyof typeof seen, value: string, yaml: TenantLocation, path: string[]) => {
    const owner = seen[kind].get(value);
    if (owner !== undefined) problems.push(yaml.problem(path, `${kind} ${JSON.stringify(value)} is already used by ${owner}`));
    else seen[kind].set(value, yaml.file);
  };

  for (const { tenant: t, yaml, fileSlug } of parsed) {
    if (fileSlug !== t.slug) problems.push(yaml.problem(['slug'], `must match the file name: expected "${fileSlug}" or rename the file to ${t.slug}.yaml`));
    claim('id', t.id.toLowerCase(), yaml, ['id']);
    claim('slug', t.slug, yaml, ['slug']);
    if (platform) claim('domain', `${t.domain.subdomain ?? t.slug}.${platform.baseDomain}`, yaml, t.domain.subdomain ? ['domain', 'subdomain'] : ['slug']);
    if (t.domain.custom) claim('domain', t.domain.custom, yaml, ['domain', 'custom']);
    if (platform && t.domain.custom && (t.domain.custom === platform.baseDomain || t.domain.custom.endsWith(`.${platform.baseDomain}`))) {
      problems.push(yaml.problem(['domain', 'custom'], `must not be under the platform domain ${platform.baseDomain}; use domain.subdomain for a name under it`));
    }

    if ((t.compliance.hipaa || t.compliance.pci) && (t.workload.egress?.length ?? 0) > 0) {
      problems.push(yaml.problem(['workload', 'egress'], 'HIPAA and PCI tenants may reach only their database and DNS; remove the extra egress'));
    } else if (platform && t.region in platform.regions) {
      for (const p of egressRuleProblems(t.workload.egress ?? [], egressPolicyFor(platform, t.region))) problems.push(locate(yaml, ['workload', 'egress'], p));
    }
    if (platform) for (const p of workloadValuesProblems(t.workload.values ?? {}, workloadValuesPolicy(t, platform))) problems.push(locate(yaml, ['workload', 'values'], p));
    for (const regime of ['hipaa', 'pci'] as const) {
      if (t.compliance[regime] && t.model !== 'silo') {
        problems.push(yaml.problem(['model'], `${regime.toUpperCase()} tenants must use the silo model (a dedicated database), not ${t.model}`));
      }
    }
    const profile = PLAN_PROFILES[t.plan];
    if (!profile.models.includes(t.model)) {
      problems.push(yaml.problem(['model'], `plan "${t.plan}" allows ${profile.models.join(', ')}, not ${t.model}`));
    }
    if (!RESIDENCY_REGION_PREFIXES[t.dataResidency].some((prefix) => t.region.startsWith(prefix))) {
      problems.push(yaml.problem(['region'], `${t.region} is outside the tenant's data residency "${t.dataResidency}"`));
    }
    if (t.compliance.gdpr && t.dataResidency === 'none') {
      problems.push(yaml.problem(['dataResidency'], 'GDPR tenants must declare a data residency (e.g. "eu") so their data and backups stay in it'));
    }
    if (platform && !(t.region in platform.regions)) {
      problems.push(yaml.problem(['region'], `${t.region} is not a region of platform.yaml (configured: ${Object.keys(platform.regions).join(', ')})`));
    } else if (platform) {
      bridgeShardProblems(t, yaml, platform, problems);
    }
    for (const key of ['cpu', 'memory', 'storage'] as const) {
      const value = t.quotas[key];
      if (value !== undefined && parseQuantity(value) > parseQuantity(profile.quotaCeiling[key])) {
        problems.push(yaml.problem(['quotas', key], `${value} exceeds the ${t.plan} plan ceiling of ${profile.quotaCeiling[key]}`));
      }
    }
    if (t.quotas.pods !== undefined && t.quotas.pods > profile.quotaCeiling.pods) {
      problems.push(yaml.problem(['quotas', 'pods'], `${t.quotas.pods} exceeds the ${t.plan} plan ceiling of ${profile.quotaCeiling.pods}`));
    }
  }
}
