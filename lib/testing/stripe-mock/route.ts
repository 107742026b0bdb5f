import type { Fields, Params } from './params';
import type { MockAccount } from './store';

/** What an endpoint gets: the caller's account, its validated parameters, the id in the path. */
export interface HandlerContext {
  readonly account: MockAccount;
  readonly params: Params;
  /** The `:id` of the path ('' when the path has none). */
  readonly id: string;
  /** The server clock, Unix seconds. */
  readonly now: number;
  /** http://host:port of the server (Checkout Session URLs point at it). */
  readonly baseUrl: string;
}

/** One endpoint: method, path template (`/v1/customers/:id`), accepted parameters, handler. */
export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly fields: Fields;
  /** May be async (the webhook test hooks answer once their deliveries did). */
  handle(ctx: HandlerContext): Record<string, unknown> | Promise<Record<string, unknown>>;
}
