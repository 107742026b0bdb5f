import { Testing } from 'cdktf';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { TenantCredentialsSecret, type TenantCredentialsSecretProps } from '../../lib/tenant-credentials-secret';
import { awsStack, onlyResource, synthObject } from './helpers';

const props: TenantCredentialsSecretProps = {
  slug: 'globex-eu',
  tenantId: '5b0c1f8e-2d4a-4c6b-9e7f-0a1b2c3d4e5f',
  kmsKeyId: 'alias/tenancy/tenant-secrets',
  server: 'tenancy-bridge',
  databaseName: 'tenants',
};

describe('TenantCredentialsSecret', () => {
  test('an encrypted secret of the login role, with a password generated at apply and then left alone', () => {
    const stack = awsStack();
    const secret = new TenantCredentialsSecret(stack, 'credentials', { ...props, connection: { schema: 'tenant_globex_eu', port: 5432 } });
    expect(secret.username).toBe('tenant_globex_eu_app');
    const text = Testing.synth(stack);
    expect(text).toHaveResourceWithProperties(SecretsmanagerSecret, {
      // Keyed by the immutable id: a slug re-onboarded while its old secret awaits deletion gets a new name.
      name: 'tenancy/tenants/5b0c1f8e-2d4a-4c6b-9e7f-0a1b2c3d4e5f/db-credentials',
      description: 'Login role tenant_globex_eu_app of tenant globex-eu on tenancy-bridge',
      kms_key_id: 'alias/tenancy/tenant-secrets',
      recovery_window_in_days: 30,
    });
    const json = JSON.parse(text);
    const version = onlyResource(json, 'aws_secretsmanager_secret_version');
    expect(version.secret_id).toBe(`\${aws_secretsmanager_secret.${Object.keys(json.resource.aws_secretsmanager_secret)[0]}.id}`);
    // username, password, dbname first, then the connection details in order, engine last.
    expect(version.secret_string).toBe(
      '${jsonencode({"username" = "tenant_globex_eu_app", "password" = replace(join("", [uuid(), uuid()]), "-", ""), "dbname" = "tenants", "schema" = "tenant_globex_eu", "port" = 5432, "engine" = "postgres"})}',
    );
    expect(version.lifecycle).toEqual({ ignore_changes: ['secret_string'] });
  });

  test('the secret is the construct; its value is the sibling <id>-value (the logical ids deployed bridge tenants have)', () => {
    const stack = awsStack();
    const secret = new TenantCredentialsSecret(stack, 'credentials', props);
    expect(secret.node.path).toBe('test/credentials');
    expect(secret.value.node.path).toBe('test/credentials-value');
    const json = synthObject(stack);
    expect(Object.keys(json.resource.aws_secretsmanager_secret)).toEqual(['credentials']);
    expect(Object.keys(json.resource.aws_secretsmanager_secret_version)).toEqual(['credentials-value']);
  });

  test('the recovery window can be shortened to 7 days', () => {
    const stack = awsStack();
    new TenantCredentialsSecret(stack, 'credentials', { ...props, recoveryWindowDays: 7 });
    expect(onlyResource(synthObject(stack), 'aws_secretsmanager_secret').recovery_window_in_days).toBe(7);
  });

  test.each<[string, Partial<TenantCredentialsSecretProps>, RegExp]>([
    ['an unsafe slug', { slug: 'a_b' }, /not a safe tenant slug/],
    ['no recovery window', { recoveryWindowDays: 0 }, /recoveryWindowDays must be 7-30/],
    ['a recovery window over 30 days', { recoveryWindowDays: 31 }, /recoveryWindowDays must be 7-30/],
    ['a fractional recovery window', { recoveryWindowDays: 7.5 }, /recoveryWindowDays must be 7-30/],
    ['no tenant id', { tenantId: '' }, /tenantId "" must be a UUID/],
    ['a tenant id that is not a UUID', { tenantId: '../other/db-credentials' }, /must be a UUID/],
    ['no KMS key', { kmsKeyId: '' }, /kmsKeyId is required/],
    ['a database name that is not an identifier', { databaseName: 'Tenants' }, /databaseName/],
    ['connection details that overwrite the credentials', { connection: { password: 'hunter2', engine: 'mysql' } }, /connection cannot set password, engine/],
  ])('rejects %s', (_n, extra, message) => {
    expect(() => new TenantCredentialsSecret(awsStack(), 'credentials', { ...props, ...extra })).toThrow(message);
  });
});
