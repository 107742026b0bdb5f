import { Testing, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';

/** A stack with an AWS provider, for composing one construct. */
export function awsStack(): TerraformStack {
  const stack = new TerraformStack(Testing.app(), 'test');
  new AwsProvider(stack, 'aws', { region: 'us-east-1' });
  return stack;
}

/** Synthesized stack as an object (Testing.synth returns JSON text). */
export function synthObject(stack: TerraformStack): Record<string, any> {
  return JSON.parse(Testing.synth(stack));
}

/** The single resource of `type` in a synthesized stack. */
export function onlyResource(json: Record<string, any>, type: string): Record<string, any> {
  const all = Object.values(json.resource?.[type] ?? {});
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0] as Record<string, any>;
}

export const NETWORK = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  subnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'],
} as const;
