// The bare-cdktf baseline of the synth benchmark: what a hand-written cdktf app would do to
// emit the same Terraform as the library. It reads the registry with the `yaml` package (no
// schema, no cross-file validation, no policy aspects, no construct layer) and creates the
// provider resources directly in one TerraformStack per tenant plus the platform stacks; with
// platform.yaml `kubernetes.enabled` (not false) also each tenant's Kubernetes side: the EKS data
// sources, the helm provider, the IRSA role of the secret sync and the two Helm releases.
// Like an app that uses the library only as a source of facts, it imports the library's pure
// data and functions (PLAN_PROFILES of lib/plans.ts, the PgBouncer renderer of
// lib/pgbouncer/pgbouncer-config.ts) instead of copying them, and nothing else: no construct,
// no registry loader or schema, no aspect. (Not even lib/naming.ts: it loads the zod schema.)
// Run as a child process: `node dist/bench/baseline.js <root> <outdir>`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Fn, LocalBackend, S3Backend, TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster';
import { DataAwsEksClusterAuth } from '@cdktf/provider-aws/lib/data-aws-eks-cluster-auth';
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { Route53Zone } from '@cdktf/provider-aws/lib/route53-zone';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { Release } from '@cdktf/provider-helm/lib/release';
import { parse } from 'yaml';
import { PGBOUNCER_DEFAULT_PORT, pgbouncerSettingsForPlan, renderPgbouncerIni } from '../lib/pgbouncer/pgbouncer-config';
import { PLAN_PROFILES } from '../lib/plans';
import { reportChildResult } from './child-result';

// Raw YAML shapes, trusted as-is: the baseline does no validation on purpose.
interface RawNetwork {
  vpcId: string; privateSubnetIds: string[]; workloadSecurityGroupId: string;
  clusterName: string; databaseSubnetCidrs: string[]; oidcProviderArn: string;
}
interface RawState { backend: 'local' | 's3'; directory?: string; bucket?: string; region?: string; keyPrefix?: string; kmsKeyId?: string }
interface RawKubernetes {
  enabled?: boolean; ingressControllerNamespace?: string; dedicatedNodes?: { labelKey?: string; labelValue?: string; taintKey?: string };
  pgbouncerImage?: string; appImage?: string; chartVersion?: string; chartRepository?: string; releaseNamespace?: string; rdsCaConfigMap?: string;
}
interface RawPlatform {
  name?: string; baseDomain: string; controlPlaneRegion: string; regions: Record<string, RawNetwork>; state?: RawState; kubernetes?: RawKubernetes;
}
type Plan = keyof typeof PLAN_PROFILES;
type Values = Record<string, unknown>;
interface RawTenant {
  id: string; slug: string; plan: Plan; model: 'silo' | 'bridge' | 'pool'; region: string;
  status?: string; compliance?: { hipaa?: boolean; pci?: boolean };
  domain?: { subdomain?: string; custom?: string };
  workload?: { replicas?: number; values?: Values; egress?: { cidr: string; ports: number[] }[] };
  quotas?: { cpu?: string; memory?: string; storage?: string; pods?: number };
}

const PORT = 5432;
const MANAGED_BY = 'cdktf-tenancy';
/** Defaults of platform.yaml's kubernetes section, as its documentation states them. */
const K8S_DEFAULTS = {
  ingressControllerNamespace: 'ingress-nginx',
  dedicatedNodes: { labelKey: 'tenancy.io/dedicated', labelValue: 'pci', taintKey: 'tenancy.io/dedicated' },
  pgbouncerImage: 'edoburu/pgbouncer:v1.23.1-p3',
  appImage: 'ghcr.io/cdktf-tenancy/tenant-app:0.1.0',
  chartVersion: '0.1.0',
  releaseNamespace: 'tenancy-system',
};
/** Version of charts/tenant-platform whose values this app writes. */
const PLATFORM_CHART_VERSION = '0.1.0';

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
  // Stable private names for the shared clusters, so tenant workloads connect by name.
  const zone = p.kubernetes?.enabled !== false
    ? new Route53Zone(stack, 'db-zone', { name: `db.${name}.internal`, comment: 'Shared tenant databases', vpc: [{ vpcId: net.vpcId }] })
    : undefined;

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
    if (zone) new Route53Record(stack, `${key}-dns`, { zoneId: zone.zoneId, name: `${key.replace('_', '-')}.db.${name}.internal`, type: 'CNAME', ttl: 60, records: [cluster.endpoint] });
    new TerraformOutput(stack, `${key}_cluster_identifier`, { value: identifier });
    new TerraformOutput(stack, `${key}_endpoint`, { value: cluster.endpoint });
    new TerraformOutput(stack, `${key}_reader_endpoint`, { value: cluster.readerEndpoint });
    new TerraformOutput(stack, `${key}_database`, { value: databaseName });
    new TerraformOutput(stack, `${key}_master_secret_arn`, { value: cluster.masterUserSecret.get(0).secretArn });
  }
  new TerraformOutput(stack, 'tenant_secrets_key_arn', { value: secretsKey.arn });
}

