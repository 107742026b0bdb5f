import Stripe from 'stripe';

/** Where the Stripe API is: api.stripe.com by default; the local server in tests and benchmarks. */
export interface StripeConnection {
  readonly host?: string;
  readonly port?: number;
  readonly protocol?: 'http' | 'https';
  /** Automatic retries of failed requests (network errors, 409, 5xx), each with its idempotency key. @default 2 */
  readonly maxNetworkRetries?: number;
  /** @default 30000 */
  readonly timeoutMs?: number;
}

/** The official SDK (its pinned API version) for a secret key. */
export function createStripeClient(key: string, connection: StripeConnection = {}): Stripe {
  return new Stripe(key, {
    maxNetworkRetries: connection.maxNetworkRetries ?? 2,
    timeout: connection.timeoutMs ?? 30_000,
    appInfo: { name: 'cdktf-tenancy' },
    ...(connection.host !== undefined ? { host: connection.host } : {}),
    ...(connection.port !== undefined ? { port: connection.port } : {}),
    ...(connection.protocol !== undefined ? { protocol: connection.protocol } : {}),
  });
}
