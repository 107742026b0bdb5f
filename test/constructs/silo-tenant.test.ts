import { Testing, TerraformOutput } from 'cdktf';
import { SiloTenant, type SiloTenantProps } from '../../lib/silo-tenant';
import { awsStack, NETWORK, onlyResource } from './helpers';

const silo: SiloTenantProps = {
  tenantId: '00000000-0000-4000-8000-000000000002',
  slug: 'initech-eu',
  plan: 'pro',
  vpcId: NETWORK.vpcId,
  subnetIds: NETWORK.subnetIds,
  workloadSecurityGroupId: 'sg-0a1b2c3d4e5f60aa1',
};

function synth(props: Partial<SiloTenantProps> = {}) {
  const stack = awsStack();
  const tenant = new SiloTenant(stack, 'silo', { ...silo, ...props });
  for (const [name, value] of Object.entries(tenant.hookOutputs)) new TerraformOutput(stack, name, { value });
  const text = Testing.synth(stack);
  const json = JSON.parse(text) as Record<string, any>;
  const ref = (type: string, attribute: string) => `\${${type}.${Object.keys(json.resource[type])[0]}.${attribute}}`;
  return { tenant, text, json, ref };
}

describe('SiloTenant', () => {
  test('the application role gets its own credentials secret, encrypted with the silo database\'s own key', () => {
    const { tenant, json, ref } = synth();
    expect(tenant.appCredentials.username).toBe('tenant_initech_eu_app');
    expect(onlyResource(json, 'aws_secretsmanager_secret')).toEqual({
      name: 'tenancy/tenants/00000000-0000-4000-8000-000000000002/db-credentials',
      description: 'Login role tenant_initech_eu_app of tenant initech-eu on tenant-initech-eu',
      kms_key_id: ref('aws_kms_key', 'arn'),
      recovery_window_in_days: 30,
    });
    // The same key as the instance's storage and its master secret, not the account default or the platform's.
    expect(onlyResource(json, 'aws_db_instance').master_user_secret_kms_key_id).toBe(ref('aws_kms_key', 'arn'));
  });

  test('the password is generated at apply and never in the synthesized JSON; the value is then left to rotation', () => {
    const { text, json, ref } = synth();
    const version = onlyResource(json, 'aws_secretsmanager_secret_version');
    expect(version.secret_id).toBe(ref('aws_secretsmanager_secret', 'id'));
    expect(version.lifecycle).toEqual({ ignore_changes: ['secret_string'] });
    const instance = ref('aws_db_instance', 'x').replace(/^\$\{|\.x\}$/g, '');
    expect(version.secret_string).toBe(
      '${jsonencode({"username" = "tenant_initech_eu_app", "password" = replace(join("", [uuid(), uuid()]), "-", ""), "dbname" = "tenant_initech_eu", ' +
        `"host" = ${instance}.address, "port" = ${instance}.port, "schema" = "tenant_initech_eu", "dbInstanceIdentifier" = "tenant-initech-eu", "engine" = "postgres"})}`,
    );
    // No password literal anywhere: neither a JSON "password": "…" nor an HCL "password" = "…".
    expect(text).not.toMatch(/"password\\?"\s*[:=]\s*\\?"/);
    expect(text).not.toMatch(/"password"\s*:/);
  });

  test('the secret names the database the overrides choose, and the recovery window can be shortened', () => {
    const { json } = synth({ database: { databaseName: 'app' }, secretRecoveryWindowDays: 7 });
    expect(onlyResource(json, 'aws_secretsmanager_secret').recovery_window_in_days).toBe(7);
    expect(onlyResource(json, 'aws_secretsmanager_secret_version').secret_string).toContain('"dbname" = "app"');
  });

  test.each([0, 6, 31])('rejects a recovery window of %d days', (days) => {
    expect(() => synth({ secretRecoveryWindowDays: days })).toThrow(/recoveryWindowDays must be 7-30/);
  });

  test('hook outputs: the application role\'s secret next to the master secret, for the provisioning hook', () => {
    const { json, ref } = synth();
    const outputs = Object.fromEntries(Object.entries(json.output).map(([name, o]: [string, any]) => [name, o.value]));
    expect(Object.keys(outputs).sort()).toEqual(['app_credentials_secret_arn', 'db_address', 'db_identifier', 'db_kms_key_arn', 'db_master_secret_arn', 'db_name', 'db_port']);
    expect(outputs.app_credentials_secret_arn).toBe(ref('aws_secretsmanager_secret', 'arn'));
    expect(outputs.db_master_secret_arn).toBe(ref('aws_db_instance', 'master_user_secret[0].secret_arn'));
    expect(outputs.db_kms_key_arn).toBe(ref('aws_kms_key', 'arn'));
  });
});
