import type { Construct } from 'constructs';
import { Fn } from 'cdktf';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version';
import { tenantNames } from './naming';

const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Secrets Manager name of a tenant's login credentials, keyed by the immutable tenant id (not the
 * slug, which a re-onboarded tenant reuses while the old name is still reserved for recovery).
 */
export const tenantCredentialsSecretName = (tenantId: string) => `tenancy/tenants/${tenantId}/db-credentials`;

/** Properties of a tenant's application login role credentials secret. */
export interface TenantCredentialsSecretProps {
  /**
   * Tenant slug. The secret holds the login role `tenant_<slug>_app` (hyphens as underscores).
   */
  readonly slug: string;
  /**
   * Immutable tenant id (UUID). The secret is named `tenancy/tenants/<tenantId>/db-credentials`:
   * a deleted secret's name stays reserved for its recovery window, so a name keyed by the slug
   * would make a tenant offboarded and onboarded again (a new id) fail with
   * `ResourceExistsException`, and would let a new tenant inherit an old tenant's name.
   */
  readonly tenantId: string;
  /**
   * KMS key (id, ARN or alias) that encrypts the secret. Required: tenant credentials are never
   * encrypted with the account's default key.
   */
  readonly kmsKeyId: string;
  /** What the role logs in to (a cluster or instance identifier); only for the secret's description. */
  readonly server: string;
  /** Database the role logs in to (the secret's `dbname`). */
  readonly databaseName: string;
  /**
   * Connection details stored after `username`, `password` and `dbname`, in this order, followed by
   * `engine` ("postgres"). Values may be Terraform references (e.g. an instance address). They are
   * written into the configuration, so never put a secret here.
   * @default none
   */
  readonly connection?: Readonly<Record<string, string | number>>;
  /** Days a deleted secret can still be restored (7-30). @default 30 */
  readonly recoveryWindowDays?: number;
}

/**
 * The Secrets Manager secret of a tenant's application login role (`tenant_<slug>_app`), shared by
 * bridge and silo tenants. Terraform owns the secret; the post-apply hook creates the role with
 * the password it holds (PostgreSQL objects are not AWS resources).
 *
 * The password is a Terraform expression (two random UUIDs without hyphens: 244 random bits, hex
 * only) evaluated at apply time, so it lives only in Secrets Manager and the state, never in the
 * synthesized configuration or the plan. `ignore_changes` on `secret_string` keeps it stable
 * across applies; rotation replaces the value outside Terraform.
 *
 * The construct is the `aws_secretsmanager_secret` itself. Its value (the secret version) is the
 * sibling `<id>-value` in the same scope rather than a child: that keeps the logical ids bridge
 * tenants were deployed with (`<scope>/credentials` and `<scope>/credentials-value`); a new
 * logical id for the version would replace it and generate a new password.
 */
export class TenantCredentialsSecret extends SecretsmanagerSecret {
  /** The login role, `tenant_<slug>_app`. */
  readonly username: string;
  /** The secret's value (username, generated password, dbname, connection details). */
  readonly value: SecretsmanagerSecretVersion;

  constructor(scope: Construct, id: string, props: TenantCredentialsSecretProps) {
    const names = tenantNames(props.slug);
    const recovery = props.recoveryWindowDays ?? 30;
    if (!Number.isInteger(recovery) || recovery < 7 || recovery > 30) {
      throw new Error(`TenantCredentialsSecret ${props.slug}: recoveryWindowDays must be 7-30 (0 would delete credentials without recovery), got ${recovery}`);
    }
    const tenantId = String(props.tenantId ?? '').toLowerCase();
    if (!TENANT_ID.test(tenantId)) throw new Error(`TenantCredentialsSecret ${props.slug}: tenantId ${JSON.stringify(props.tenantId)} must be a UUID (it names the secret)`);
    if (!props.kmsKeyId) throw new Error(`TenantCredentialsSecret ${props.slug}: kmsKeyId is required: tenant credentials are never encrypted with the account default key`);
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(props.databaseName)) throw new Error(`TenantCredentialsSecret ${props.slug}: databaseName ${JSON.stringify(props.databaseName)} must be a lowercase SQL identifier`);
    const reserved = Object.keys(props.connection ?? {}).filter((k) => ['username', 'password', 'dbname', 'engine'].includes(k));
    if (reserved.length > 0) throw new Error(`TenantCredentialsSecret ${props.slug}: connection cannot set ${reserved.join(', ')}`);

    super(scope, id, {
      name: tenantCredentialsSecretName(tenantId),
      description: `Login role ${names.role} of tenant ${props.slug} on ${props.server}`,
      kmsKeyId: props.kmsKeyId,
      recoveryWindowInDays: recovery,
    });
    this.username = names.role;
    this.value = new SecretsmanagerSecretVersion(scope, `${id}-value`, {
      secretId: this.id,
      secretString: Fn.jsonencode({
        username: names.role,
        password: Fn.replace(Fn.join('', [Fn.uuid(), Fn.uuid()]), '-', ''),
        dbname: props.databaseName,
        ...props.connection,
        engine: 'postgres',
      }),
      lifecycle: { ignoreChanges: ['secret_string'] },
    });
  }
}
