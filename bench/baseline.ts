// The bare-cdktf baseline of the synth benchmark: what a hand-written cdktf app would do to
// emit the same Terraform as the library. It reads the registry with the `yaml` package (no
// schema, no cross-file validation, no policy aspects, no construct layer) and creates the
// provider resources directly in one TerraformStack per tenant plus the platform stacks.
// Run as a child process: `node dist/bench/baseline.js <root> <outdir>`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Fn, LocalBackend, S3Backend, TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { parse } from 'yaml';
import { reportChildResult } from './child-result';

// Raw YAML shapes, trusted as-is: the baseline does no validation on purpose.
interface RawNetwork { vpcId: string; privateSubnetIds: string[]; workloadSecurityGroupId: string }
interface RawState { backend: 'local' | 's3'; directory?: string; bucket?: string; region?: string; keyPrefix?: string; kmsKeyId?: string }
interface RawPlatform { name?: string; controlPlaneRegion: string; regions: Record<string, RawNetwork>; state?: RawState }
interface RawTenant {
  id: string; slug: string; plan: string; model: 'silo' | 'bridge' | 'pool'; region: string;
  status?: string; compliance?: { hipaa?: boolean; pci?: boolean };
}

/** Silo sizing per plan, written out by hand as an app without the library would (cf. lib/plans.ts). */
const SILO_SIZING: Record<string, { instanceClass: string; storage: number; maxStorage: number; backupDays: number; multiAz: boolean; piDays: number }> = {
  free: { instanceClass: 'db.t3.micro', storage: 20, maxStorage: 50, backupDays: 7, multiAz: false, piDays: 0 },
  starter: { instanceClass: 'db.t3.micro', storage: 20, maxStorage: 100, backupDays: 7, multiAz: false, piDays: 0 },
  pro: { instanceClass: 'db.t3.medium', storage: 50, maxStorage: 500, backupDays: 14, multiAz: false, piDays: 7 },
  enterprise: { instanceClass: 'db.m6g.large', storage: 100, maxStorage: 2000, backupDays: 35, multiAz: true, piDays: 731 },
};
const PORT = 5432;
const MANAGED_BY = 'cdktf-tenancy';

function backend(stack: TerraformStack, state: RawState, key: string): void {
  if (state.backend === 'local') {
    new LocalBackend(stack, { path: `../../../${state.directory ?? 'state'}/${key}` });
    return;
  }
  const prefix = state.keyPrefix ?? 'tenancy';
  new S3Backend(stack, { bucket: state.bucket!, region: state.region, key: prefix ? `${prefix}/${key}` : key, encrypt: true, kmsKeyId: state.kmsKeyId })
    .addOverride('use_lockfile', true);
}

