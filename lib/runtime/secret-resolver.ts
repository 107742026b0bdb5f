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
  private sdk?: Promise<typeof import('@aws-sdk/client-secrets-manager')>;
  private readonly clients = new Map<string, SecretsManagerLike>();

  constructor(private readonly options: AwsSecretsManagerResolverOptions = {}) {}

  async resolve(secretRef: string): Promise<DbCredentials> {
    const sdk = await (this.sdk ??= import('@aws-sdk/client-secrets-manager'));
    let value: { SecretString?: string };
    try {
      value = await this.client(sdk, secretRef).send(new sdk.GetSecretValueCommand({ SecretId: secretRef }));
    } catch (e) {
      throw new SecretResolutionError(secretRef, `GetSecretValue failed: ${(e as Error).message}`);
    }
    if (typeof value.SecretString !== 'string') throw new SecretResolutionError(secretRef, 'has no SecretString (binary secrets are not supported)');
    return parseCredentials(secretRef, value.SecretString);
  }

  /** A secret ARN is read in its own region (a tenant in another region than the pipeline's); a name in the configured one. */
  private client(sdk: typeof import('@aws-sdk/client-secrets-manager'), secretRef: string): SecretsManagerLike {
    if (this.options.client) return this.options.client;
    const region = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secretRef)?.[1] ?? this.options.region ?? '';
    let client = this.clients.get(region);
    if (!client) {
      client = new sdk.SecretsManagerClient(region ? { region } : {}) as unknown as SecretsManagerLike;
      this.clients.set(region, client);
    }
    return client;
  }
}
