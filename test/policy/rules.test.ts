import { Testing, TerraformStack } from 'cdktf';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import type { PolicyRule } from '../../lib/policy/policy-rule';
import { PolicyAspect } from '../../lib/policy/policy-aspect';
import { NoPlaintextDbPasswordRule } from '../../lib/policy/rules/no-plaintext-db-password';
import { NoPublicDatabaseRule } from '../../lib/policy/rules/no-public-database';
import { TenantTagsRule } from '../../lib/policy/rules/tenant-tags';
import { tenantTags } from '../../lib/tenant-tags';

type Fixture = (stack: TerraformStack) => void;
const provider = (tags?: Record<string, string>) => (s: TerraformStack) =>
  new AwsProvider(s, 'aws', { region: 'us-east-1', defaultTags: tags ? [{ tags }] : undefined });
const db = (extra: Record<string, unknown>) => (s: TerraformStack) =>
  new DbInstance(s, 'db', { instanceClass: 'db.t3.micro', engine: 'postgres', publiclyAccessible: false, manageMasterUserPassword: true, ...extra });

/** For every rule: a compliant fixture that passes and a non-compliant one that fails with the rule id. */
const cases: [PolicyRule, Fixture, Fixture][] = [
  [
    TenantTagsRule,
    provider(tenantTags({ id: '00000000-0000-4000-8000-000000000001', slug: 'acme', model: 'pool', plan: 'pro' })),
    provider({ team: 'x' }),
  ],
  [NoPlaintextDbPasswordRule, db({}), db({ manageMasterUserPassword: undefined, password: 'hunter2hunter2' })],
  [NoPlaintextDbPasswordRule, (s) => new RdsCluster(s, 'c', { engine: 'aurora-postgresql', manageMasterUserPassword: true }), (s) => new RdsCluster(s, 'c', { engine: 'aurora-postgresql', masterPassword: 'hunter2hunter2' })],
  [NoPublicDatabaseRule, db({}), db({ publiclyAccessible: true })],
  [NoPublicDatabaseRule, (s) => new RdsClusterInstance(s, 'i', { clusterIdentifier: 'c', instanceClass: 'db.r6g.large', engine: 'aurora-postgresql', publiclyAccessible: false }), (s) => new RdsClusterInstance(s, 'i', { clusterIdentifier: 'c', instanceClass: 'db.r6g.large', engine: 'aurora-postgresql' })],
];

function run(rule: PolicyRule, fixture: Fixture): TerraformStack {
  const stack = new TerraformStack(Testing.app(), 'policy');
  if (rule !== TenantTagsRule) provider()(stack);
  fixture(stack);
  PolicyAspect.applyTo(stack, [rule]);
  return stack;
}

describe.each(cases)('$id', (rule, pass, fail) => {
  test('has an id and an explanation', () => {
    expect(rule.id).toMatch(/^[A-Z0-9]+(-[A-Z0-9]+)+$/);
    expect(rule.explanation.length).toBeGreaterThan(20);
  });
  test('the compliant fixture synthesizes', () => {
    expect(() => Testing.fullSynth(run(rule, pass))).not.toThrow();
  });
  test('the non-compliant fixture fails the synth with the rule id and construct path', () => {
    expect(() => Testing.fullSynth(run(rule, fail))).toThrow(new RegExp(`\\[${rule.id}\\] policy/`));
  });
});
