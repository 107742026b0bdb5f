/**
 * The AWS part of a synthesized stack, for the offline plan: the provider mirror holds only
 * hashicorp/aws, and the data sources that configure the Kubernetes and Helm providers would call
 * AWS. Everything dropped is listed here by name, and the projection fails when anything it keeps
 * refers to something it dropped, so it cannot silently plan a different stack than the real one:
 * an AWS resource that depends on the cluster (a value, not just ordering) makes it throw.
 * Used by `npm run plan` (lib/local/plan-stack.ts) and by the tests (test/support/aws-projection.ts).
 */

/** Providers whose resources and data sources are dropped (not in the offline mirror). */
export const DROPPED_PROVIDERS: readonly string[] = ['kubernetes', 'helm'];

/** The provider the offline mirror holds; the only one kept. */
export const KEPT_PROVIDER = 'aws';

/** AWS data sources that exist only to configure the dropped providers (they would call AWS). */
export const DROPPED_AWS_DATA_SOURCES: readonly string[] = ['aws_eks_cluster', 'aws_eks_cluster_auth'];

export interface AwsProjection {
  /** The stack JSON with only its AWS part. The input is not modified. */
  readonly stack: Record<string, any>;
  /** What was left out, sorted, to assert on. */
  readonly dropped: {
    /** Provider configurations, e.g. ["helm", "kubernetes"]. */
    readonly providers: string[];
    /** terraform.required_providers entries. */
    readonly requiredProviders: string[];
    /** Resource addresses, e.g. "helm_release.app_release_E0EC404F". */
    readonly resources: string[];
    /** Data source addresses, e.g. "data.aws_eks_cluster.eks". */
    readonly dataSources: string[];
    /** Kept resource address → depends_on entries removed from it (they named dropped resources). */
    readonly dependsOn: Record<string, string[]>;
  };
}

/** Thrown when the AWS part cannot stand on its own. */
export class AwsProjectionError extends Error {
  constructor(message: string) {
    super(`aws projection: ${message}`);
    this.name = 'AwsProjectionError';
  }
}

/** The provider a resource or data source uses: its `provider` meta-argument ("kubernetes.alias"), else its type's prefix. */
function providerOf(type: string, block: Record<string, any>): string {
  const explicit = typeof block.provider === 'string' ? block.provider.replace(/^\$\{(.*)\}$/, '$1') : undefined;
  return (explicit ?? type).split(/[._]/)[0];
}

/** Every string in a JSON value (keys of objects too, they can hold expressions in HCL JSON). */
function* stringsOf(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const v of value) yield* stringsOf(v);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield k;
      yield* stringsOf(v);
    }
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A matcher for references to `addresses` ("type.name" or "data.type.name") inside expressions. A
 * resource address must not be preceded by "data." or an identifier character, and must be
 * followed by something that ends the name ("." "[" "}" space, ...).
 */
function referenceMatcher(addresses: readonly string[]): (text: string) => string[] {
  if (addresses.length === 0) return () => [];
  const pattern = new RegExp(`(?<![A-Za-z0-9_.-])(${[...addresses].sort((a, b) => b.length - a.length).map(escape).join('|')})(?![A-Za-z0-9_-])`, 'g');
  return (text) => (text.includes('${') || text.includes('%{') ? [...text.matchAll(pattern)].map((m) => m[1]) : []);
}

/** As HCL JSON, a depends_on entry is a bare address or an interpolation of it. */
const dependencyAddress = (entry: string) => entry.replace(/^\$\{(.*)\}$/, '$1');

/**
 * Drops from a synthesized stack (cdk.tf.json) the providers in {@link DROPPED_PROVIDERS} with
 * their required_providers entries, resources and data sources, and the AWS data sources in
 * {@link DROPPED_AWS_DATA_SOURCES}; removes depends_on entries that name a dropped resource.
 *
 * Throws an {@link AwsProjectionError} when:
 * - a provider is neither aws nor listed as dropped (it would not install offline; list it or plan it);
 * - anything kept (resource, data source, output, local, provider, module) refers to a dropped
 *   resource or data source: dropping would change what is planned. (A kept block cannot use a
 *   dropped provider: a block's provider decides whether it is dropped.)
 */
export function awsProjection(stackJson: Record<string, any>): AwsProjection {
  const json: Record<string, any> = JSON.parse(JSON.stringify(stackJson));
  const isDroppedProvider = (provider: string) => DROPPED_PROVIDERS.includes(provider);
  const checkKnown = (provider: string, what: string) => {
    if (provider !== KEPT_PROVIDER && !isDroppedProvider(provider)) {
      throw new AwsProjectionError(`${what} uses provider "${provider}", which is neither ${KEPT_PROVIDER} nor one of the dropped providers (${DROPPED_PROVIDERS.join(', ')}); decide which it is`);
    }
  };

  const droppedProviders: string[] = [];
  for (const name of Object.keys(json.provider ?? {})) {
    checkKnown(name, `provider block "${name}"`);
    if (isDroppedProvider(name)) {
      droppedProviders.push(name);
      delete json.provider[name];
    }
  }

  const requiredProviders: string[] = [];
  const required = json.terraform?.required_providers ?? {};
  for (const name of Object.keys(required)) {
    checkKnown(name, `required_providers entry "${name}"`);
    if (isDroppedProvider(name)) {
      requiredProviders.push(name);
      delete required[name];
    }
  }

  const droppedResources: string[] = [];
  for (const [type, byName] of Object.entries<Record<string, any>>(json.resource ?? {})) {
    for (const [name, block] of Object.entries(byName)) {
      const provider = providerOf(type, block);
      checkKnown(provider, `resource ${type}.${name}`);
      if (isDroppedProvider(provider)) {
        droppedResources.push(`${type}.${name}`);
        delete byName[name];
      }
    }
    if (Object.keys(byName).length === 0) delete json.resource[type];
  }

  const droppedData: string[] = [];
  for (const [type, byName] of Object.entries<Record<string, any>>(json.data ?? {})) {
    for (const [name, block] of Object.entries(byName)) {
      const provider = providerOf(type, block);
      checkKnown(provider, `data source ${type}.${name}`);
      if (isDroppedProvider(provider) || DROPPED_AWS_DATA_SOURCES.includes(type)) {
        droppedData.push(`data.${type}.${name}`);
        delete byName[name];
      }
    }
    if (Object.keys(byName).length === 0) delete json.data[type];
  }
  if (json.data && Object.keys(json.data).length === 0) delete json.data;
  if (json.resource && Object.keys(json.resource).length === 0) delete json.resource;

  // depends_on is ordering only: an entry naming a dropped resource goes; any other reference stays and is checked below.
  const dependsOn: Record<string, string[]> = {};
  const dropped = new Set([...droppedResources, ...droppedData]);
  for (const [kind, prefix] of [['resource', ''], ['data', 'data.']] as const) {
    for (const [type, byName] of Object.entries<Record<string, any>>(json[kind] ?? {})) {
      for (const [name, block] of Object.entries(byName)) {
        if (!Array.isArray(block.depends_on)) continue;
        const removed = block.depends_on.filter((d: string) => dropped.has(dependencyAddress(d)));
        if (removed.length === 0) continue;
        dependsOn[`${prefix}${type}.${name}`] = removed.map(dependencyAddress).sort();
        block.depends_on = block.depends_on.filter((d: string) => !dropped.has(dependencyAddress(d)));
        if (block.depends_on.length === 0) delete block.depends_on;
      }
    }
  }

  // Nothing kept may still refer to what was dropped.
  const refersToDropped = referenceMatcher([...dropped]);
  const problems: string[] = [];
  const check = (where: string, value: unknown) => {
    const refs = new Set<string>();
    for (const text of stringsOf(value)) for (const ref of refersToDropped(text)) refs.add(ref);
    if (refs.size > 0) problems.push(`${where} refers to ${[...refs].sort().join(', ')}`);
  };
  for (const [kind, prefix] of [['resource', ''], ['data', 'data.']] as const) {
    for (const [type, byName] of Object.entries<Record<string, any>>(json[kind] ?? {})) {
      for (const [name, block] of Object.entries(byName)) check(`${prefix}${type}.${name}`, block);
    }
  }
  for (const [name, block] of Object.entries<any>(json.output ?? {})) check(`output ${name}`, block);
  for (const [name, value] of Object.entries<any>(json.locals ?? {})) check(`local ${name}`, value);
  for (const [name, block] of Object.entries<any>(json.module ?? {})) check(`module ${name}`, block);
  for (const [name, configs] of Object.entries<any>(json.provider ?? {})) check(`provider ${name}`, configs);
  if (problems.length > 0) {
    throw new AwsProjectionError(`the AWS part is not independent of what it drops, so planning it would hide something:\n  ${problems.join('\n  ')}`);
  }

  return {
    stack: json,
    dropped: {
      providers: droppedProviders.sort(),
      requiredProviders: requiredProviders.sort(),
      resources: droppedResources.sort(),
      dataSources: droppedData.sort(),
      dependsOn,
    },
  };
}
