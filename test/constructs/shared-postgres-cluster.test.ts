import { Testing } from 'cdktf';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { SharedPostgresCluster, type SharedPostgresClusterProps } from '../../lib/shared-postgres-cluster';
import { awsStack, synthObject } from './helpers';

const props: SharedPostgresClusterProps = {
  identifier: 'tenancy-bridge',
  databaseName: 'tenants',
  kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000',
  dbSubnetGroupName: 'tenancy-shared',
  securityGroupIds: ['sg-0a1b2c3d4e5f60aa1'],
};

describe('SharedPostgresCluster', () => {
  test('is encrypted, protected, SSL-only and manages its master password', () => {
    const stack = awsStack();
    new SharedPostgresCluster(stack, 'bridge', props);
    const text = Testing.synth(stack);
    expect(text).toHaveResourceWithProperties(RdsCluster, {
      engine: 'aurora-postgresql',
      storage_encrypted: true,
      kms_key_id: props.kmsKeyArn,
      manage_master_user_password: true,
      deletion_protection: true,
      skip_final_snapshot: false,
      backup_retention_period: 14,
    });
    expect(text).toHaveResourceWithProperties(RdsClusterInstance, { publicly_accessible: false, performance_insights_enabled: true });
    const json = synthObject(stack);
    expect(Object.keys(json.resource.aws_rds_cluster_instance)).toHaveLength(2);
    const params = Object.values(json.resource.aws_rds_cluster_parameter_group)[0] as any;
    expect(params.parameter).toEqual(expect.arrayContaining([{ name: 'rds.force_ssl', value: '1' }]));
    expect(JSON.stringify(json.resource.aws_rds_cluster)).not.toContain('master_password');
  });

  test.each<[string, Partial<SharedPostgresClusterProps>, RegExp]>([
    ['no instances', { instances: 0 }, /instances must be 1-15/],
    ['backups off', { backupRetentionDays: 0 }, /backupRetentionDays must be 1-35/],
  ])('rejects %s', (_n, p, message) => {
    expect(() => new SharedPostgresCluster(awsStack(), 'c', { ...props, ...p })).toThrow(message);
  });
});
