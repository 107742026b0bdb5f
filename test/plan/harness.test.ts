import { join } from 'node:path';
import { BridgeTenant } from '../../lib/bridge-tenant';
import { SiloDatabase } from '../../lib/silo-database';
import { SiloTenant } from '../../lib/silo-tenant';
import { evaluateExpression, offlineStackJson, planOffline, planOfflineTogether, TerraformError } from '../support/terraform';
import { only, projectPlan } from './plan-projection';
import { addOutputs, awsStack, NETWORK, synthJson, type TestTenant } from './test-stacks';

/**
 * The plan tests are only worth something if the harness really runs terraform's checks:
 * these prove that a configuration terraform rejects makes planOffline throw.
 */

function database(id = 'harness') {
  const stack = awsStack(id);
  const db = new SiloDatabase(stack, 'database', {
    slug: 'harness',
    tenantId: '0f5b6c1e-2a4d-4e8f-9b1a-3c5d7e9f1aff',
    plan: 'pro',
    vpcId: NETWORK.vpcId,
    subnetIds: NETWORK.subnetIds,
    allowedSecurityGroupIds: [NETWORK.workloadSecurityGroupId],
  });
  return { stack, db };
}

function planError(json: Record<string, any>): TerraformError {
  try {
    planOffline(json);
  } catch (e) {
    if (e instanceof TerraformError) return e;
    throw e;
  }
  throw new Error('planOffline accepted a configuration terraform should reject');
}

describe('planOffline', () => {
  test('throws at validate when an aws_db_instance has a value the provider rejects', () => {
    // Provider 5.100.0 does not validate storage_type (an unknown type would plan), so the
    // broken value is one it does check: backups are kept at most 35 days.
    const { stack, db } = database();
    db.instance.addOverride('backup_retention_period', 40);
    const error = planError(synthJson(stack));
    expect(error.step).toBe('validate');
    expect(error.message).toMatch(/expected backup_retention_period to be in the range \(0 - 35\), got 40/);
    expect(error.message).toMatch(/aws_db_instance\.database_instance_/);
  });

  test('throws at validate when a reference points at a resource that does not exist', () => {
    const { stack, db } = database();
    db.instance.addOverride('kms_key_id', '${aws_kms_key.missing.arn}');
    const error = planError(synthJson(stack));
    expect(error.step).toBe('validate');
    expect(error.message).toMatch(/Reference to undeclared resource/);
  });

  test('refuses data sources, which would need AWS', () => {
    const json = synthJson(database().stack);
    json.data = { aws_caller_identity: { current: {} } };
    expect(() => planOffline(json)).toThrow(/cannot read data sources.*data\.aws_caller_identity\.current/);
  });

  test('refuses providers the mirror does not hold, instead of failing in terraform init', () => {
    const json = synthJson(database().stack);
    json.terraform.required_providers.kubernetes = { source: 'kubernetes', version: '2.38.0' };
    json.provider.kubernetes = [{ host: 'https://cluster.invalid' }];
    expect(() => planOffline(json)).toThrow(/can install only aws .*not kubernetes; plan the AWS part with awsProjection/);
  });

  test('plans against local state with dummy credentials, whatever backend and credentials the stack has', () => {
    const json = synthJson(database().stack);
    json.terraform.backend = { s3: { bucket: 'state', key: 'k', region: 'us-east-1', use_lockfile: true } };
    json.provider.aws[0].profile = 'production';
    json.provider.aws[0].assume_role = [{ role_arn: 'arn:aws:iam::111122223333:role/deploy' }];
    const offline = offlineStackJson(json, '/tmp/work');
    expect(offline.terraform.backend).toEqual({ local: { path: join('/tmp/work', 'terraform.tfstate') } });
    expect(offline.terraform.required_providers.aws).toEqual(json.terraform.required_providers.aws);
    expect(offline.provider.aws[0]).toEqual({
      region: 'us-east-1',
      access_key: 'offline-test',
      secret_key: 'offline-test',
      skip_credentials_validation: true,
      skip_requesting_account_id: true,
      skip_metadata_api_check: true,
    });
    // The input is not modified.
    expect(json.provider.aws[0].profile).toBe('production');
  });
});

