import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseDeployOutputs, type PlatformOutputs, type SharedCluster } from '../hooks/deploy-outputs';
import { parseCredentials, SecretResolutionError, type DbCredentials, type SecretResolver } from '../runtime/secret-resolver';

/**
 * What the lifecycle reads about the shared platform: the outputs of the platform stacks, as
 * `cdktf output --outputs-file` writes them (`{ "platform-<region>": { bridge_endpoint, … } }`;
 * the same file the post-apply Job gets from its ConfigMap). For local runs (synthesize-only
 * deploys) a platform stack may also name the server that silo databases are created on:
 * `silo_endpoint`, `silo_port`, `silo_master_secret_arn` (a local stand-in for RDS; ignored in
 * real deploys, where each silo tenant's stack outputs its own instance).
 */
export interface LifecyclePlatform {
  readonly platforms: ReadonlyMap<string, PlatformOutputs>;
  /** Region → the local silo server (local deploys only). */
  readonly localSilo: ReadonlyMap<string, SharedCluster>;
}

export function readPlatformOutputsFile(file: string): LifecyclePlatform {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable JSON platform outputs file (${(e as Error).message})`);
  }
  const { platforms } = parseDeployOutputs(raw, file);
  const localSilo = new Map<string, SharedCluster>();
  for (const [stack, outputs] of Object.entries(raw as Record<string, Record<string, unknown>>)) {
    if (!stack.startsWith('platform-') || !outputs || outputs.silo_endpoint === undefined) continue;
    const port = Number(outputs.silo_port ?? 5432);
    const endpoint = String(outputs.silo_endpoint);
    const secret = String(outputs.silo_master_secret_arn ?? '');
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(endpoint) || !Number.isInteger(port) || port < 1 || port > 65535 || !/^\S+$/.test(secret)) {
      throw new Error(`${file}: ${stack}.silo_*: silo_endpoint must be a host, silo_port a port and silo_master_secret_arn a secret reference`);
    }
    localSilo.set(stack.slice('platform-'.length), { endpoint, port, database: 'postgres', masterSecretArn: secret });
  }
  return { platforms, localSilo };
}

/**
 * The secrets a local deploy creates in place of Terraform (a tenant's login role password):
 * one file per secret reference in a directory (mode 0700), each written atomically with mode
 * 0600. Local use only, like FileSecretResolver.
 */
export class LocalSecretStore implements SecretResolver {
  constructor(readonly dir: string) {}

  private fileOf(ref: string): string {
    return join(this.dir, `${createHash('sha256').update(ref).digest('hex')}.json`);
  }

  async resolve(secretRef: string): Promise<DbCredentials> {
    let text: string;
    try {
      text = readFileSync(this.fileOf(secretRef), 'utf8');
    } catch {
      throw new SecretResolutionError(secretRef, `not found in the local secret store ${this.dir}`);
    }
    return parseCredentials(secretRef, JSON.parse(text).value);
  }

  /** The secret's credentials, generated (a random 32-byte password) if it does not exist yet. */
  async ensure(secretRef: string, username: string): Promise<DbCredentials> {
    try {
      return await this.resolve(secretRef);
    } catch (e) {
      if (!(e instanceof SecretResolutionError)) throw e;
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const value = { username, password: randomBytes(32).toString('base64url') };
    const file = this.fileOf(secretRef);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify({ ref: secretRef, value }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // One writer per tenant (the job holds the tenant's lock): a plain atomic rename.
    renameSync(tmp, file);
    return this.resolve(secretRef);
  }

  /** Deletes a secret (Terraform destroy of the secret, locally); true when it existed. */
  remove(secretRef: string): boolean {
    const file = this.fileOf(secretRef);
    try {
      readFileSync(file);
    } catch {
      return false;
    }
    rmSync(file, { force: true });
    return true;
  }
}

/** Resolves with the first resolver that has the secret. */
export class ChainSecretResolver implements SecretResolver {
  constructor(private readonly resolvers: readonly SecretResolver[]) {}

  async resolve(secretRef: string): Promise<DbCredentials> {
    let last: unknown;
    for (const r of this.resolvers) {
      try {
        return await r.resolve(secretRef);
      } catch (e) {
        last = e;
        if (!(e instanceof SecretResolutionError)) throw e;
      }
    }
    throw last ?? new SecretResolutionError(secretRef, 'no secret resolver');
  }
}