function platformStack(app: App, p: RawPlatform, name: string, state: RawState, region: string): void {
  const stack = new TerraformStack(app, `platform-${region}`);
  const net = p.regions[region];
  backend(stack, state, `platform/${region}.tfstate`);
  new AwsProvider(stack, 'aws', { region, defaultTags: [{ tags: { 'tenancy:managed-by': MANAGED_BY, 'tenancy:platform': name } }] });
  const dataKey = new KmsKey(stack, 'data-key', { description: `${name} shared clusters in ${region}`, enableKeyRotation: true, deletionWindowInDays: 30 });
  new KmsAlias(stack, 'data-key-alias', { name: `alias/${name}/shared-data`, targetKeyId: dataKey.keyId });
  const secretsKey = new KmsKey(stack, 'secrets-key', { description: `${name} tenant credentials in ${region}`, enableKeyRotation: true, deletionWindowInDays: 30 });
  new KmsAlias(stack, 'secrets-key-alias', { name: `alias/${name}/tenant-secrets`, targetKeyId: secretsKey.keyId });
  const subnets = new DbSubnetGroup(stack, 'db-subnets', { name: `${name}-shared`, subnetIds: net.privateSubnetIds });
  const sg = new SecurityGroup(stack, 'db-sg', {
    name: `${name}-shared-db`,
    description: 'Shared PostgreSQL clusters: only the cluster workloads',
    vpcId: net.vpcId,
    ingress: [{ description: 'PostgreSQL from cluster workloads', protocol: 'tcp', fromPort: PORT, toPort: PORT, securityGroups: [net.workloadSecurityGroupId] }],
    egress: [],
    revokeRulesOnDelete: true,
  });

  const clusters: [string, string, string][] = [['bridge', `${name}-bridge`, 'tenants'], ['pool', `${name}-pool`, 'pool']];
  if (region === p.controlPlaneRegion) clusters.push(['control_plane', `${name}-control-plane`, 'control_plane']);
  for (const [key, identifier, databaseName] of clusters) {
    const params = new RdsClusterParameterGroup(stack, `${key}-params`, {
      name: `${identifier}-aurora-pg16`,
      family: 'aurora-postgresql16',
      description: `${identifier}: SSL only, connection logging`,
      parameter: [
        { name: 'rds.force_ssl', value: '1' },
        { name: 'password_encryption', value: 'scram-sha-256' },
        { name: 'log_connections', value: '1' },
        { name: 'log_disconnections', value: '1' },
      ],
      lifecycle: { createBeforeDestroy: true },
    });
    const cluster = new RdsCluster(stack, `${key}-cluster`, {
      clusterIdentifier: identifier, engine: 'aurora-postgresql', engineVersion: '16.6', databaseName,
      masterUsername: 'tenancy_admin', manageMasterUserPassword: true, masterUserSecretKmsKeyId: dataKey.arn,
      storageEncrypted: true, kmsKeyId: dataKey.arn, dbSubnetGroupName: subnets.name, vpcSecurityGroupIds: [sg.id],
      dbClusterParameterGroupName: params.name, iamDatabaseAuthenticationEnabled: true, backupRetentionPeriod: 14,
      copyTagsToSnapshot: true, deletionProtection: true, skipFinalSnapshot: false, finalSnapshotIdentifier: `${identifier}-final`,
      enabledCloudwatchLogsExports: ['postgresql'],
    });
    for (let i = 0; i < 2; i++) {
      new RdsClusterInstance(stack, `${key}-instance-${i}`, {
        identifier: `${identifier}-${i}`, clusterIdentifier: cluster.id, engine: 'aurora-postgresql', engineVersion: '16.6',
        instanceClass: 'db.r6g.large', publiclyAccessible: false, performanceInsightsEnabled: true,
        performanceInsightsKmsKeyId: dataKey.arn, autoMinorVersionUpgrade: true, caCertIdentifier: 'rds-ca-rsa2048-g1',
      });
    }
    new TerraformOutput(stack, `${key}_cluster_identifier`, { value: identifier });
    new TerraformOutput(stack, `${key}_endpoint`, { value: cluster.endpoint });
    new TerraformOutput(stack, `${key}_reader_endpoint`, { value: cluster.readerEndpoint });
    new TerraformOutput(stack, `${key}_database`, { value: databaseName });
    new TerraformOutput(stack, `${key}_master_secret_arn`, { value: cluster.masterUserSecret.get(0).secretArn });
  }
  new TerraformOutput(stack, 'tenant_secrets_key_arn', { value: secretsKey.arn });
}

