/**
 * The local Stripe-API-compatible server (lib/testing/stripe-mock) for the enclosing describe
 * block or file: started in beforeAll, stopped in afterAll. Each test should use its own API
 * key (`testKey()`): every key is a separate account, so tests never see each other's objects.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { MockClock, StripeMockServer, type StripeMockServerOptions } from '../../lib/testing/stripe-mock';

export function useStripeMock(options: StripeMockServerOptions = {}): () => StripeMockServer {
  let server: StripeMockServer | undefined;
  beforeAll(async () => {
    server = await StripeMockServer.start(options);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('useStripeMock: the server did not start (see the beforeAll error)');
    return server;
  };
}

/** A fresh test-mode secret key: a new, empty account on the mock. */
export function testKey(): string {
  return `sk_test_${randomBytes(12).toString('hex')}`;
}

/** The official SDK pointed at the mock; no automatic retries unless asked (tests see every response). */
export function stripeFor(server: StripeMockServer, key: string, options: { maxNetworkRetries?: number } = {}): Stripe {
  return new Stripe(key, { ...server.stripeConfig(), maxNetworkRetries: options.maxNetworkRetries ?? 0 });
}

/** 2026-01-15 12:00:00 UTC: a fixed clock makes periods and prorations exact. */
export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0) / 1000;
export const fixedClock = () => new MockClock(T0);

/** Runs `fn` and returns the Stripe error it throws (fails the test if it resolves). */
export async function stripeError(fn: () => Promise<unknown>): Promise<InstanceType<typeof Stripe.errors.StripeError>> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Stripe.errors.StripeError) return e;
    throw e;
  }
  throw new Error('expected a Stripe error, the call succeeded');
}
