import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UsageRecorder } from './usage-recorder';

/**
 * A middleware that counts a tenant's API calls: `(req, res, next?) => void`, for plain node:http
 * (call it first in the request handler, without `next`) and for Express/Connect (`app.use(…)`).
 * The call is counted when the response has been sent (`finish`), so the handler may resolve the
 * tenant meanwhile; `tenantOf` is asked then. Counting is a Map increment (UsageRecorder.record):
 * the middleware never waits on Redis and never fails the request.
 */
export interface UsageMiddlewareOptions<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  readonly recorder: UsageRecorder;
  /** The tenant the request was served for (its id, a lowercase UUID), or undefined: not counted. */
  readonly tenantOf: (req: Req, res: Res) => string | undefined;
  /** @default "api_calls" */
  readonly dimension?: string;
  /** Whether a finished request is billed. @default status below 500: a server error is not the tenant's call */
  readonly counts?: (req: Req, res: Res) => boolean;
}

export type UsageMiddleware<Req, Res> = (req: Req, res: Res, next?: (error?: unknown) => void) => void;

export function usageMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options: UsageMiddlewareOptions<Req, Res>,
): UsageMiddleware<Req, Res> {
  const dimension = options.dimension ?? 'api_calls';
  const counts = options.counts ?? ((_req: Req, res: Res) => res.statusCode < 500);
  return (req, res, next) => {
    res.once('finish', () => {
      // Nothing here may throw into the server: a failing tenantOf costs the count, not the process.
      try {
        if (!counts(req, res)) return;
        const tenantId = options.tenantOf(req, res);
        if (tenantId !== undefined) options.recorder.record(tenantId, dimension);
      } catch {
        // The response is sent; there is nobody to tell.
      }
    });
    next?.();
  };
}
