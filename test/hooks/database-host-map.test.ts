import { applyDatabaseHostMap, DatabaseHostMapError, parseDatabaseHostMap } from '../../lib/hooks/database-host-map';
import { parseDeployOutputs } from '../../lib/hooks/deploy-outputs';

/** `tenancy post-apply --database-host-map`: where the hooks connect when the outputs' hosts are a local AWS API's. */
const outputs = parseDeployOutputs({
  'platform-us-east-1': {
    bridge_endpoint: 'tenancy-bridge.cluster-abc.us-east-1.rds.amazonaws.com', bridge_database: 'tenants', bridge_master_secret_arn: 'arn:b', bridge_port: 5432,
    control_plane_endpoint: 'cp.example.net', control_plane_database: 'control_plane', control_plane_master_secret_arn: 'arn:c',
  },
  'tenant-sierra': {
    tenant_id: '7a1e4c3b-9d2f-4b6a-8c5e-1f0a2b3c4d01', slug: 'sierra', model: 'silo', plan: 'pro', region: 'us-east-1',
    db_identifier: 'tenant-sierra', db_address: 'tenant-sierra.abc.us-east-1.rds.amazonaws.com', db_port: 5432, db_name: 'tenant_sierra', db_master_secret_arn: 'arn:s', db_kms_key_arn: 'arn:k',
  },
});

test('a *.suffix pattern maps every matching host (and its port); other hosts are left alone', () => {
  const mapped = applyDatabaseHostMap(outputs, parseDatabaseHostMap(['*.rds.amazonaws.com=localhost:6543']));
  expect(mapped.platforms.get('us-east-1')!.bridge).toMatchObject({ endpoint: 'localhost', port: 6543 });
  expect(mapped.platforms.get('us-east-1')!.controlPlane).toMatchObject({ endpoint: 'cp.example.net', port: 5432 });
  expect(mapped.tenants[0]).toMatchObject({ db_address: 'localhost', db_port: 6543 });
});

test('an exact host keeps the outputs\' port without one; the first matching entry wins; comma-separated entries work', () => {
  const mapped = applyDatabaseHostMap(outputs, parseDatabaseHostMap(['cp.example.net=127.0.0.1', '*.rds.amazonaws.com=a:1,*.amazonaws.com=b:2']));
  expect(mapped.platforms.get('us-east-1')!.controlPlane).toMatchObject({ endpoint: '127.0.0.1', port: 5432 });
  expect(mapped.tenants[0]).toMatchObject({ db_address: 'a', db_port: 1 });
});

test.each(['localhost:5432', '*.rds.amazonaws.com=', 'a=b:99999', 'a=b;rm -rf /', '*.x=${var.y}'])('a malformed entry %p is refused with the expected form', (spec) => {
  expect(() => parseDatabaseHostMap([spec])).toThrow(DatabaseHostMapError);
});
