import type { IConstruct } from 'constructs';
import { isLiteral } from '../checks';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

type Json = Record<string, any>;

/** Keys whose value is a secret (compared lowercase, without "-" and "_"). */
const SECRET_KEYS = new Set([
  'password', 'passwd', 'pwd', 'masterpassword', 'secret', 'secretvalue', 'secretstring', 'secretkey', 'secretaccesskey',
  'token', 'accesstoken', 'authtoken', 'apitoken', 'bearertoken', 'apikey', 'privatekey', 'clientkey', 'clientsecret',
]);
const isSecretKey = (key: string) => SECRET_KEYS.has(key.toLowerCase().replace(/[-_]/g, ''));
/**
 * Types whose configuration can carry a secret value (providers' credentials, environment
 * variables, user data, Kubernetes secrets). Only these are read: resolving every resource of
 * 10,000 stacks would double the synth time for nothing.
 */
const SECRET_BEARING_TYPES = new Set([
  'aws', 'helm', 'kubernetes', 'aws_lambda_function', 'aws_ecs_task_definition', 'aws_instance', 'aws_launch_template',
  'aws_batch_job_definition', 'aws_codebuild_project', 'aws_apprunner_service', 'aws_elasticache_replication_group',
  'aws_mq_broker', 'aws_docdb_cluster', 'aws_redshift_cluster', 'aws_opensearch_domain', 'aws_iam_user_login_profile',
  'kubernetes_secret', 'kubernetes_secret_v1', 'kubernetes_config_map', 'kubernetes_config_map_v1',
]);
/** A password inside a URL (scheme://user:password@host) or a libpq/ini setting (password=...). */
const EMBEDDED = [/[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:([^\s@]+)@/i, /\bpassword\s*=\s*([^\s;'"]+)/i];

/** Secret literals anywhere in a value (keys named like secrets, passwords embedded in URLs or settings). */
function literalSecrets(value: unknown, path: string, out: string[]): void {
  if (typeof value === 'string') {
    for (const re of EMBEDDED) {
      const m = re.exec(value);
      if (m && isLiteral(m[1])) out.push(`${path} embeds a password`);
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => literalSecrets(v, `${path}[${i}]`, out));
    return;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Json)) {
      const p = path ? `${path}.${k}` : k;
      if (isSecretKey(k) && isLiteral(v)) out.push(`${p} is a literal secret`);
      else literalSecrets(v, p, out);
    }
  }
}

/**
 * TENANCY-SECRET-2: no secret value is written in the synthesized configuration: secret
 * versions, SecureString parameters, Helm values and provider credentials hold references or
 * apply-time expressions only.
 */
export const NoSecretLiteralsRule: PolicyRule = {
  id: 'TENANCY-SECRET-2',
  pack: 'tenancy',
  explanation: 'the synthesized JSON is kept in git, CI logs and plans: a secret written there is disclosed; secrets live in Secrets Manager and reach workloads through External Secrets',
  level: 'error',
  requirement: REFERENCE.provisioning,
  check(node: IConstruct, ctx: PolicyContext) {
    const type = ctx.typeOf(node);
    if (type === undefined || !(SECRET_BEARING_TYPES.has(type) || type === 'helm_release' || type === 'aws_secretsmanager_secret_version' || type === 'aws_ssm_parameter')) return undefined; // databases: TENANCY-SECRET-1
    const c = ctx.config(node)!;
    const problems: string[] = [];
    switch (type) {
      case 'aws_secretsmanager_secret_version':
        for (const k of ['secret_string', 'secret_binary']) if (isLiteral(c[k])) problems.push(`${k} is written in the configuration; generate it at apply (a Terraform expression) or set it outside Terraform`);
        break;
      case 'aws_ssm_parameter':
        if (c.type === 'SecureString' && isLiteral(c.value)) problems.push('a SecureString value is written in the configuration');
        break;
      case 'helm_release': {
        for (const s of (Array.isArray(c.set_sensitive) ? c.set_sensitive : []) as Json[]) if (isLiteral(s?.value)) problems.push(`set_sensitive ${s.name} is a literal`);
        for (const s of (Array.isArray(c.set) ? c.set : []) as Json[]) if (typeof s?.name === 'string' && isSecretKey(s.name.split('.').pop()!) && isLiteral(s.value)) problems.push(`set ${s.name} is a literal secret`);
        literalSecrets(ctx.releaseValues(node), 'values', problems);
        break;
      }
      default:
        // Providers (aws access keys, helm/kubernetes tokens), environment variables, user data…
        literalSecrets(c, '', problems);
    }
    return problems.length ? problems : true;
  },
};
