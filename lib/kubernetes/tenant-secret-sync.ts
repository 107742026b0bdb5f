import { Construct } from 'constructs';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import type { TenantNamespace } from './tenant-namespace';

/** Properties of a Secrets Manager → Kubernetes Secret sync for one tenant. */
export interface TenantSecretSyncProps {
  /** The tenant's namespace; the Secret is created there. */
  readonly namespace: TenantNamespace;
  /** Region of the Secrets Manager secret. */
  readonly region: string;
  /** IAM OIDC provider of the EKS cluster (IRSA). */
  readonly oidcProviderArn: string;
  /** ARN of the Secrets Manager secret to read (a Terraform reference, or a pattern with * for IAM). */
  readonly secretArn: string;
  /** Name or ARN External Secrets looks the secret up by. @default secretArn */
  readonly secretKey?: string;
  /** KMS key ARN that encrypts the secret, when it is a customer key the role must be allowed to use. @default none: decryption is allowed only through Secrets Manager for this secret */
  readonly kmsKeyArn?: string;
  /** Name of the Kubernetes Secret to create. */
  readonly targetSecret: string;
  /** Templates of the target Secret's keys (External Secrets Go templates over the secret's JSON keys). */
  readonly template: Record<string, string>;
}

/**
 * Copies one Secrets Manager secret into one Kubernetes Secret of a tenant, with the External
 * Secrets Operator and a per-tenant IAM role (IRSA) that may read only that secret. Secret values
 * never pass through Terraform; rotations reach the cluster on the next refresh. The IAM role is a
 * Terraform resource here; the Kubernetes objects go into the namespace's platform release.
 */
export class TenantSecretSync extends Construct {
  readonly role: IamRole;
  readonly serviceAccountName: string;
  /** The Kubernetes Secret this creates. */
  readonly targetSecret: string;

  constructor(scope: Construct, id: string, props: TenantSecretSyncProps) {
    super(scope, id);
    const ns = props.namespace;
    const issuer = /oidc-provider\/(.+)$/.exec(props.oidcProviderArn)?.[1];
    if (!issuer) throw new Error(`TenantSecretSync ${ns.name}: oidcProviderArn ${JSON.stringify(props.oidcProviderArn)} is not an IAM OIDC provider ARN`);
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(props.targetSecret)) throw new Error(`TenantSecretSync ${ns.name}: targetSecret ${JSON.stringify(props.targetSecret)} is not a Secret name`);
    this.serviceAccountName = `${props.targetSecret}-reader`;
    this.targetSecret = props.targetSecret;

    this.role = new IamRole(this, 'role', {
      name: `${ns.name}-${props.targetSecret}`.slice(0, 64),
      description: `External Secrets reads one secret into ${ns.name}/${props.targetSecret}`,
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Principal: { Federated: props.oidcProviderArn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`${issuer}:sub`]: `system:serviceaccount:${ns.name}:${this.serviceAccountName}`, [`${issuer}:aud`]: 'sts.amazonaws.com' } },
        }],
      }),
    });
    new IamRolePolicy(this, 'policy', {
      role: this.role.name,
      name: 'read-one-secret',
      // Terraform references inside the JSON string are interpolated (ARNs contain no quote).
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: props.secretArn },
          // Decrypt only through Secrets Manager: the role cannot use the key for anything else.
          props.kmsKeyArn
            ? { Effect: 'Allow', Action: 'kms:Decrypt', Resource: props.kmsKeyArn, Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${props.region}.amazonaws.com` } } }
            : {
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: '*',
              Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${props.region}.amazonaws.com` }, StringLike: { 'kms:EncryptionContext:SecretARN': props.secretArn } },
            },
        ],
      }),
    });

    // The ServiceAccount, SecretStore and ExternalSecret are part of the namespace's platform release.
    ns.addSecretSync({ name: props.targetSecret, region: props.region, roleArn: this.role.arn, key: props.secretKey ?? props.secretArn, template: props.template });
  }
}
