import { Testing } from 'cdktf';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { SiloDatabase, type SiloDatabaseProps } from '../../lib/silo-database';
import { awsStack, NETWORK, onlyResource, synthObject } from './helpers';

const ACME_ID = '5b0e8f3a-2c1d-4e6f-8a9b-0c1d2e3f4a5b';
const base: SiloDatabaseProps = {
  slug: 'acme',
  tenantId: ACME_ID,
  plan: 'pro',
  vpcId: NETWORK.vpcId,
  subnetIds: NETWORK.subnetIds,
  allowedSecurityGroupIds: ['sg-0a1b2c3d4e5f60aa1'],
};

function synth(props: Partial<SiloDatabaseProps> = {}) {
  const stack = awsStack();
  const db = new SiloDatabase(stack, 'db', { ...base, ...props });
  return { db, text: Testing.synth(stack), json: synthObject(stack) };
}

describe('SiloDatabase', () => {
  test.each([
    // plan, regulated, class, multi-AZ, backups, PI retention (0 = off), storage, ceiling
    ['starter', false, 'db.t3.micro', false, 7, 0, 20, 100],
    ['pro', false, 'db.t3.medium', false, 14, 7, 50, 500],
    ['enterprise', false, 'db.m6g.large', true, 35, 731, 100, 2000],
    ['starter', true, 'db.t3.micro', false, 30, 0, 20, 100],
    ['pro', true, 'db.t3.medium', false, 30, 7, 50, 500],
  ] as const)('%s plan (regulated: %s) sizes the instance from the plan', (plan, regulated, cls, multiAz, backups, pi, storage, ceiling) => {
    const { text } = synth({ plan, regulated });
    expect(text).toHaveResourceWithProperties(DbInstance, {
      instance_class: cls,
      multi_az: multiAz,
      backup_retention_period: backups,
      allocated_storage: storage,
      max_allocated_storage: ceiling,
      performance_insights_enabled: pi > 0,
    });
    const instance = onlyResource(JSON.parse(text), 'aws_db_instance');
    expect(instance.performance_insights_retention_period).toBe(pi > 0 ? pi : undefined);
  });

  test('is encrypted with its own rotating key, private, protected and keeps no password', () => {
    const { json, text } = synth();
    expect(text).toHaveResourceWithProperties(KmsKey, { enable_key_rotation: true, deletion_window_in_days: 30 });
    const instance = onlyResource(json, 'aws_db_instance');
    const keyName = Object.keys(json.resource.aws_kms_key)[0];
    const keyRef = `\${aws_kms_key.${keyName}.arn}`;
    expect(instance).toMatchObject({
      storage_encrypted: true,
      kms_key_id: keyRef,
      master_user_secret_kms_key_id: keyRef,
      performance_insights_kms_key_id: keyRef,
      manage_master_user_password: true,
      publicly_accessible: false,
      deletion_protection: true,
      skip_final_snapshot: false,
      final_snapshot_identifier: `tenant-acme-final-${ACME_ID}`,
      copy_tags_to_snapshot: true,
      iam_database_authentication_enabled: true,
      enabled_cloudwatch_logs_exports: ['postgresql', 'upgrade'],
      identifier: 'tenant-acme',
      db_name: 'tenant_acme',
    });
    expect(instance).not.toHaveProperty('password');
    expect(Object.keys(json.resource.aws_kms_alias)).toHaveLength(1);
  });

  test('forces SSL in its parameter group', () => {
    const { json } = synth();
    const params = onlyResource(json, 'aws_db_parameter_group');
    expect(params.family).toBe('postgres16');
    expect(params.parameter).toEqual(expect.arrayContaining([{ name: 'rds.force_ssl', value: '1' }]));
  });

  test('admits only the allowed security groups on 5432 and has no egress', () => {
    const { text, json } = synth({ allowedSecurityGroupIds: ['sg-0000000000000aaaa', 'sg-0000000000000bbbb'] });
    expect(text).toHaveResourceWithProperties(SecurityGroup, { vpc_id: NETWORK.vpcId });
    const sg = onlyResource(json, 'aws_security_group');
    expect(sg.ingress).toEqual([
      expect.objectContaining({ from_port: 5432, to_port: 5432, protocol: 'tcp', security_groups: ['sg-0000000000000aaaa', 'sg-0000000000000bbbb'] }),
    ]);
    expect(sg.ingress[0].cidr_blocks ?? []).toEqual([]);
    expect(sg.egress).toEqual([]);
  });

  test('a hyphenated slug becomes an underscore database name', () => {
    const { json } = synth({ slug: 'berlin-analytics' });
    expect(onlyResource(json, 'aws_db_instance')).toMatchObject({ identifier: 'tenant-berlin-analytics', db_name: 'tenant_berlin_analytics' });
  });

  test('explicit props override the plan', () => {
    const { text } = synth({ plan: 'starter', instanceClass: 'db.r6g.large', multiAz: true, backupRetentionDays: 21 });
    expect(text).toHaveResourceWithProperties(DbInstance, { instance_class: 'db.r6g.large', multi_az: true, backup_retention_period: 21, performance_insights_enabled: true });
    expect(text).toHaveResourceWithProperties(DbParameterGroup, { family: 'postgres16' });
  });

  test.each<[string, Partial<SiloDatabaseProps>, RegExp]>([
    ['unsafe slug', { slug: "acme'; drop" }, /not a safe tenant slug/],
    ['unknown plan', { plan: 'gold' as never }, /unknown plan/],
    ['old engine', { engineVersion: '12' }, /PostgreSQL 13 or newer/],
    ['engine garbage', { engineVersion: '16; rm' }, /engineVersion/],
    ['bad class', { instanceClass: 'large' }, /not an RDS instance class/],
    ['tiny storage', { allocatedStorageGb: 5 }, /allocatedStorageGb/],
    ['ceiling below storage', { allocatedStorageGb: 100, maxAllocatedStorageGb: 100 }, /maxAllocatedStorageGb \(100\) must be greater/],
    ['backups off', { backupRetentionDays: 0 }, /backupRetentionDays must be 1-35/],
    ['backups too long', { backupRetentionDays: 36 }, /backupRetentionDays must be 1-35/],
    ['regulated short backups', { regulated: true, backupRetentionDays: 7 }, /at least 30 days/],
    ['regulated unprotected', { regulated: true, deletionProtection: false }, /cannot turn deletion protection off/],
    ['PI retention invalid', { performanceInsightsRetentionDays: 30 as never }, /must be 0, 7 or 731/],
    ['PI on micro', { plan: 'starter', performanceInsightsRetentionDays: 7 }, /does not support Performance Insights/],
    ['one subnet', { subnetIds: ['subnet-1'] }, /at least two subnets/],
    ['no allowed groups', { allowedSecurityGroupIds: [] }, /nothing could reach the database/],
    ['bad database name', { databaseName: 'x"; drop' }, /databaseName/],
    ['reserved master user', { masterUsername: 'postgres' }, /masterUsername/],
    ['bad log retention', { logRetentionDays: 0 }, /logRetentionDays/],
    ['log retention CloudWatch rejects', { logRetentionDays: 17 }, /logRetentionDays must be one of/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  test('an unprotected database is allowed only when asked for explicitly and not regulated', () => {
    expect(synth({ deletionProtection: false }).text).toHaveResourceWithProperties(DbInstance, { deletion_protection: false });
  });
});
