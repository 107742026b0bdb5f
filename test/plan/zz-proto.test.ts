import { Testing, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { SiloTenant } from '../../lib/silo-tenant';
import { planOffline } from '../../test/support/terraform';
test('proto', () => {
  const app = Testing.app();
  const stack = new TerraformStack(app, 's');
  new AwsProvider(stack, 'aws', { region: 'us-east-1', defaultTags: [{ tags: { a: 'b' } }] });
  new SiloTenant(stack, 'silo', { tenantId: '748c14ae-d5b9-4538-874e-3def38dacb74', slug: 'acme', plan: 'pro', vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: ['subnet-0a1b2c3d4e5f60001','subnet-0a1b2c3d4e5f60002'], workloadSecurityGroupId: 'sg-0a1b2c3d4e5f60aa1' });
  const json = JSON.parse(Testing.synth(stack));
  console.log(JSON.stringify(json.terraform, null, 1));
  const t = Date.now();
  const r = planOffline(json);
  console.log(Date.now() - t, JSON.stringify(r, null, 1));
});
