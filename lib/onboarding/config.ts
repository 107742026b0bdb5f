import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { LOCK_DEFAULTS } from './lock';
import { REGISTRY_SOURCE_KINDS, type RegistrySourceKind } from './registry-source';
import { DEPLOY_MODES, type DeployMode } from './stack-deployer';

/**
 * Configuration of the lifecycle pipeline (`tenancy onboard`, `offboard`, `status`, `worker`),
 * from the environment (README "Onboarding and offboarding"), each overridable by the commands'
 * options or by callers of the library.
 */
export interface LifecycleConfig {
  /** Project root: platform.yaml, tenants/, cdktf.json. (TENANCY_ROOT, default: the working directory) */
  readonly root: string;
  /** Working files of jobs: synthesized stacks, logs, outputs, local secrets and snapshots. (TENANCY_WORK_DIR, default <root>/.tenancy) */
  readonly workDir: string;
  /** (TENANCY_REDIS_URL, default redis://127.0.0.1:6379) */
  readonly redisUrl: string;
  /** (TENANCY_CONTROL_PLANE_URL, required) */
  readonly controlPlaneUrl: string;
  /** (TENANCY_REGISTRY_SOURCE: directory | database, default directory) */
  readonly registrySource: RegistrySourceKind;
  /** (TENANCY_DEPLOY: cdktf | local, default cdktf) */
  readonly deploy: DeployMode;
  /** Outputs of the platform stacks, `cdktf output --outputs-file`. (TENANCY_PLATFORM_OUTPUTS, required) */
  readonly platformOutputsFile: string;
  /** JSON map of secret references to credentials (local runs); unset: AWS Secrets Manager. (TENANCY_SECRETS_FILE) */
  readonly secretsFile?: string;
  /** (TENANCY_SSL_CA) */
  readonly sslCaFile?: string;
  /** (TENANCY_INSECURE_NO_TLS=1) */
  readonly insecureNoTls?: boolean;
  /** (TENANCY_MIGRATIONS, default the package's migrations/) */
  readonly migrationsDir: string;
  /** smtp:// or smtps:// URL; unset: welcome messages are logged, not sent. (TENANCY_SMTP_URL) */
  readonly smtpUrl?: string;
  /** (TENANCY_MAIL_FROM, default noreply@<baseDomain>) */
  readonly mailFrom?: string;
  /** (TENANCY_ESCALATION_WEBHOOK, TENANCY_ESCALATION_TOKEN; unset: record-only) */
  readonly escalationWebhook?: string;
  readonly escalationToken?: string;
  /** Who acts, in the audit log. (TENANCY_ACTOR, default tenancy@<host>) */
  readonly actor: string;
  /** PX of the tenant lock, renewed every third of it; also a running job's lease (`stalled` once it lapsed). (TENANCY_LOCK_TTL_MS, default 30000) */
  readonly lockTtlMs: number;
  /** BullMQ queue name. (TENANCY_QUEUE, default tenancy-lifecycle) */
  readonly queueName: string;
  /**
   * Secret of the role that verifies a pool tenant's erasure: it must bypass row-level security
   * (BYPASSRLS) and may only SELECT. (TENANCY_POOL_AUDITOR_SECRET, default <platform name>/pool/auditor-credentials)
   */
  readonly poolAuditorSecret?: string;
}

export class LifecycleConfigError extends Error {}

export function lifecycleConfig(env: NodeJS.ProcessEnv, overrides: Partial<LifecycleConfig> = {}, defaultMigrationsDir = resolve('migrations')): LifecycleConfig {
  const root = resolve(overrides.root ?? env.TENANCY_ROOT ?? process.cwd());
  const pick = <K extends keyof LifecycleConfig>(key: K, fromEnv: LifecycleConfig[K] | undefined): LifecycleConfig[K] | undefined => (overrides[key] !== undefined ? overrides[key] : fromEnv);
  const registrySource = pick('registrySource', env.TENANCY_REGISTRY_SOURCE as RegistrySourceKind | undefined) ?? 'directory';
  if (!REGISTRY_SOURCE_KINDS.includes(registrySource)) throw new LifecycleConfigError(`TENANCY_REGISTRY_SOURCE must be one of ${REGISTRY_SOURCE_KINDS.join(', ')}`);
  const deploy = pick('deploy', env.TENANCY_DEPLOY as DeployMode | undefined) ?? 'cdktf';
  if (!DEPLOY_MODES.includes(deploy)) throw new LifecycleConfigError(`TENANCY_DEPLOY must be one of ${DEPLOY_MODES.join(', ')}`);
  const controlPlaneUrl = pick('controlPlaneUrl', env.TENANCY_CONTROL_PLANE_URL);
  if (!controlPlaneUrl) throw new LifecycleConfigError('no control plane: set TENANCY_CONTROL_PLANE_URL (or --control-plane-url)');
  const insecureNoTls = pick('insecureNoTls', env.TENANCY_INSECURE_NO_TLS === '1' ? true : undefined) ?? false;
  try {
    controlPlaneConnection(controlPlaneUrl, { insecureNoTls, env });
  } catch (e) {
    if (e instanceof ControlPlaneTlsError) throw new LifecycleConfigError(e.message);
    throw e;
  }
  const platformOutputsFile = pick('platformOutputsFile', env.TENANCY_PLATFORM_OUTPUTS);
  const lockTtlMs = pick('lockTtlMs', env.TENANCY_LOCK_TTL_MS ? Number(env.TENANCY_LOCK_TTL_MS) : undefined) ?? LOCK_DEFAULTS.ttlMs;
  return {
    root,
    workDir: resolve(root, pick('workDir', env.TENANCY_WORK_DIR) ?? '.tenancy'),
    redisUrl: pick('redisUrl', env.TENANCY_REDIS_URL) ?? 'redis://127.0.0.1:6379',
    controlPlaneUrl,
    registrySource,
    deploy,
    platformOutputsFile: platformOutputsFile ? resolve(platformOutputsFile) : '',
    secretsFile: pick('secretsFile', env.TENANCY_SECRETS_FILE),
    sslCaFile: pick('sslCaFile', env.TENANCY_SSL_CA),
    insecureNoTls,
    migrationsDir: pick('migrationsDir', env.TENANCY_MIGRATIONS) ?? defaultMigrationsDir,
    smtpUrl: pick('smtpUrl', env.TENANCY_SMTP_URL),
    mailFrom: pick('mailFrom', env.TENANCY_MAIL_FROM),
    escalationWebhook: pick('escalationWebhook', env.TENANCY_ESCALATION_WEBHOOK),
    escalationToken: pick('escalationToken', env.TENANCY_ESCALATION_TOKEN),
    actor: pick('actor', env.TENANCY_ACTOR) ?? `tenancy@${hostname()}`,
    lockTtlMs,
    queueName: pick('queueName', env.TENANCY_QUEUE) ?? 'tenancy-lifecycle',
    poolAuditorSecret: pick('poolAuditorSecret', env.TENANCY_POOL_AUDITOR_SECRET),
  };
}
