import type { IConstruct } from 'constructs';
import { TerraformStack, Testing } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { StackInspector } from '../../lib/policy/inspect';
import { applyCompliance } from '../../lib/policy/packs';
import type { PolicyAspect } from '../../lib/policy/policy-aspect';
import type { PackName, TenantProfile } from '../../lib/policy/policy-rule';
import type { Registry } from '../../lib/registry/load-registry';
import type { PlatformConfig } from '../../lib/registry/platform-schema';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { tenantTags } from '../../lib/tenant-tags';
import { TenantStack } from '../../stacks/tenant-stack';
import { loadSampleRegistry } from '../support/sample-registry';

type Json = Record<string, any>;

export const registry: Registry = loadSampleRegistry();

/** A sample tenant of the registry, with optional changes (applied without the registry's checks: the rules are the last line of defence). */
export function sample(slug: string, changes: Partial<Tenant> = {}): Tenant {
  const t = registry.tenants.find((x) => x.slug === slug);
  if (!t) throw new Error(`sample tenant ${slug} missing`);
  return { ...t, ...changes, compliance: { ...t.compliance, ...changes.compliance } };
}

/** A stack under test and the policy aspect that checks it. */
export interface Fixture {
  readonly stack: TerraformStack;
  readonly policy: PolicyAspect;
}

/** The TenantStack of a (possibly changed) sample tenant, with its packs; `edit` then changes constructs (escape hatches). */
export function tenantStack(tenant: Tenant, edit: (s: TenantStack) => void = () => undefined, platform: PlatformConfig = registry.platform): Fixture & { stack: TenantStack } {
  const stack = new TenantStack(Testing.app(), { tenant, platform });
  edit(stack);
  return { stack, policy: stack.policy };
}

/** A bare stack built directly from constructs, with the packs of `tenant` (or the given ones) applied. */
export function bareStack(tenant: TenantProfile, build: (s: TerraformStack) => void, packs?: readonly PackName[]): Fixture {
  const stack = new TerraformStack(Testing.app(), `tenant-${tenant.slug}`);
  new AwsProvider(stack, 'aws', { region: tenant.region, defaultTags: [{ tags: tenantTags(tenant as Pick<Tenant, 'id' | 'slug' | 'model' | 'plan'>) }] });
  build(stack);
  return { stack, policy: applyCompliance(stack, { tenant, packs }) };
}

/** Every construct of a stack of a class. */
export function find<T>(stack: TerraformStack, type: abstract new (...args: any[]) => T): T[] {
  return stack.node.findAll().filter((c): c is T & IConstruct => c instanceof type);
}

/**
 * An escape hatch on a Helm release: replaces its values documents by `change(current values)`,
 * as someone editing the construct's values by hand would (the constructs' own checks are past).
 */
export function overrideReleaseValues(stack: TenantStack, chart: 'tenant-platform' | 'tenant-app', change: (values: Json) => Json | void): void {
  const release = chart === 'tenant-platform' ? stack.namespace!.release : stack.app!.release;
  const inspector = new StackInspector(stack, 'tenant');
  const values = structuredClone(inspector.releaseValues(release)!);
  const changed = change(values) ?? values;
  release.values = [JSON.stringify(changed)];
}

/** Synthesizes a stack as `cdktf synth` would (aspects, then validations); throws on policy errors. */
export const synth = (f: Fixture): string => Testing.synth(f.stack, true);