describe('evaluateExpression', () => {
  test('evaluates with terraform itself, literal ${ and %{ included, and fails on what terraform rejects', () => {
    expect(evaluateExpression('jsonencode({"Resource" = "→ aws_kms_key.k.arn", "Template" = "$${x} %%{y}", "n" = [1, true]})')).toBe(
      '{"Resource":"→ aws_kms_key.k.arn","Template":"${x} %{y}","n":[1,true]}',
    );
    expect(evaluateExpression('{"a" = upper("b")}')).toEqual({ a: 'B' });
    expect(() => evaluateExpression('{"Resource" = aws_kms_key.k.arn}')).toThrow(/terraform console could not evaluate/);
  });
});

describe('planOfflineTogether', () => {
  const siloTenant: TestTenant = { id: '3d9e0c4a-7b1f-4a2e-8c5d-6f7a8b9c0d01', slug: 'together-silo', plan: 'pro', model: 'silo' };
  const bridgeTenant: TestTenant = { id: '3d9e0c4a-7b1f-4a2e-8c5d-6f7a8b9c0d02', slug: 'together-bridge', plan: 'starter', model: 'bridge' };

  function siloStack(overrides: Record<string, unknown> = {}) {
    const stack = awsStack('together-silo', siloTenant);
    const silo = new SiloTenant(stack, 'silo', { tenantId: siloTenant.id, slug: siloTenant.slug, plan: siloTenant.plan, vpcId: NETWORK.vpcId, subnetIds: NETWORK.subnetIds, workloadSecurityGroupId: NETWORK.workloadSecurityGroupId });
    for (const [k, v] of Object.entries(overrides)) silo.database.instance.addOverride(k, v);
    addOutputs(stack, silo.hookOutputs);
    return synthJson(stack);
  }
  function bridgeStack() {
    const stack = awsStack('together-bridge', bridgeTenant);
    const bridge = new BridgeTenant(stack, 'bridge', { tenantId: bridgeTenant.id, slug: bridgeTenant.slug, clusterIdentifier: 'tenancy-bridge', databaseName: 'tenants', secretsKmsKeyId: 'alias/tenancy/tenant-secrets' });
    addOutputs(stack, bridge.hookOutputs);
    return synthJson(stack);
  }

  test('gives each stack exactly the plan it gets alone', () => {
    const together = planOfflineTogether({ silo: siloStack(), bridge: bridgeStack() });
    expect(together.together).toBe(true);
    const alone = planOffline(siloStack());
    const silo = together.plan('silo');
    expect(silo.resources).toEqual(alone.resources);
    expect(silo.outputs).toEqual(alone.outputs);
    expect(silo.warnings).toEqual(alone.warnings);
    expect(silo.raw.configuration.provider_config).toEqual(alone.raw.configuration.provider_config);
    expect(projectPlan(silo)).toEqual(projectPlan(alone));
    // Each stack keeps its own provider: region and default tags.
    const secret = only(together.plan('bridge'), 'aws_secretsmanager_secret');
    expect(secret.address).toMatch(/^aws_secretsmanager_secret\.bridge_credentials_[0-9A-F]{8}$/);
    expect(secret.values.tags_all['tenancy:tenant-slug']).toBe('together-bridge');
    expect(together.plan('bridge').raw.configuration.provider_config.aws.expressions.region.constant_value).toBe('us-east-1');
    expect(() => together.plan('nope')).toThrow(/no stack "nope"/);
  });

  test('when one stack is broken, that stack throws its own terraform error and the others still plan', () => {
    const together = planOfflineTogether({ broken: siloStack({ backup_retention_period: 40 }), bridge: bridgeStack() });
    expect(together.together).toBe(false);
    expect(() => together.plan('broken')).toThrow(TerraformError);
    expect(() => together.plan('broken')).toThrow(/expected backup_retention_period to be in the range \(0 - 35\), got 40/);
    expect(together.plan('bridge').resources).toHaveLength(2);
  });
});
