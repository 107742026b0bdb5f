import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import { debitCredits, type CreditDebit, type DebitStrategy } from './debit';
import { CreditsError } from './credits-error';
import { InsufficientCreditsError } from './insufficient-credits-error';
import type { LowCreditDelivery, LowCreditMailer } from './low-credit-mailer';

export interface CreditsMiddlewareOptions<Req extends IncomingMessage = IncomingMessage> {
  /** The control plane. */
  readonly pool: Pool;
  /**
   * The tenant of a request: its id, or an object with `id` (e.g. `(req) => router.resolve(req)`,
   * the TenantRouter's resolution). A rejection with a numeric `status` (TenantResolutionError)
   * is answered with that status; any other rejection with 500.
   */
  readonly resolveTenant: (req: Req) => Promise<string | { readonly id: string }>;
  /** Credits a request costs. @default 1 */
  readonly cost?: number | ((req: Req) => number);
  /** @default DEFAULT_DEBIT_STRATEGY */
  readonly strategy?: DebitStrategy;
  /** Ledger reason of a request's debit. @default "api request" */
  readonly reason?: string;
  /** Sends a low-credit mail after the debit that raised it, without holding the request. */
  readonly lowCreditMailer?: LowCreditMailer;
  /** Told when a low-credit mail delivery the middleware started has finished (sent or failed). */
  readonly onLowCreditDelivery?: (delivery: LowCreditDelivery) => void;
  /** Where errors the response does not show go (a failed low-credit mail, a refused resolution). @default console.error */
  readonly onError?: (error: unknown, context: string) => void;
}

type Next = (error?: unknown) => void;
/** What the debit of a request left, on `res.locals.credits` (Express) and returned by {@link chargeRequest}. */
export type RequestDebit = CreditDebit;

/**
 * Takes a request's credits before its handler runs. A tenant without enough credits gets
 * 402 Payment Required with a JSON body `{ error: "insufficient_credits", message, tenantId,
 * balance, cost }` and the handler never runs. A control plane that cannot be reached refuses the
 * request too (503): no request runs unpaid.
 *
 *   app.use(requireCredits({ pool, resolveTenant: (req) => router.resolve(req) }));   // (req, res, next) frameworks
 *   http.createServer(withCredits({ pool, resolveTenant }, handler));                 // plain node:http
 */
export function requireCredits<Req extends IncomingMessage = IncomingMessage>(options: CreditsMiddlewareOptions<Req>): (req: Req, res: ServerResponse, next: Next) => void {
  return (req, res, next) => {
    chargeRequest(options, req, res).then(
      (debit) => {
        if (!debit) return;
        const locals = (res as ServerResponse & { locals?: Record<string, unknown> }).locals;
        if (locals) locals.credits = debit;
        next();
      },
      next,
    );
  };
}

/** A node:http request listener that runs `handler` only for requests whose credits were taken. */
export function withCredits<Req extends IncomingMessage = IncomingMessage>(
  options: CreditsMiddlewareOptions<Req>,
  handler: (req: Req, res: ServerResponse, debit: RequestDebit) => void | Promise<void>,
): (req: Req, res: ServerResponse) => void {
  const onError = options.onError ?? defaultOnError;
  return (req, res) => {
    chargeRequest(options, req, res)
      .then((debit) => (debit ? handler(req, res, debit) : undefined))
      .catch((e) => {
        onError(e, 'request handler');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal_error', message: 'the request failed' });
        else res.destroy();
      });
  };
}

/**
 * Debits a request's credits; the debit, or undefined when the response was sent (402, the
 * resolver's refusal, 503). For frameworks neither helper above fits.
 */
export async function chargeRequest<Req extends IncomingMessage>(options: CreditsMiddlewareOptions<Req>, req: Req, res: ServerResponse): Promise<RequestDebit | undefined> {
  const onError = options.onError ?? defaultOnError;
  let tenantId: string;
  try {
    const tenant = await options.resolveTenant(req);
    tenantId = typeof tenant === 'string' ? tenant : tenant.id;
  } catch (e) {
    const status = (e as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 600) {
      sendJson(res, status, { error: 'tenant_refused', message: (e as Error).message });
    } else {
      onError(e, 'tenant resolution');
      sendJson(res, 500, { error: 'internal_error', message: 'the tenant could not be resolved' });
    }
    return undefined;
  }
  let debit: CreditDebit;
  try {
    const cost = costOf(options, req);
    debit = await debitCredits(options.pool, tenantId, cost, { strategy: options.strategy, reason: options.reason ?? 'api request', actor: 'credits-middleware' });
  } catch (e) {
    if (e instanceof InsufficientCreditsError) {
      sendJson(res, 402, { error: 'insufficient_credits', message: e.message, tenantId: e.tenantId, balance: e.balance, cost: e.cost });
    } else if (e instanceof CreditsError || e instanceof CostError) {
      // A bad cost or tenant id from the caller's code: not the client's fault, not transient.
      onError(e, 'credit debit');
      sendJson(res, 500, { error: 'internal_error', message: 'the request cost could not be charged' });
    } else {
      onError(e, 'credit debit');
      sendJson(res, 503, { error: 'credits_unavailable', message: 'the credit balance could not be checked; try again' });
    }
    return undefined;
  }
  if (debit.lowCredit && options.lowCreditMailer) {
    // After the commit and off the request's path; a failure stays pending in the notice (retried by deliverPending).
    options.lowCreditMailer.deliverPending({ tenantId }).then(
      (r) => {
        r.errors.forEach((err) => onError(new Error(`low-credit mail for tenant ${err.tenantId}: ${err.error}`), 'low-credit mail'));
        options.onLowCreditDelivery?.(r);
      },
      (e) => onError(e, 'low-credit mail'),
    );
  }
  return debit;
}

/** The cost function of the caller threw. */
class CostError extends Error {}

function costOf<Req extends IncomingMessage>(options: CreditsMiddlewareOptions<Req>, req: Req): number {
  if (typeof options.cost !== 'function') return options.cost ?? 1;
  try {
    return options.cost(req);
  } catch (e) {
    throw new CostError(`the request's cost could not be computed: ${(e as Error).message}`, { cause: e });
  }
}

function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function defaultOnError(error: unknown, context: string): void {
  console.error(`credits (${context}): ${(error as Error)?.message ?? String(error)}`);
}
