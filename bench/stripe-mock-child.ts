// The local Stripe-compatible server in its own process, for benchmarks that measure a client of
// it (bench/billing-bench.ts): the server then does not share the measured process's event loop,
// as api.stripe.com would not. Started with an IPC channel: it sends `{ url }` when listening and
// answers `{ meterEvents: <api key> }` with `{ count }` (the events the account accepted).
import { StripeMockServer } from '../lib/testing/stripe-mock';

async function main(): Promise<void> {
  const server = await StripeMockServer.start();
  process.on('message', (message: { meterEvents?: string }) => {
    if (message.meterEvents !== undefined) process.send!({ count: server.meterEvents(message.meterEvents).length });
  });
  process.on('disconnect', () => void server.stop().then(() => process.exit(0)));
  process.send!({ url: server.url, host: server.host, port: server.port });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