/** What a tenant's database side hands to its Kubernetes side. */
type TenantDatabase =
  | { model: 'silo'; address: string; secretArn: string; keyArn: string; dbName: string }
  | { model: 'bridge'; secretArn: string; schema: string }
  | { model: 'pool' };

/** The login role's credentials secret, its password generated by Terraform at apply and then ignored. */
function credentialsSecret(
  stack: TerraformStack, id: string, slug: string, tenantId: string, kmsKeyId: string, server: string, dbname: string, connection: Record<string, string | number>,
): SecretsmanagerSecret {
  const role = `tenant_${slug.replace(/-/g, '_')}_app`;
  const secret = new SecretsmanagerSecret(stack, id, {
    name: `tenancy/tenants/${tenantId}/db-credentials`,
    description: `Login role ${role} of tenant ${slug} on ${server}`,
    kmsKeyId,
    recoveryWindowInDays: 30,
  });
  new SecretsmanagerSecretVersion(stack, `${id}-value`, {
    secretId: secret.id,
    secretString: Fn.jsonencode({
      username: role,
      password: Fn.replace(Fn.join('', [Fn.uuid(), Fn.uuid()]), '-', ''),
      dbname,
      ...connection,
      engine: 'postgres',
    }),
    lifecycle: { ignoreChanges: ['secret_string'] },
  });
  return secret;
}

