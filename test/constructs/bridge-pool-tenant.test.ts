import { Testing } from 'cdktf';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { BridgeTenant, type BridgeTenantProps } from '../../lib/bridge-tenant';
import { PoolTenant, type PoolTenantProps } from '../../lib/pool-tenant';
import { awsStack, onlyResource, synthObject } from './helpers';

const bridge: BridgeTenantProps = {
  tenantId: '00000000-0000-4000-8000-000000000001',
  slug: 'globex-eu',
  clusterIdentifier: 'tenancy-bridge',
  databaseName: 'tenants',
  secretsKmsKeyId: 'alias/tenancy/tenant-secrets',
};

describe('BridgeTenant', () => {
  test('names the schema and role from the slug and keeps credentials in an encrypted secret', () => {
    const stack = awsStack();
    const t = new BridgeTenant(stack, 'bridge', bridge);
    expect(t.schemaName).toBe('tenant_globex_eu');
    expect(t.roleName).toBe('tenant_globex_eu_app');
    const text = Testing.synth(stack);
    expect(text).toHaveResourceWithProperties(SecretsmanagerSecret, {
      name: 'tenancy/tenants/00000000-0000-4000-8000-000000000001/db-credentials',
      kms_key_id: 'alias/tenancy/tenant-secrets',
      recovery_window_in_days: 30,
    });
    const version = onlyResource(JSON.parse(text), 'aws_secretsmanager_secret_version');
    // The password is a Terraform expression evaluated at apply time, never a literal.
    expect(version.secret_string).toContain('uuid()');
    expect(version.secret_string).not.toMatch(/"password" = "[^"]+"/);
    expect(version.lifecycle).toEqual({ ignore_changes: ['secret_string'] });
    expect(t.hookOutputs).toMatchObject({ cluster_identifier: 'tenancy-bridge', db_name: 'tenants', schema: 'tenant_globex_eu', role: 'tenant_globex_eu_app' });
  });

  test.each<[string, Partial<BridgeTenantProps>, RegExp]>([
    ['unsafe slug', { slug: 'Globex' }, /not a safe tenant slug/],
    ['no recovery window', { secretRecoveryWindowDays: 0 }, /recoveryWindowDays must be 7-30/],
    ['a recovery window over 30 days', { secretRecoveryWindowDays: 31 }, /recoveryWindowDays must be 7-30/],
    ['bad cluster id', { clusterIdentifier: 'Bridge_1' }, /clusterIdentifier/],
    ['bad database', { databaseName: 'tenants; drop' }, /databaseName/],
    ['no KMS key', { secretsKmsKeyId: '' }, /kmsKeyId is required/],
  ])('rejects %s', (_n, props, message) => {
    expect(() => new BridgeTenant(awsStack(), 'bridge', { ...bridge, ...props })).toThrow(message);
  });
});

const pool: PoolTenantProps = {
  tenantId: '00000000-0000-4000-8000-00000000000A',
  slug: 'acme',
  clusterIdentifier: 'tenancy-pool',
  databaseName: 'pool',
  appRole: 'pool_app',
};

describe('PoolTenant', () => {
  test('creates no AWS resource and exposes its slice of the pool', () => {
    const stack = awsStack();
    const t = new PoolTenant(stack, 'pool', pool);
    expect(synthObject(stack).resource).toBeUndefined();
    expect(t.tenantId).toBe('00000000-0000-4000-8000-00000000000a');
    expect(t.hookOutputs).toEqual({ cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' });
  });

  test.each<[string, Partial<PoolTenantProps>, RegExp]>([
    ['non-UUID tenant id', { tenantId: "1' OR '1'='1" }, /must be a UUID/],
    ['unsafe slug', { slug: 'a--b' }, /not a safe tenant slug/],
    ['bad app role', { appRole: 'Pool App' }, /appRole/],
    ['un-namespaced setting', { tenantSetting: 'tenant_id' }, /tenantSetting/],
    ['bad cluster id', { clusterIdentifier: '' }, /clusterIdentifier/],
    ['bad database', { databaseName: 'Pool' }, /databaseName/],
  ])('rejects %s', (_n, props, message) => {
    expect(() => new PoolTenant(awsStack(), 'pool', { ...pool, ...props })).toThrow(message);
  });
});
