import { readFile } from 'node:fs/promises';

/** Database credentials of a login role. */
export interface DbCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Turns a placement's `secret_ref` (a Secrets Manager ARN or name, or a local key) into the
 * credentials of the role. The router calls it when it opens a pool for a connection target,
 * and again after that pool was dropped (evicted, or its login failed: rotated password).
 */
export interface SecretResolver {
  resolve(secretRef: string): Promise<DbCredentials>;
}

export class SecretResolutionError extends Error {
  constructor(readonly secretRef: string, message: string) {
    super(`secret ${JSON.stringify(secretRef)}: ${message}`);
    this.name = 'SecretResolutionError';
  }
}

/** The `{ username, password }` JSON of an RDS/Secrets Manager database secret (other keys ignored). */
export function parseCredentials(secretRef: string, value: unknown): DbCredentials {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new SecretResolutionError(secretRef, 'is not JSON with username and password');
    }
  }
  const { username, password } = (parsed ?? {}) as { username?: unknown; password?: unknown };
  if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '') {
    throw new SecretResolutionError(secretRef, 'has no non-empty string "username" and "password"');
  }
  return { username, password };
}

/** Credentials from a map (tests, local development). */
export class StaticSecretResolver implements SecretResolver {
  private readonly secrets: ReadonlyMap<string, DbCredentials>;

  constructor(secrets: ReadonlyMap<string, DbCredentials> | Readonly<Record<string, DbCredentials>>) {
    const entries = secrets instanceof Map ? [...secrets.entries()] : Object.entries(secrets);
    this.secrets = new Map(entries.map(([ref, creds]) => [ref, parseCredentials(ref, creds)]));
  }

  async resolve(secretRef: string): Promise<DbCredentials> {
    const creds = this.secrets.get(secretRef);
    if (!creds) throw new SecretResolutionError(secretRef, 'not found');
    return creds;
  }
}

/**
 * Credentials from a JSON file `{ "<secret_ref>": { "username": …, "password": … } }`, read on
 * every resolve (so an edited file is picked up when a pool is next opened). Local use only:
 * keep the file out of the repository and readable by its owner alone.
 */
export class FileSecretResolver implements SecretResolver {
  constructor(readonly file: string) {}

  async resolve(secretRef: string): Promise<DbCredentials> {
    let secrets: unknown;
    try {
      secrets = JSON.parse(await readFile(this.file, 'utf8'));
    } catch (e) {
      throw new SecretResolutionError(secretRef, `cannot read secrets file ${this.file}: ${(e as Error).message}`);
    }
    if (secrets === null || typeof secrets !== 'object' || Array.isArray(secrets)) {
      throw new SecretResolutionError(secretRef, `secrets file ${this.file} is not a JSON object`);
    }
    if (!Object.prototype.hasOwnProperty.call(secrets, secretRef)) throw new SecretResolutionError(secretRef, `not found in ${this.file}`);
    return parseCredentials(secretRef, (secrets as Record<string, unknown>)[secretRef]);
  }
}

/** The part of a Secrets Manager client the resolver uses (`send(GetSecretValueCommand)`). */
export interface SecretsManagerLike {
  send(command: unknown): Promise<{ SecretString?: string }>;
}

export interface AwsSecretsManagerResolverOptions {
  /** AWS region of the secrets. @default the SDK's (AWS_REGION, profile) */
  readonly region?: string;
  /** A ready client (tests, custom credentials); otherwise one is created on first use. */
  readonly client?: SecretsManagerLike;
}

/**
 * Credentials from AWS Secrets Manager (`GetSecretValue`; the secret's string is RDS's
 * `{ "username", "password", … }` JSON). @aws-sdk/client-secrets-manager is loaded on first
 * use only, so applications that resolve secrets otherwise never load the SDK.
 */
export class AwsSecretsManagerResolver implements SecretResolver {
  private sdk?: Promise<{ client: SecretsManagerLike; command: (secretId: string) => unknown }>;

  constructor(private readonly options: AwsSecretsManagerResolverOptions = {}) {}

  async resolve(secretRef: string): Promise<DbCredentials> {
    const { client, command } = await (this.sdk ??= this.load());
    let value: { SecretString?: string };
    try {
      value = await client.send(command(secretRef));
    } catch (e) {
      throw new SecretResolutionError(secretRef, `GetSecretValue failed: ${(e as Error).message}`);
    }
    if (typeof value.SecretString !== 'string') throw new SecretResolutionError(secretRef, 'has no SecretString (binary secrets are not supported)');
    return parseCredentials(secretRef, value.SecretString);
  }

  private async load(): Promise<{ client: SecretsManagerLike; command: (secretId: string) => unknown }> {
    const sdk = await import('@aws-sdk/client-secrets-manager');
    const client = this.options.client ?? (new sdk.SecretsManagerClient(this.options.region ? { region: this.options.region } : {}) as unknown as SecretsManagerLike);
    return { client, command: (secretId) => new sdk.GetSecretValueCommand({ SecretId: secretId }) };
  }
}