function tenantStack(app: App, p: RawPlatform, name: string, state: RawState, t: RawTenant, fileValues: Values | undefined): void {
  const stack = new TerraformStack(app, `tenant-${t.slug}`);
  const sql = t.slug.replace(/-/g, '_');
  const prefix = `tenant-${t.slug}`;
  backend(stack, state, `tenants/${t.id}.tfstate`);
  new AwsProvider(stack, 'aws', {
    region: t.region,
    defaultTags: [{ tags: { 'tenancy:tenant-id': t.id, 'tenancy:tenant-slug': t.slug, 'tenancy:model': t.model, 'tenancy:plan': t.plan, 'tenancy:managed-by': MANAGED_BY } }],
  });
  const kubernetes = p.kubernetes?.enabled !== false;
  const outputs: Record<string, string | number> = { tenant_id: t.id, slug: t.slug, model: t.model, plan: t.plan, region: t.region, ...(kubernetes && { k8s_namespace: prefix }) };
  let database: TenantDatabase;

  if (t.model === 'silo') {
    const net = p.regions[t.region];
    const size = PLAN_PROFILES[t.plan].silo;
    const regulated = Boolean(t.compliance?.hipaa || t.compliance?.pci);
    const key = new KmsKey(stack, 'key', {
      description: `Encrypts the database, its snapshots, its secrets and Performance Insights of tenant ${t.slug}`,
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
    const pi = size.performanceInsightsRetentionDays > 0;
    const db = new DbInstance(stack, 'db', {
      identifier: prefix, engine: 'postgres', engineVersion: '16', instanceClass: size.instanceClass,
      allocatedStorage: size.allocatedStorageGb, maxAllocatedStorage: size.maxAllocatedStorageGb, storageType: 'gp3', storageEncrypted: true,
      kmsKeyId: key.arn, dbName: `tenant_${sql}`, username: 'tenancy_admin', manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: key.arn, iamDatabaseAuthenticationEnabled: true, dbSubnetGroupName: subnets.name,
      vpcSecurityGroupIds: [sg.id], parameterGroupName: params.name, publiclyAccessible: false, multiAz: size.multiAz,
      backupRetentionPeriod: Math.max(size.backupRetentionDays, regulated ? 30 : 0), copyTagsToSnapshot: true,
      deleteAutomatedBackups: false, deletionProtection: true, skipFinalSnapshot: false, finalSnapshotIdentifier: `${prefix}-final-${t.id.toLowerCase()}`,
      performanceInsightsEnabled: pi, performanceInsightsKmsKeyId: pi ? key.arn : undefined,
      performanceInsightsRetentionPeriod: pi ? size.performanceInsightsRetentionDays : undefined, enabledCloudwatchLogsExports: ['postgresql', 'upgrade'],
      autoMinorVersionUpgrade: true, caCertIdentifier: 'rds-ca-rsa2048-g1', dependsOn: logs,
    });
    // The application role's credentials (PgBouncer and the workload log in as it), encrypted with the tenant's key.
    const appSecret = credentialsSecret(stack, 'app-credentials', t.slug, t.id, key.arn, prefix, `tenant_${sql}`,
      { host: db.address, port: db.port, schema: `tenant_${sql}`, dbInstanceIdentifier: prefix });
    database = { model: 'silo', address: db.address, secretArn: appSecret.arn, keyArn: key.arn, dbName: `tenant_${sql}` };
    Object.assign(outputs, {
      db_identifier: db.identifier, db_address: db.address, db_port: db.port, db_name: `tenant_${sql}`,
      db_master_secret_arn: db.masterUserSecret.get(0).secretArn, db_kms_key_arn: key.arn, app_credentials_secret_arn: appSecret.arn,
    });
  } else if (t.model === 'bridge') {
    const cluster = `${name}-bridge`;
    const secret = credentialsSecret(stack, 'credentials', t.slug, t.id, `alias/${name}/tenant-secrets`, cluster, 'tenants', { schema: `tenant_${sql}`, dbClusterIdentifier: cluster });
    database = { model: 'bridge', secretArn: secret.arn, schema: `tenant_${sql}` };
    Object.assign(outputs, { cluster_identifier: cluster, db_name: 'tenants', schema: `tenant_${sql}`, role: `tenant_${sql}_app`, credentials_secret_arn: secret.arn });
  } else {
    database = { model: 'pool' };
    Object.assign(outputs, { cluster_identifier: `${name}-pool`, db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id' });
  }
  if (kubernetes) kubernetesSide(stack, p, name, t, database, fileValues);
  for (const [key, value] of Object.entries(outputs)) new TerraformOutput(stack, key, { value });
}

/**
 * A tenant's Kubernetes side: helm talks to the region's EKS cluster; one platform release
 * (charts/tenant-platform: namespace, isolation, PgBouncer, External Secrets objects) with an
 * IRSA role per secret sync, and the workload release (charts/tenant-app).
 */
function kubernetesSide(stack: TerraformStack, p: RawPlatform, name: string, t: RawTenant, db: TenantDatabase, fileValues: Values | undefined): void {
  const k8s = { ...K8S_DEFAULTS, ...p.kubernetes };
  const net = p.regions[t.region];
  const ns = `tenant-${t.slug}`;
  const profile = PLAN_PROFILES[t.plan];

  const eks = new DataAwsEksCluster(stack, 'eks', { name: net.clusterName });
  const eksAuth = new DataAwsEksClusterAuth(stack, 'eks-auth', { name: net.clusterName });
  new HelmProvider(stack, 'helm', { kubernetes: { host: eks.endpoint, clusterCaCertificate: Fn.base64decode(eks.certificateAuthority.get(0).data), token: eksAuth.token } });

  // External Secrets copies one Secrets Manager secret into the namespace, as a role (IRSA) that may read only that secret.
  const issuer = net.oidcProviderArn.replace(/^.*oidc-provider\//, '');
  const secretSync = (target: string, secretArn: string, template: Record<string, string>, kmsKeyArn?: string, key?: string) => {
    const reader = `${target}-reader`;
    const role = new IamRole(stack, `${target}-role`, {
      name: `${ns}-${target}`.slice(0, 64),
      description: `External Secrets reads one secret into ${ns}/${target}`,
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Principal: { Federated: net.oidcProviderArn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`${issuer}:sub`]: `system:serviceaccount:${ns}:${reader}`, [`${issuer}:aud`]: 'sts.amazonaws.com' } },
        }],
      }),
    });
    const viaSecretsManager = { 'kms:ViaService': `secretsmanager.${t.region}.amazonaws.com` };
    new IamRolePolicy(stack, `${target}-policy`, {
      role: role.name,
      name: 'read-one-secret',
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: secretArn },
          kmsKeyArn
            ? { Effect: 'Allow', Action: 'kms:Decrypt', Resource: kmsKeyArn, Condition: { StringEquals: viaSecretsManager } }
            : { Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: viaSecretsManager, StringLike: { 'kms:EncryptionContext:SecretARN': secretArn } } },
        ],
      }),
    });
    return { name: target, region: t.region, roleArn: role.arn, key: key ?? secretArn, template, refreshInterval: '1h' };
  };

  const credentials = { username: '{{ .username }}', password: '{{ .password }}' };
  let sync: ReturnType<typeof secretSync>;
  let pgbouncer: Values = { enabled: false };
  let database: Values;
  if (db.model === 'silo') {
    // PgBouncer (transaction pooling) in front of the tenant's instance. The renderer refuses a
    // Terraform reference as host, so it renders a placeholder that is then replaced.
    const ca = k8s.rdsCaConfigMap;
    const ini = renderPgbouncerIni(pgbouncerSettingsForPlan(t.plan, {
      host: 'rds-address.invalid',
      dbname: db.dbName,
      authFile: '/etc/pgbouncer/userlist.txt',
      serverTlsSslmode: ca ? 'verify-full' : 'require',
      serverTlsCaFile: ca ? '/etc/pgbouncer/ca/ca.pem' : undefined,
    })).replace('host=rds-address.invalid', `host=${db.address}`);
    sync = secretSync('pgbouncer-auth', db.secretArn, { 'userlist.txt': '"{{ .username }}" "{{ .password }}"\n', ...credentials }, db.keyArn);
    pgbouncer = { enabled: true, image: k8s.pgbouncerImage, replicas: profile.pgbouncer.replicas, port: PGBOUNCER_DEFAULT_PORT, ini, authSecret: 'pgbouncer-auth', caConfigMap: ca ?? '' };
    database = { schema: '', tenantSetting: '', host: `pgbouncer.${ns}.svc.cluster.local`, port: PGBOUNCER_DEFAULT_PORT, name: db.dbName, sslmode: 'disable', credentialsSecret: 'pgbouncer-auth' };
  } else {
    const poolSecret = `${name}/pool/app-credentials`;
    sync = db.model === 'bridge'
      ? secretSync('database-credentials', db.secretArn, credentials)
      : secretSync('database-credentials', `arn:aws:secretsmanager:${t.region}:*:secret:${poolSecret}-*`, credentials, undefined, poolSecret);
    database = {
      schema: db.model === 'bridge' ? db.schema : '',
      tenantSetting: db.model === 'bridge' ? '' : 'app.tenant_id',
      host: `${db.model}.db.${name}.internal`,
      port: PORT,
      name: db.model === 'bridge' ? 'tenants' : 'pool',
      sslmode: 'require',
      credentialsSecret: 'database-credentials',
    };
  }

  // PCI tenants run on dedicated nodes: required node affinity and a toleration of their taint.
  const dedicated = t.compliance?.pci ? { ...K8S_DEFAULTS.dedicatedNodes, ...p.kubernetes?.dedicatedNodes } : undefined;
  const affinity = dedicated
    ? { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: dedicated.labelKey, operator: 'In', values: [dedicated.labelValue] }] }] } } }
    : {};
  const tolerations = dedicated ? [{ key: dedicated.taintKey, operator: 'Equal', value: dedicated.labelValue, effect: 'NoSchedule' }] : [];

  const quota = { ...profile.quota, ...t.quotas };
  const limits = profile.containerLimits;
  const tenant = { id: t.id, slug: t.slug, plan: t.plan, model: t.model };
  const platformValues = {
    tenant,
    namespace: ns,
    ingressControllerNamespace: k8s.ingressControllerNamespace,
    egress: [...net.databaseSubnetCidrs.map((cidr) => ({ cidr, ports: [PORT] })), ...(t.workload?.egress ?? [])].map((d) => ({ cidr: d.cidr, ports: [...d.ports] })),
    quota: {
      hard: {
        'requests.cpu': quota.cpu, 'limits.cpu': quota.cpu, 'requests.memory': quota.memory, 'limits.memory': quota.memory,
        'requests.storage': quota.storage, persistentvolumeclaims: String(quota.persistentVolumeClaims), pods: String(quota.pods),
        services: String(quota.services), 'services.loadbalancers': '0', 'services.nodeports': '0',
        configmaps: String(quota.configMaps), secrets: String(quota.secrets),
      },
    },
    limits: { defaultRequest: { ...limits.defaultRequest }, default: { ...limits.defaultLimit }, max: { ...limits.max } },
    workload: { serviceAccount: 'tenant-app' },
    placement: { affinity, tolerations },
    podSecurity: { enforce: 'restricted', audit: 'restricted', warn: 'restricted' },
    networkPolicy: { defaultDeny: { ingress: true, egress: true } },
    rbac: { rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }] },
    secretSyncs: [sync],
    pgbouncer,
  };
  const release = { atomic: true, cleanupOnFail: true, maxHistory: 10 };
  const platformRelease = new Release(stack, 'platform-release', {
    ...release,
    name: ns,
    namespace: k8s.releaseNamespace,
    chart: k8s.chartRepository ? 'tenant-platform' : '../../../charts/tenant-platform',
    repository: k8s.chartRepository,
    version: PLATFORM_CHART_VERSION,
    values: [JSON.stringify(platformValues, null, 2)],
    timeout: 300,
  });

  // The workload: chart defaults <- plan values <- the tenant's values <- what the platform enforces.
  const image = /^(.+?)(?::([^:/@]+))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(k8s.appImage)!;
  const replicas = t.status === 'suspended' ? 0 : t.workload?.replicas ?? profile.replicas;
  const custom = t.domain?.custom;
  const planValues = {
    replicaCount: replicas,
    resources: { requests: { ...limits.defaultRequest }, limits: { ...limits.defaultLimit } },
    autoscaling: { enabled: t.plan !== 'free' && replicas > 0, minReplicas: Math.max(1, replicas), maxReplicas: Math.max(1, replicas) * 3, targetCPUUtilizationPercentage: 70 },
    podDisruptionBudget: { enabled: replicas > 1, minAvailable: Math.max(1, replicas - 1) },
    ingress: { enabled: true, host: `${t.domain?.subdomain ?? t.slug}.${p.baseDomain}`, extraHosts: custom ? [custom] : [], tlsSecretName: `${ns}-tls` },
    image: { repository: image[1], tag: image[2] ?? '' },
  };
  const tenantValues = fileValues ? helmMerge(fileValues, t.workload?.values ?? {}) : t.workload?.values ?? {};
  const enforced = { tenant, database, serviceAccount: { name: 'tenant-app', automountToken: false }, affinity, tolerations, nodeSelector: {} };
  new Release(stack, 'app-release', {
    ...release,
    name: 'tenant-app',
    namespace: ns,
    chart: k8s.chartRepository ? 'tenant-app' : '../../../charts/tenant-app',
    repository: k8s.chartRepository,
    version: k8s.chartVersion,
    values: [planValues, tenantValues, enforced].map((layer) => JSON.stringify(layer, null, 2)),
    timeout: 600,
    dependsOn: [platformRelease],
  });
}

