import Stripe from 'stripe';

/** Stripe's default: a signed timestamp older than 5 minutes is refused (replays of a captured request). */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** The request is not a genuine, fresh Stripe delivery; `reason` says why (answered with 400). */
export class WebhookSignatureError extends Error {
  constructor(readonly reason: string) {
    super(`Stripe webhook refused: ${reason}`);
    this.name = 'WebhookSignatureError';
  }
}

/** Refuses a signing secret that cannot be one (`whsec_…`), before any request depends on it. */
export function checkWebhookSecret(secret: string | undefined, source = 'the webhook signing secret'): string {
  if (!secret) throw new Error(`${source} is not set (the endpoint's whsec_… secret from Stripe)`);
  if (!/^whsec_[A-Za-z0-9+/=_-]{8,}$/.test(secret)) throw new Error(`${source} is not a Stripe webhook signing secret (whsec_…)`);
  return secret;
}

/**
 * The event in a webhook request, verified with the official SDK's `webhooks.constructEvent`:
 * the `Stripe-Signature` header must carry a v1 HMAC-SHA256 of `<t>.<raw body>` under the
 * endpoint's secret, and `t` must be at most `toleranceSeconds` old at `receivedAtMs` (a captured
 * request cannot be replayed later). `rawBody` must be the bytes as received: a body parsed and
 * re-serialized never verifies.
 */
export function verifyWebhookEvent(
  rawBody: Buffer | string,
  signature: string | string[] | undefined,
  secret: string,
  options: { toleranceSeconds?: number; receivedAtMs?: number } = {},
): Stripe.Event {
  const tolerance = options.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  // The SDK skips the age check for a tolerance of 0: never allowed here.
  if (!Number.isInteger(tolerance) || tolerance < 1) throw new Error(`webhook tolerance ${tolerance}: must be a positive number of seconds`);
  if (Array.isArray(signature)) throw new WebhookSignatureError('more than one Stripe-Signature header');
  if (signature === undefined || signature === '') throw new WebhookSignatureError('no Stripe-Signature header');
  if (rawBody.length === 0) throw new WebhookSignatureError('empty body');
  let event: Stripe.Event;
  try {
    event = Stripe.webhooks.constructEvent(rawBody, signature, secret, tolerance, undefined, options.receivedAtMs ?? Date.now());
  } catch (e) {
    if (e instanceof Stripe.errors.StripeSignatureVerificationError) throw new WebhookSignatureError(firstLine(e.message));
    throw new WebhookSignatureError(`the body is not a Stripe event (${firstLine((e as Error).message)})`);
  }
  if (typeof event?.id !== 'string' || !/^evt_[A-Za-z0-9_]{1,255}$/.test(event.id) || typeof event.type !== 'string' || typeof event.created !== 'number' || !event.data?.object) {
    throw new WebhookSignatureError('the body is not a Stripe event (id, type, created, data.object)');
  }
  return event;
}

const firstLine = (s: string) => s.split('\n')[0].trim();
