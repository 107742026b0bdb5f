import { Construct } from 'constructs';
import { Fn } from 'cdktf';
import type { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { ConfigMapV1 } from '@cdktf/provider-kubernetes/lib/config-map-v1';
import { DeploymentV1 } from '@cdktf/provider-kubernetes/lib/deployment-v1';
import { ServiceV1 } from '@cdktf/provider-kubernetes/lib/service-v1';
import { PGBOUNCER_DEFAULT_PORT, pgbouncerSettingsForPlan, renderPgbouncerIni } from '../pgbouncer/pgbouncer-config';
import { PLAN_PROFILES } from '../plans';
import type { SiloDatabase } from '../silo-database';
import type { TenantNamespace } from './tenant-namespace';
import { TenantSecretSync } from './tenant-secret-sync';

/** Properties of a silo tenant's PgBouncer pool. */
export interface SiloPgbouncerProps {
  /** The tenant's namespace; PgBouncer runs in it. */
  readonly namespace: TenantNamespace;
  /** The tenant's database. */
  readonly database: SiloDatabase;
  /** AWS region of the database and its secret. */
  readonly region: string;
  /** IAM OIDC provider of the EKS cluster (IRSA), trusted by the secret-reader role. */
  readonly oidcProviderArn: string;
  /** PgBouncer image; pin a tag or a digest. @default "edoburu/pgbouncer:v1.23.1-p3" */
  readonly image?: string;
  /** PgBouncer pods. @default the plan's (1 free, 2 starter and pro, 3 enterprise) */
  readonly replicas?: number;
  /**
   * ConfigMap in the namespace holding the RDS CA bundle as `ca.pem`; with it PgBouncer verifies the
   * server certificate and host name (verify-full).
   * @default none: TLS with sslmode require (encrypted, server identity not verified)
   */
  readonly caConfigMap?: string;
}

const AUTH_SECRET = 'pgbouncer-auth';
const CONFIG_DIR = '/etc/pgbouncer';

/**
 * PgBouncer in transaction mode in front of a silo tenant's RDS instance, in the tenant's namespace.
 *
 * Credentials: the External Secrets Operator reads the RDS-managed master secret with a per-tenant
 * IAM role (IRSA, allowed to read only this tenant's secret and decrypt with only this tenant's key)
 * and renders the PgBouncer userlist into a Kubernetes Secret. The password never passes through
 * Terraform or the synthesized JSON. The pod template carries a hash of the config, not of the
 * secret: after an RDS rotation the pods must be restarted (e.g. by Reloader) to read the new
 * userlist, since subPath mounts are not refreshed.
 */
export class SiloPgbouncer extends Construct {
  /** In-cluster host name applications connect to. */
  readonly host: string;
  readonly port = PGBOUNCER_DEFAULT_PORT;
  /** Secret (username, password, userlist.txt) the application may also use to connect. */
  readonly credentialsSecret = AUTH_SECRET;
  readonly secretReaderRole: IamRole;
  readonly deployment: DeploymentV1;

  constructor(scope: Construct, id: string, props: SiloPgbouncerProps) {
    super(scope, id);
    const ns = props.namespace;
    const db = props.database;
    const slug = db.settings.slug;
    const profile = PLAN_PROFILES[db.settings.plan].pgbouncer;
    const replicas = props.replicas ?? profile.replicas;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 20) throw new Error(`SiloPgbouncer ${slug}: replicas must be 1-20, got ${replicas}`);
    this.host = `pgbouncer.${ns.name}.svc.cluster.local`;

    // PgBouncer's config is rendered now; the server address is a Terraform reference resolved at apply.
    const ini = renderPgbouncerIni(pgbouncerSettingsForPlan(db.settings.plan, {
      host: 'rds-address.invalid',
      dbname: db.settings.databaseName,
      authFile: `${CONFIG_DIR}/userlist.txt`,
      serverTlsSslmode: props.caConfigMap ? 'verify-full' : 'require',
      serverTlsCaFile: props.caConfigMap ? `${CONFIG_DIR}/ca/ca.pem` : undefined,
    })).replace('host=rds-address.invalid', `host=${db.instance.address}`);

    const sync = new TenantSecretSync(this, 'credentials', {
      namespace: ns,
      region: props.region,
      oidcProviderArn: props.oidcProviderArn,
      secretArn: db.instance.masterUserSecret.get(0).secretArn,
      kmsKeyArn: db.key.arn,
      targetSecret: AUTH_SECRET,
      // PgBouncer's auth_file format; RDS-generated passwords contain no double quote.
      template: { 'userlist.txt': '"{{ .username }}" "{{ .password }}"\n', username: '{{ .username }}', password: '{{ .password }}' },
    });
    this.secretReaderRole = sync.role;

    const meta = (name: string) => ({ name, namespace: ns.name, labels: { ...ns.labels, 'app.kubernetes.io/name': 'pgbouncer' } });
    const after = { dependsOn: [ns.namespace] };

    new ConfigMapV1(this, 'config', { ...after, metadata: meta('pgbouncer-config'), data: { 'pgbouncer.ini': ini } });

    const podLabels = { ...ns.labels, 'app.kubernetes.io/name': 'pgbouncer' };
    const placement = ns.placement;
    this.deployment = new DeploymentV1(this, 'deployment', {
      ...after,
      metadata: meta('pgbouncer'),
      spec: {
        replicas: String(replicas),
        selector: { matchLabels: { 'app.kubernetes.io/name': 'pgbouncer' } },
        template: {
          metadata: { labels: podLabels, annotations: { 'tenancy.io/config-sha256': Fn.sha256(ini) } },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: '70', runAsGroup: '70', seccompProfile: { type: 'RuntimeDefault' } },
            affinity: placement.tolerations.length ? {
              nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerm: [{ matchExpressions: [{ key: ns.dedicatedNodes!.labelKey, operator: 'In', values: [ns.dedicatedNodes!.labelValue] }] }] } },
            } : undefined,
            toleration: placement.tolerations,
            container: [{
              name: 'pgbouncer',
              image: props.image ?? 'edoburu/pgbouncer:v1.23.1-p3',
              command: ['pgbouncer', `${CONFIG_DIR}/pgbouncer.ini`],
              port: [{ name: 'postgres', containerPort: this.port }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
              resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
              readinessProbe: { tcpSocket: [{ port: String(this.port) }], periodSeconds: 5 },
              livenessProbe: { tcpSocket: [{ port: String(this.port) }], periodSeconds: 20, initialDelaySeconds: 10 },
              volumeMount: [
                { name: 'config', mountPath: `${CONFIG_DIR}/pgbouncer.ini`, subPath: 'pgbouncer.ini', readOnly: true },
                { name: 'auth', mountPath: `${CONFIG_DIR}/userlist.txt`, subPath: 'userlist.txt', readOnly: true },
                ...(props.caConfigMap ? [{ name: 'ca', mountPath: `${CONFIG_DIR}/ca`, readOnly: true }] : []),
                { name: 'tmp', mountPath: '/tmp' },
              ],
            }],
            volume: [
              { name: 'config', configMap: { name: 'pgbouncer-config' } },
              { name: 'auth', secret: { secretName: AUTH_SECRET } },
              ...(props.caConfigMap ? [{ name: 'ca', configMap: { name: props.caConfigMap } }] : []),
              { name: 'tmp', emptyDir: { sizeLimit: '16Mi' } },
            ],
          },
        },
      },
    });

    new ServiceV1(this, 'service', {
      ...after,
      metadata: meta('pgbouncer'),
      spec: { type: 'ClusterIP', selector: { 'app.kubernetes.io/name': 'pgbouncer' }, port: [{ name: 'postgres', port: this.port, targetPort: String(this.port) }] },
    });
  }
}