/** Helm's merge of values: mappings merge key by key, anything else in `over` replaces `base`. */
function helmMerge(base: Values, over: Values): Values {
  const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? helmMerge(out[k], v) : v;
  return out;
}

/** Builds and synthesizes every stack of the registry at `root` into `outdir`; returns the stack count. */
export function synthesizeBaseline(root: string, outdir: string): number {
  const platform = parse(readFileSync(join(root, 'platform.yaml'), 'utf8')) as RawPlatform;
  const name = platform.name ?? 'tenancy';
  const state = platform.state ?? { backend: 'local', directory: 'state' };
  const tenantsDir = join(root, 'tenants');
  const files = readdirSync(tenantsDir);
  const valuesFiles = new Set(files.filter((f) => f.endsWith('.values.yaml')));
  const read = (f: string) => parse(readFileSync(join(tenantsDir, f), 'utf8')) as unknown;
  const tenants = files
    .filter((f) => f.endsWith('.yaml') && !valuesFiles.has(f))
    .map((f) => read(f) as RawTenant)
    .filter((t) => t.status !== 'offboarded');
  const regions = [...new Set([platform.controlPlaneRegion, ...tenants.map((t) => t.region)])].sort();

  const app = new App({ outdir });
  for (const region of regions) platformStack(app, platform, name, state, region);
  // A tenant's values file (<slug>.values.yaml) lies under its inline workload.values.
  for (const t of tenants) {
    const file = `${t.slug}.values.yaml`;
    tenantStack(app, platform, name, state, t, valuesFiles.has(file) ? (read(file) as Values) : undefined);
  }
  app.synth();
  return regions.length + tenants.length;
}

if (require.main === module) {
  const [root, outdir] = process.argv.slice(2);
  if (!root || !outdir) throw new Error('usage: baseline.js <root> <outdir>');
  reportChildResult(synthesizeBaseline(root, outdir));
}
