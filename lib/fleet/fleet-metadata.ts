import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { TerraformElement, type TerraformStack } from 'cdktf';
import type { PlatformConfig } from '../registry/platform-schema';
import type { Tenant } from '../registry/tenant-schema';
import { valueHash } from './stack-hash';

/**
 * What a stack is built from, each hashed on its own, so that `tenancy fleet plan` can say why a
 * changed stack changed (several reasons at once are possible):
 *
 *  registry   the tenant's registry entry as validated (its values file merged in)
 *  chart      the Helm charts its releases pin: kubernetes.chartVersion and chartRepository, the
 *             tenant-platform chart version, and without a repository the files of charts/
 *  platform   platform.yaml apart from the chart settings
 *  construct  the construct code: the library version, its stack-building sources (stacks/,
 *             lib/*.ts, lib/kubernetes/, lib/policy/) and the versions of cdktf and the providers
 */
export type FleetComponent = 'registry' | 'chart' | 'platform' | 'construct';
export const FLEET_COMPONENTS: readonly FleetComponent[] = ['registry', 'chart', 'platform', 'construct'];
/** How `fleet plan` names each component in a reason. */
export const COMPONENT_REASONS: Readonly<Record<FleetComponent, string>> = {
  registry: 'registry entry',
  chart: 'chart',
  platform: 'platform.yaml',
  construct: 'construct code',
};

/** The fleet metadata of a synthesized stack: `//.metadata.tenancy` of its cdk.tf.json. */
export interface StackFleetMetadata {
  readonly kind: 'tenant' | 'platform';
  /** Tenant stacks: the tenant's id and slug. */
  readonly tenantId?: string;
  readonly slug?: string;
  /** package.json version of the library that synthesized the stack. */
  readonly libraryVersion: string;
  readonly components: Partial<Record<FleetComponent, string>>;
  /**
   * Tenant stacks a full synthesis of this registry has (every tenant but offboarded ones): a
   * `cdktf.out` with fewer holds a selection (TENANCY_SELECT), and stacks missing from it are not
   * removed ones.
   */
  readonly fleetTenants: number;
}

/** Key of the fleet metadata under cdktf's `//.metadata`. */
export const FLEET_METADATA_KEY = 'tenancy';

/**
 * Writes the stack's fleet metadata into its `//.metadata` (cdktf merges every element's
 * toMetadata() there). Metadata only: no Terraform block, and the content hash ignores `//`.
 */
export class FleetMetadata extends TerraformElement {
  constructor(scope: TerraformStack, readonly metadata: StackFleetMetadata) {
    super(scope, 'tenancy-fleet-metadata');
  }

  override toMetadata(): Record<string, unknown> {
    return { [FLEET_METADATA_KEY]: this.metadata };
  }
}

/** The metadata of a tenant stack. */
export function tenantStackMetadata(tenant: Tenant, platform: PlatformConfig, fleetTenants: number): StackFleetMetadata {
  return {
    kind: 'tenant',
    tenantId: tenant.id,
    slug: tenant.slug,
    libraryVersion: libraryFingerprint().version,
    components: {
      // The canary mark only orders rollouts: it is not part of the stack.
      registry: valueHash({ ...tenant, canary: undefined }),
      chart: chartHash(platform),
      platform: platformHash(platform),
      construct: libraryFingerprint().hash,
    },
    fleetTenants,
  };
}

/** The metadata of a platform stack (no registry entry; charts are the tenants'). */
export function platformStackMetadata(platform: PlatformConfig, fleetTenants: number): StackFleetMetadata {
  return {
    kind: 'platform',
    libraryVersion: libraryFingerprint().version,
    components: { platform: platformHash(platform), construct: libraryFingerprint().hash },
    fleetTenants,
  };
}

const platformHashes = new WeakMap<PlatformConfig, { platform: string; chart: string }>();

