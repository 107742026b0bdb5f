import { Testing, TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { tenantTags } from '../../lib/tenant-tags';
import type { Plan, TenancyModel } from '../../lib/registry/tenant-schema';

/** The us-east-1 network of the sample platform.yaml. */
export const NETWORK = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  subnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002', 'subnet-0a1b2c3d4e5f60003'],
  workloadSecurityGroupId: 'sg-0a1b2c3d4e5f60aa1',
} as const;

export interface TestTenant {
  readonly id: string;
  readonly slug: string;
  readonly plan: Plan;
  readonly model: TenancyModel;
}

/**
 * A stack with only the AWS provider (us-east-1). With `tenant`, the provider tags every
 * resource with the tenant, as TenantStack does.
 */
export function awsStack(id: string, tenant?: TestTenant): TerraformStack {
  const stack = new TerraformStack(Testing.app(), id);
  new AwsProvider(stack, 'aws', { region: 'us-east-1', defaultTags: tenant ? [{ tags: tenantTags(tenant) }] : undefined });
  return stack;
}

/** Adds one TerraformOutput per entry (a construct's hookOutputs), so terraform checks the references. */
export function addOutputs(stack: TerraformStack, outputs: Record<string, string | number>): void {
  for (const [name, value] of Object.entries(outputs)) new TerraformOutput(stack, name, { value });
}

/** The stack's Terraform JSON. */
export const synthJson = (stack: TerraformStack): Record<string, any> => JSON.parse(Testing.synth(stack));
