/**
 * Stripe-shaped API errors: `{ error: { type, code, message, param, doc_url } }` with the HTTP
 * status Stripe uses (400 invalid request, 401 authentication, 402 card, 404 missing path
 * object, 409 idempotency key in use).
 */
export type StripeErrorType = 'invalid_request_error' | 'card_error' | 'idempotency_error' | 'api_error' | 'authentication_error';

export interface StripeErrorBody {
  readonly type: StripeErrorType;
  readonly message: string;
  readonly code?: string;
  readonly param?: string;
  readonly decline_code?: string;
  readonly doc_url?: string;
}

export class StripeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: StripeErrorBody,
    /** Extra response headers (e.g. stripe-should-retry). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(body.message);
    this.name = 'StripeApiError';
  }

  toJSON(): { error: StripeErrorBody } {
    return { error: this.body };
  }
}

const docUrl = (code: string) => `https://docs.stripe.com/error-codes/${code.replace(/_/g, '-')}`;

function invalid(message: string, options: { code?: string; param?: string; status?: number } = {}): StripeApiError {
  return new StripeApiError(options.status ?? 400, {
    type: 'invalid_request_error',
    message,
    ...(options.code ? { code: options.code, doc_url: docUrl(options.code) } : {}),
    ...(options.param !== undefined ? { param: options.param } : {}),
  });
}

export const apiErrors = {
  invalid,
  parameterUnknown: (param: string) => invalid(`Received unknown parameter: ${param}`, { code: 'parameter_unknown', param }),
  parameterMissing: (param: string) => invalid(`Missing required param: ${param}.`, { code: 'parameter_missing', param }),
  parameterInvalidEmpty: (param: string) =>
    invalid(
      `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
      { code: 'parameter_invalid_empty', param },
    ),
  parameterInvalidInteger: (param: string, value: string) => invalid(`Invalid integer: ${value}`, { code: 'parameter_invalid_integer', param }),
  parametersExclusive: (params: readonly string[]) =>
    invalid(`You may only specify one of these parameters: ${params.join(', ')}.`, { code: 'parameters_exclusive', param: params[0] }),
  invalidEnum: (param: string, value: string, allowed: readonly string[]) =>
    invalid(`Invalid ${param}: must be one of ${allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')}, or ${allowed[allowed.length - 1]}` : allowed[0]}`, { param }),
  /** An id in the request body that names nothing (400), or an id in the URL (404 with `status: 404`). */
  resourceMissing: (kind: string, id: string, param: string, status = 400) => invalid(`No such ${kind}: '${id}'`, { code: 'resource_missing', param, status }),
  urlInvalid: (param: string) => invalid('Not a valid URL', { code: 'url_invalid', param }),
  unrecognizedUrl: (method: string, path: string) =>
    invalid(`Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, { status: 404 }),
  /** Something Stripe accepts that this server does not model: loud, never a silent success. */
  notImplemented: (what: string, param?: string) =>
    invalid(`stripe-mock-server does not implement ${what}; it is a real Stripe API feature that this local server does not model`, { code: 'mock_not_implemented', param }),
  authentication: (message: string) => new StripeApiError(401, { type: 'invalid_request_error', message }),
  cardDeclined: (declineCode = 'generic_decline') =>
    new StripeApiError(402, { type: 'card_error', code: 'card_declined', decline_code: declineCode, message: 'Your card was declined.', doc_url: docUrl('card_declined') }),
  idempotencyMismatch: (key: string) =>
    new StripeApiError(400, {
      type: 'idempotency_error',
      message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
    }),
  idempotencyEndpointMismatch: (key: string, first: string, now: string) =>
    new StripeApiError(400, {
      type: 'idempotency_error',
      message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${first}' vs '${now}'). Try using a key other than '${key}' if you meant to execute a different request.`,
    }),
  idempotencyKeyInUse: (key: string) =>
    new StripeApiError(
      409,
      {
        type: 'invalid_request_error',
        code: 'idempotency_key_in_use',
        doc_url: docUrl('idempotency_key_in_use'),
        message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
      },
      { 'stripe-should-retry': 'true' },
    ),
};