function hashesOf(platform: PlatformConfig): { platform: string; chart: string } {
  let hashes = platformHashes.get(platform);
  if (!hashes) {
    const { chartVersion, chartRepository, ...kubernetes } = platform.kubernetes;
    // Loaded only when used, as stacks/tenant-stack.ts loads the Kubernetes side (the Helm bindings are slow to load).
    const tenantPlatformChart = platform.kubernetes.enabled ? (require('../kubernetes/tenant-namespace') as typeof import('../kubernetes/tenant-namespace')).TENANT_PLATFORM_CHART_VERSION : null;
    const chart = platform.kubernetes.enabled
      ? valueHash({ chartVersion, chartRepository: chartRepository ?? null, tenantPlatformChart, files: chartRepository ? null : localChartsHash() })
      : valueHash({ kubernetes: false });
    // fleet: rollout settings, not part of any stack.
    hashes = { platform: valueHash({ ...platform, kubernetes, fleet: undefined }), chart };
    platformHashes.set(platform, hashes);
  }
  return hashes;
}

const chartHash = (platform: PlatformConfig) => hashesOf(platform).chart;
const platformHash = (platform: PlatformConfig) => hashesOf(platform).platform;

// ---------------------------------------------------------------------------------------------
// The library's own files (once per process)
// ---------------------------------------------------------------------------------------------

/** Directory of the library's package.json (the repository root, or the package above dist/). */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'stacks'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`lib/fleet: no package root above ${__dirname}`);
    dir = parent;
  }
}

/** Dependencies whose versions shape the synthesized JSON. */
const SYNTH_DEPENDENCIES = ['cdktf', 'constructs', '@cdktf/provider-aws', '@cdktf/provider-helm'];

let fingerprint: { version: string; hash: string } | undefined;

/**
 * The library version and a hash of the code that builds stacks. TypeScript sources when the
 * package has them (the repository, whether running from dist/ or ts-jest), else the compiled
 * JavaScript: the same code gives the same hash however it is run.
 */
export function libraryFingerprint(): { version: string; hash: string } {
  if (fingerprint) return fingerprint;
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; dependencies?: Record<string, string> };
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ version: pkg.version, dependencies: SYNTH_DEPENDENCIES.map((d) => [d, pkg.dependencies?.[d] ?? null]) }));
  const sourceExt = existsSync(join(root, 'lib', 'naming.ts')) ? '.ts' : '.js';
  const codeRoot = sourceExt === '.ts' ? root : join(root, 'dist');
  const files = [
    ...listFiles(join(codeRoot, 'stacks'), sourceExt, true),
    ...listFiles(join(codeRoot, 'lib'), sourceExt, false),
    ...listFiles(join(codeRoot, 'lib', 'kubernetes'), sourceExt, true),
    ...listFiles(join(codeRoot, 'lib', 'policy'), sourceExt, true),
  ];
  for (const file of files) hash.update(`\0${relative(codeRoot, file)}\0`).update(readFileSync(file));
  fingerprint = { version: pkg.version, hash: hash.digest('hex') };
  return fingerprint;
}

/** Content of charts/ (the local charts tenant releases use without a chart repository). */
let chartsHash: string | undefined;
function localChartsHash(): string {
  if (chartsHash) return chartsHash;
  const dir = join(packageRoot(), 'charts');
  const hash = createHash('sha256');
  for (const file of listFiles(dir, '', true)) hash.update(`\0${relative(dir, file)}\0`).update(readFileSync(file));
  return (chartsHash = hash.digest('hex'));
}

function listFiles(dir: string, ext: string, recursive: boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (recursive) out.push(...listFiles(path, ext, true));
    } else if (name.endsWith(ext) && !name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

/**
 * Adds the fleet metadata to every stack built from `registry` (stacks/build-stacks.ts). The fleet
 * size is the registry's, whatever the selection, so a sliced or selected synthesis says so.
 */
export function annotateFleet(stacks: { readonly platform: readonly TerraformStack[]; readonly tenants: readonly (TerraformStack & { readonly tenant: Tenant })[] }, registry: { readonly platform: PlatformConfig; readonly tenants: readonly Tenant[] }): void {
  const fleetTenants = registry.tenants.filter((t) => t.status !== 'offboarded').length;
  for (const stack of stacks.platform) new FleetMetadata(stack, platformStackMetadata(registry.platform, fleetTenants));
  for (const stack of stacks.tenants) new FleetMetadata(stack, tenantStackMetadata(stack.tenant, registry.platform, fleetTenants));
}
