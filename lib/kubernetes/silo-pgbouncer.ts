import { Construct } from 'constructs';
import type { IamRole } from '@cdktf/provider-aws/lib/iam-role';
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
  /**
   * ARN of the tenant's application role credentials secret (`SiloTenant.appCredentials`), which
   * must be encrypted with the database's own key (`database.key`). PgBouncer logs in to the
   * database as that role, never as the master user.
   */
  readonly appCredentialsSecretArn: string;
  /** AWS region of the database and its secret. */
  readonly region: string;
  /** IAM OIDC provider of the EKS cluster (IRSA), trusted by the secret-reader role. */
  readonly oidcProviderArn: string;
  /** PgBouncer image; pin a tag or a digest. @default DEFAULT_PGBOUNCER_IMAGE ("edoburu/pgbouncer:v1.23.1-p3") */
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
/** Where charts/tenant-platform mounts the configuration, the userlist and the CA bundle. */
const CONFIG_DIR = '/etc/pgbouncer';
/** PgBouncer image when none is given; pin a tag or a digest. */
export const DEFAULT_PGBOUNCER_IMAGE = 'edoburu/pgbouncer:v1.23.1-p3';

/**
 * PgBouncer in transaction mode in front of a silo tenant's RDS instance, in the tenant's namespace.
 *
 * Credentials: PgBouncer logs in as the tenant's least-privilege application role
 * (`tenant_<slug>_app`: data privileges on its schema only, created by the post-apply hook), never
 * as the RDS master user. The External Secrets Operator reads that role's secret (`appCredentialsSecretArn`)
 * with a per-tenant IAM role (IRSA, allowed to read only that secret and decrypt with only this
 * tenant's key, through Secrets Manager) and renders the PgBouncer userlist into a Kubernetes
 * Secret, which the tenant workload also connects with. The password never passes through the
 * synthesized JSON. The pod template carries a hash of the config, not of the secret: after a
 * rotation the pods must be restarted (e.g. by Reloader) to read the new userlist, since subPath
 * mounts are not refreshed.
 *
 * The Deployment, Service and ConfigMap are rendered by charts/tenant-platform in the namespace's
 * platform release; this construct computes them (pgbouncer.ini, replicas) and owns the IAM side.
 */
export class SiloPgbouncer extends Construct {
  /** In-cluster host name applications connect to. */
  readonly host: string;
  readonly port = PGBOUNCER_DEFAULT_PORT;
  /** Secret (username, password, userlist.txt) of the application role; the tenant workload connects with it. */
  readonly credentialsSecret = AUTH_SECRET;
  readonly secretReaderRole: IamRole;
  /** PgBouncer pods. */
  readonly replicas: number;
  /** The rendered pgbouncer.ini (the server address is a Terraform reference resolved at apply). */
  readonly ini: string;

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
      secretArn: props.appCredentialsSecretArn,
      kmsKeyArn: db.key.arn,
      targetSecret: AUTH_SECRET,
      // PgBouncer's auth_file format; the generated passwords are hex and role names SQL identifiers: no double quote.
      template: { 'userlist.txt': '"{{ .username }}" "{{ .password }}"\n', username: '{{ .username }}', password: '{{ .password }}' },
    });
    this.secretReaderRole = sync.role;

    this.replicas = replicas;
    this.ini = ini;
    ns.addPgbouncer({
      image: props.image ?? DEFAULT_PGBOUNCER_IMAGE,
      replicas,
      port: this.port,
      ini,
      authSecret: AUTH_SECRET,
      caConfigMap: props.caConfigMap ?? '',
    });
  }
}
