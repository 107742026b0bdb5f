import { CommanderError, Option, type Command } from 'commander';
import { LifecycleConfigError, lifecycleConfig, type LifecycleConfig } from '../onboarding/config';
import { REGISTRY_SOURCE_KINDS } from '../onboarding/registry-source';
import { DEPLOY_MODES } from '../onboarding/stack-deployer';
import { defaultMigrationsDir, type MigrateCommandIo } from './migrate-command';

/**
 * Options shared by `tenancy onboard`, `offboard` and `worker`: each overrides the environment
 * variable named in its help (README "Onboarding and offboarding", configuration).
 */
export interface LifecycleCliOptions {
  root?: string;
  controlPlaneUrl?: string;
  redisUrl?: string;
  registrySource?: LifecycleConfig['registrySource'];
  deploy?: LifecycleConfig['deploy'];
  platformOutputs?: string;
  secretsFile?: string;
  sslCa?: string;
  insecureNoTls?: boolean;
  migrations?: string;
  actor?: string;
  json?: boolean;
}

export function addLifecycleOptions(command: Command): Command {
  return command
    .option('--root <dir>', 'project root with platform.yaml and tenants/ (env TENANCY_ROOT; default: the working directory)')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--redis-url <url>', 'Redis of the queue and the locks (env TENANCY_REDIS_URL; default redis://127.0.0.1:6379)')
    .addOption(new Option('--registry-source <kind>', 'where the registry lives (env TENANCY_REGISTRY_SOURCE; default directory)').choices([...REGISTRY_SOURCE_KINDS]))
    .addOption(new Option('--deploy <mode>', 'cdktf: cdktf deploy/destroy; local: synthesize only, local stand-ins (env TENANCY_DEPLOY; default cdktf)').choices([...DEPLOY_MODES]))
    .option('--platform-outputs <file>', 'outputs of the platform stacks, `cdktf output --outputs-file` (env TENANCY_PLATFORM_OUTPUTS)')
    .option('--secrets-file <file>', 'JSON map of secret references to {username, password} (env TENANCY_SECRETS_FILE; default: AWS Secrets Manager)')
    .option('--ssl-ca <file>', 'CA bundle of the database certificates (env TENANCY_SSL_CA)')
    .option('--insecure-no-tls', 'databases, the control plane included, without TLS: local development only (env TENANCY_INSECURE_NO_TLS=1)')
    .option('--migrations <dir>', 'directory holding tenant/, pool/ and control-plane/ (env TENANCY_MIGRATIONS)')
    .option('--actor <name>', 'who acts, in the audit log (env TENANCY_ACTOR)')
    .option('--json', 'JSON on stdout (the default when stdout is not a terminal)');
}

/** The configuration from the environment with the command's options on top; a bad one is a usage error. */
export function configFromOptions(options: LifecycleCliOptions, io: MigrateCommandIo, usage: (message: string) => never): LifecycleConfig {
  try {
    return lifecycleConfig(io.env, {
      ...(options.root ? { root: options.root } : {}),
      ...(options.controlPlaneUrl ? { controlPlaneUrl: options.controlPlaneUrl } : {}),
      ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
      ...(options.registrySource ? { registrySource: options.registrySource } : {}),
      ...(options.deploy ? { deploy: options.deploy } : {}),
      ...(options.platformOutputs ? { platformOutputsFile: options.platformOutputs } : {}),
      ...(options.secretsFile ? { secretsFile: options.secretsFile } : {}),
      ...(options.sslCa ? { sslCaFile: options.sslCa } : {}),
      ...(options.insecureNoTls ? { insecureNoTls: true } : {}),
      ...(options.migrations ? { migrationsDir: options.migrations } : {}),
      ...(options.actor ? { actor: options.actor } : {}),
    }, defaultMigrationsDir());
  } catch (e) {
    if (e instanceof LifecycleConfigError) return usage(e.message);
    throw e;
  }
}

/** A usage error: the message alone on stderr, exit code 2 through commander. */
export function usageFor(name: string, io: MigrateCommandIo): (message: string) => never {
  return (message: string): never => {
    io.stderr.write(`tenancy ${name}: ${message}\n`);
    throw new CommanderError(2, 'tenancy.usage', message);
  };
}

export const defaultIo = (): MigrateCommandIo => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });
