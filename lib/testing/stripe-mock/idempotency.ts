import { apiErrors } from './errors';

/** A response as sent, kept for replays. */
export interface StoredResponse {
  readonly status: number;
  readonly body: string;
  readonly requestId: string;
  /** Extra headers of an error response (e.g. stripe-should-retry), replayed with it. */
  readonly headers?: Readonly<Record<string, string>>;
}

interface Entry {
  readonly endpoint: string;
  readonly fingerprint: string;
  readonly createdAt: number;
  response?: StoredResponse;
}

export type IdempotencyOutcome = { readonly kind: 'execute' } | { readonly kind: 'replay'; readonly response: StoredResponse };

/**
 * Stripe's idempotency layer for POST requests (https://docs.stripe.com/api/idempotent_requests):
 * the first request with a key runs and its status and body are saved — errors raised while the
 * endpoint executed included (a 402 decline is replayed too); a later request with the same key
 * and the same parameters gets that saved response again (header `Idempotent-Replayed: true`);
 * the same key with other parameters or on another endpoint is a 400 `idempotency_error`; a
 * request while the first one is still running is a 409 `idempotency_key_in_use`. Requests that
 * fail parameter validation save nothing (they can be retried with the same key). Keys are
 * scoped to the API key and expire after 24 hours (of the server's clock).
 */
export class IdempotencyStore {
  private readonly scopes = new Map<string, Map<string, Entry>>();

  constructor(private readonly ttlSeconds = 24 * 60 * 60) {}

  begin(scope: string, key: string, endpoint: string, fingerprint: string, now: number): IdempotencyOutcome {
    if (key.length > 255) throw apiErrors.invalid('Idempotency keys can be at most 255 characters long.', { param: 'Idempotency-Key' });
    const entries = this.entries(scope);
    const existing = entries.get(key);
    if (existing && existing.createdAt + this.ttlSeconds > now) {
      if (existing.endpoint !== endpoint) throw apiErrors.idempotencyEndpointMismatch(key, existing.endpoint, endpoint);
      if (existing.fingerprint !== fingerprint) throw apiErrors.idempotencyMismatch(key);
      if (!existing.response) throw apiErrors.idempotencyKeyInUse(key);
      return { kind: 'replay', response: existing.response };
    }
    entries.set(key, { endpoint, fingerprint, createdAt: now });
    return { kind: 'execute' };
  }

  /** Saves the response of an executed request. */
  finish(scope: string, key: string, response: StoredResponse): void {
    const entry = this.entries(scope).get(key);
    if (entry) entry.response = response;
  }

  /** Forgets a key whose request never executed (invalid parameters). */
  abandon(scope: string, key: string): void {
    this.entries(scope).delete(key);
  }

  private entries(scope: string): Map<string, Entry> {
    let entries = this.scopes.get(scope);
    if (!entries) this.scopes.set(scope, (entries = new Map()));
    return entries;
  }
}
