import type { IncomingMessage, ServerResponse } from 'node:http';
import { suspendOverdueTenants } from './overdue-sweep';
import { processStripeEvent, type EventOutcome, type StripeEventProcessorOptions } from './stripe-event-processor';
import { checkWebhookSecret, verifyWebhookEvent, WebhookSignatureError } from './webhook-signature';

export interface StripeWebhookHandlerOptions extends StripeEventProcessorOptions {
  /** The endpoint's signing secret (whsec_…): from the environment or a secret store, never argv. */
  readonly secret: string;
  /** Oldest accepted signature timestamp, in seconds (≥ 1). @default 300 (Stripe's) */
  readonly toleranceSeconds?: number;
  /** @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** Sees every request's result (logging, metrics). */
  readonly onResult?: (result: WebhookResult) => void;
}

/** The answer to one webhook request. */
export interface WebhookResult {
  /** 200 applied or duplicate; 400 refused (nothing recorded); 405, 413; 500 failed (Stripe retries). */
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly outcome?: EventOutcome;
  readonly error?: Error;
}

/**
 * Handles one webhook delivery given its raw body and `Stripe-Signature` header: a request that
 * does not verify is refused with 400 naming why, before the database is touched; a verified event
 * is applied once (stripe-event-processor.ts) and answered 200 — a duplicate too, so Stripe stops
 * retrying it; a failure to apply is a 500, and Stripe retries. Then the past-due sweep runs (a
 * tenant whose grace period ended is suspended even if nothing else happens to it).
 */
export async function handleStripeWebhook(options: StripeWebhookHandlerOptions, rawBody: Buffer | string, signature: string | string[] | undefined): Promise<WebhookResult> {
  const now = options.now ?? (() => new Date());
  let event;
  try {
    event = verifyWebhookEvent(rawBody, signature, options.secret, { toleranceSeconds: options.toleranceSeconds, receivedAtMs: now().getTime() });
  } catch (e) {
    if (e instanceof WebhookSignatureError) return { status: 400, body: { error: e.message }, error: e };
    throw e;
  }
  let result: WebhookResult;
  try {
    const outcome = await processStripeEvent(options, event);
    result = { status: 200, body: { received: true, event: event.id, duplicate: outcome.duplicate }, outcome };
  } catch (e) {
    return { status: 500, body: { error: `event ${event.id} (${event.type}) was not applied; Stripe retries it` }, error: e as Error };
  }
  // The event is applied and answered either way; a failed sweep is retried by the next request or the periodic sweep.
  await suspendOverdueTenants(options.pool, { now: now(), actor: options.actor }).catch(() => undefined);
  return result;
}

/**
 * A request handler for an existing node:http server (or any framework exposing the Node request
 * and response): `http.createServer(stripeWebhookHandler({ … }))`, or mounted on one path. It reads
 * the raw body itself, so mount it before any body parser; a request whose body a parser already
 * consumed is refused (the signature covers the exact bytes Stripe sent).
 */
export function stripeWebhookHandler(options: StripeWebhookHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  checkWebhookSecret(options.secret);
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  return async (req, res) => {
    let result: WebhookResult;
    try {
      if ((req.method ?? 'GET').toUpperCase() !== 'POST') {
        result = { status: 405, body: { error: 'Stripe webhooks are POST requests' } };
      } else {
        const body = await rawBodyOf(req, maxBody);
        result = body === undefined
          ? { status: 400, body: { error: 'Stripe webhook refused: the raw request body is gone (a body parser ran before this handler); mount it before any parser' } }
          : body === 'too-large'
            ? { status: 413, body: { error: `Stripe webhook refused: body larger than ${maxBody} bytes` } }
            : await handleStripeWebhook(options, body, req.headers['stripe-signature']);
      }
    } catch (e) {
      result = { status: 500, body: { error: 'webhook handling failed' }, error: e as Error };
    }
    options.onResult?.(result);
    const text = JSON.stringify(result.body);
    res.writeHead(result.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(result.status === 405 ? { allow: 'POST' } : {}) });
    res.end(text);
  };
}

/** The body as received; undefined when a parser consumed it; 'too-large' past the limit (the rest is drained). */
async function rawBodyOf(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large' | undefined> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  if (Buffer.isBuffer(parsed)) return parsed;
  if (req.readableEnded) return typeof parsed === 'string' ? Buffer.from(parsed, 'utf8') : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) tooLarge = true;
    else chunks.push(chunk as Buffer);
  }
  return tooLarge ? 'too-large' : Buffer.concat(chunks);
}
