/**
 * Where the Stripe secret key comes from: the environment (`STRIPE_SECRET_KEY`), or a secret
 * reference (`STRIPE_SECRET_KEY_REF` or the `secretRef` option: a Secrets Manager ARN or name)
 * resolved like lib/runtime/secret-resolver.ts resolves database secrets. Neither configured:
 * billing is skipped, and says so. The key itself never leaves this module except to the SDK:
 * errors show it masked, hook inputs only name its source and mode.
 */

/** Resolves a secret reference to its string value (the key, or JSON holding it). */
export interface SecretValueResolver {
  resolveValue(secretRef: string): Promise<string>;
}

export interface StripeKeyOptions {
  /** Where STRIPE_SECRET_KEY and STRIPE_SECRET_KEY_REF are read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A secret reference holding the key (wins over STRIPE_SECRET_KEY_REF). */
  readonly secretRef?: string;
  /** Resolves secret references. @default AWS Secrets Manager (GetSecretValue) */
  readonly resolver?: SecretValueResolver;
}

export type StripeKeySource =
  | { readonly kind: 'env'; readonly variable: 'STRIPE_SECRET_KEY'; readonly mode: 'test' | 'live' }
  | { readonly kind: 'secret'; readonly ref: string }
  | { readonly kind: 'none' };

export class StripeKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StripeKeyError';
  }
}

const KEY = /^(?:sk|rk)_(test|live)_[A-Za-z0-9]{8,}$/;

/** Which source is configured (no I/O): what the hook's input records instead of the key. */
export function stripeKeySource(options: StripeKeyOptions = {}): StripeKeySource {
  const env = options.env ?? process.env;
  const key = env.STRIPE_SECRET_KEY?.trim() || undefined;
  const ref = options.secretRef ?? (env.STRIPE_SECRET_KEY_REF?.trim() || undefined);
  if (key && ref) throw new StripeKeyError('both STRIPE_SECRET_KEY and a secret reference (STRIPE_SECRET_KEY_REF / secretRef) are set; configure one');
  if (key) return { kind: 'env', variable: 'STRIPE_SECRET_KEY', mode: checkStripeKey(key, 'STRIPE_SECRET_KEY') };
  if (ref) return { kind: 'secret', ref };
  return { kind: 'none' };
}

/** The key, or undefined when none is configured. */
export async function resolveStripeKey(options: StripeKeyOptions = {}): Promise<{ key: string; source: StripeKeySource; mode: 'test' | 'live' } | undefined> {
  const source = stripeKeySource(options);
  switch (source.kind) {
    case 'none':
      return undefined;
    case 'env': {
      const key = (options.env ?? process.env).STRIPE_SECRET_KEY!.trim();
      return { key, source, mode: source.mode };
    }
    case 'secret': {
      const resolver = options.resolver ?? new AwsSecretsManagerValueResolver();
      let value: string;
      try {
        value = await resolver.resolveValue(source.ref);
      } catch (e) {
        throw new StripeKeyError(`Stripe key secret ${JSON.stringify(source.ref)}: ${(e as Error).message}`);
      }
      const key = keyFromSecretValue(value, source.ref);
      return { key, source, mode: checkStripeKey(key, `secret ${JSON.stringify(source.ref)}`) };
    }
  }
}

/** A secret's value is the key itself, or JSON with `secret_key` (or `api_key`). */
export function keyFromSecretValue(value: string, ref: string): string {
  const trimmed = value.trim();
  if (!trimmed.startsWith('{')) return trimmed;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new StripeKeyError(`Stripe key secret ${JSON.stringify(ref)} is neither a key nor JSON`);
  }
  const o = parsed as { secret_key?: unknown; api_key?: unknown };
  const key = typeof o.secret_key === 'string' ? o.secret_key : typeof o.api_key === 'string' ? o.api_key : undefined;
  if (!key) throw new StripeKeyError(`Stripe key secret ${JSON.stringify(ref)} is JSON without a "secret_key" string`);
  return key.trim();
}

/** Checks the key's shape (a secret or restricted key) and returns its mode; never echoes it. */
export function checkStripeKey(key: string, where: string): 'test' | 'live' {
  const m = KEY.exec(key);
  if (!m) throw new StripeKeyError(`${where} is not a Stripe secret key (sk_test_…, sk_live_…, rk_…): ${key.length > 8 ? `${key.slice(0, 3)}…${key.slice(-4)}` : 'too short'}`);
  return m[1] as 'test' | 'live';
}

/** Keys from a map (tests, local development). */
export class StaticSecretValueResolver implements SecretValueResolver {
  constructor(private readonly values: Readonly<Record<string, string>>) {}

  async resolveValue(secretRef: string): Promise<string> {
    if (!Object.prototype.hasOwnProperty.call(this.values, secretRef)) throw new Error('not found');
    return this.values[secretRef];
  }
}

/** The part of a Secrets Manager client used (`send(GetSecretValueCommand)`). */
export interface SecretsManagerLike {
  send(command: unknown): Promise<{ SecretString?: string }>;
}

/** GetSecretValue on AWS Secrets Manager; the SDK is loaded on first use only. */
export class AwsSecretsManagerValueResolver implements SecretValueResolver {
  private sdk?: Promise<{ client: SecretsManagerLike; command: (secretId: string) => unknown }>;

  constructor(private readonly options: { region?: string; client?: SecretsManagerLike } = {}) {}

  async resolveValue(secretRef: string): Promise<string> {
    const { client, command } = await (this.sdk ??= this.load());
    const value = await client.send(command(secretRef));
    if (typeof value.SecretString !== 'string') throw new Error('has no SecretString (binary secrets are not supported)');
    return value.SecretString;
  }

  private async load(): Promise<{ client: SecretsManagerLike; command: (secretId: string) => unknown }> {
    const sdk = await import('@aws-sdk/client-secrets-manager');
    const client = this.options.client ?? (new sdk.SecretsManagerClient(this.options.region ? { region: this.options.region } : {}) as unknown as SecretsManagerLike);
    return { client, command: (secretId) => new sdk.GetSecretValueCommand({ SecretId: secretId }) };
  }
}