function tenantStack(app: App, p: RawPlatform, name: string, state: RawState, t: RawTenant): void {
  const stack = new TerraformStack(app, `tenant-${t.slug}`);
  const sql = t.slug.replace(/-/g, '_');
  const prefix = `tenant-${t.slug}`;
  backend(stack, state, `tenants/${t.id}.tfstate`);
  new AwsProvider(stack, 'aws', {
    region: t.region,
    defaultTags: [{ tags: { 'tenancy:tenant-id': t.id, 'tenancy:tenant-slug': t.slug, 'tenancy:model': t.model, 'tenancy:plan': t.plan, 'tenancy:managed-by': MANAGED_BY } }],
  });
  const outputs: Record<string, string | number> = { tenant_id: t.id, slug: t.slug, model: t.model, plan: t.plan, region: t.region };

  if (t.model === 'silo') {
    const net = p.regions[t.region];
    const size = SILO_SIZING[t.plan];
    const regulated = Boolean(t.compliance?.hipaa || t.compliance?.pci);
    const key = new KmsKey(stack, 'key', {
      description: `Encrypts the database, its snapshots, its master secret and Performance Insights of tenant ${t.slug}`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
    });
    new KmsAlias(stack, 'key-alias', { name: `alias/${prefix}`, targetKeyId: key.keyId });
    const subnets = new DbSubnetGroup(stack, 'subnets', { name: prefix, description: `Private subnets of tenant ${t.slug}'s database`, subnetIds: net.privateSubnetIds });
    const sg = new SecurityGroup(stack, 'sg', {
      name: `${prefix}-db`,
      description: `PostgreSQL of tenant ${t.slug}: only the cluster's workloads`,
      vpcId: net.vpcId,
      ingress: [{ description: 'PostgreSQL from cluster workloads (PgBouncer)', protocol: 'tcp', fromPort: PORT, toPort: PORT, securityGroups: [net.workloadSecurityGroupId] }],
      egress: [],
      revokeRulesOnDelete: true,
    });
    const params = new DbParameterGroup(stack, 'params', {
      name: `${prefix}-pg16`,
      family: 'postgres16',
      description: `Tenant ${t.slug}: SSL only, connection and slow-query logging`,
      parameter: [
        { name: 'rds.force_ssl', value: '1' },
        { name: 'password_encryption', value: 'scram-sha-256' },
        { name: 'log_connections', value: '1' },
        { name: 'log_disconnections', value: '1' },
        { name: 'log_min_duration_statement', value: '1000' },
      ],
      lifecycle: { createBeforeDestroy: true },
    });
    const logs = ['postgresql', 'upgrade'].map((log) => new CloudwatchLogGroup(stack, `log-${log}`, { name: `/aws/rds/instance/${prefix}/${log}`, retentionInDays: 365 }));
    const pi = size.piDays > 0;
    const db = new DbInstance(stack, 'db', {
      identifier: prefix, engine: 'postgres', engineVersion: '16', instanceClass: size.instanceClass,
      allocatedStorage: size.storage, maxAllocatedStorage: size.maxStorage, storageType: 'gp3', storageEncrypted: true,
      kmsKeyId: key.arn, dbName: `tenant_${sql}`, username: 'tenancy_admin', manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: key.arn, iamDatabaseAuthenticationEnabled: true, dbSubnetGroupName: subnets.name,
      vpcSecurityGroupIds: [sg.id], parameterGroupName: params.name, publiclyAccessible: false, multiAz: size.multiAz,
      backupRetentionPeriod: Math.max(size.backupDays, regulated ? 30 : 0), copyTagsToSnapshot: true,
      deleteAutomatedBackups: false, deletionProtection: true, skipFinalSnapshot: false, finalSnapshotIdentifier: `${prefix}-final`,
      performanceInsightsEnabled: pi, performanceInsightsKmsKeyId: pi ? key.arn : undefined,
      performanceInsightsRetentionPeriod: pi ? size.piDays : undefined, enabledCloudwatchLogsExports: ['postgresql', 'upgrade'],
      autoMinorVersionUpgrade: true, caCertIdentifier: 'rds-ca-rsa2048-g1', dependsOn: logs,
    });
    Object.assign(outputs, {
      db_identifier: db.identifier, db_address: db.address, db_port: db.port, db_name: `tenant_${sql}`,
      db_master_secret_arn: db.masterUserSecret.get(0).secretArn, db_kms_key_arn: key.arn,
    });
  } else if (t.model === 'bridge') {
    const cluster = `${name}-bridge`;
    const secret = new SecretsmanagerSecret(stack, 'credentials', {
      name: `tenancy/tenants/${t.slug}/db-credentials`,
      description: `Login role tenant_${sql}_app of tenant ${t.slug} on ${cluster}`,
      kmsKeyId: `alias/${name}/tenant-secrets`,
      recoveryWindowInDays: 30,
    });
    new SecretsmanagerSecretVersion(stack, 'credentials-value', {
      secretId: secret.id,
      secretString: Fn.jsonencode({
        username: `tenant_${sql}_app`,
        password: Fn.replace(Fn.join('', [Fn.uuid(), Fn.uuid()]), '-', ''),
        dbname: 'tenants',
        schema: `tenant_${sql}`,
        dbClusterIdentifier: cluster,
        engine: 'postgres',
      }),
      lifecycle: { ignoreChanges: ['secret_string'] },
    });
    Object.assign(outputs, { cluster_identifier: cluster, db_name: 'tenants', schema: `tenant_${sql}`, role: `tenant_${sql}_app`, credentials_secret_arn: secret.arn });
  } else {
    Object.assign(outputs, { cluster_identifier: `${name}-pool`, db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' });
  }
  for (const [key, value] of Object.entries(outputs)) new TerraformOutput(stack, key, { value });
}

/** Builds and synthesizes every stack of the registry at `root` into `outdir`; returns the stack count. */
export function synthesizeBaseline(root: string, outdir: string): number {
  const platform = parse(readFileSync(join(root, 'platform.yaml'), 'utf8')) as RawPlatform;
  const name = platform.name ?? 'tenancy';
  const state = platform.state ?? { backend: 'local', directory: 'state' };
  const tenantsDir = join(root, 'tenants');
  const tenants = readdirSync(tenantsDir)
    .filter((f) => f.endsWith('.yaml') && !f.endsWith('.values.yaml'))
    .map((f) => parse(readFileSync(join(tenantsDir, f), 'utf8')) as RawTenant)
    .filter((t) => t.status !== 'offboarded');
  const regions = [...new Set([platform.controlPlaneRegion, ...tenants.map((t) => t.region)])].sort();

  const app = new App({ outdir });
  for (const region of regions) platformStack(app, platform, name, state, region);
  for (const t of tenants) tenantStack(app, platform, name, state, t);
  app.synth();
  return regions.length + tenants.length;
}

if (require.main === module) {
  const [root, outdir] = process.argv.slice(2);
  if (!root || !outdir) throw new Error('usage: baseline.js <root> <outdir>');
  reportChildResult(synthesizeBaseline(root, outdir));
}
