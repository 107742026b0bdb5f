import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createStripeClient } from '../billing/stripe-client';
import { resolveStripeKey } from '../billing/stripe-key';
import { checkWebhookSecret, DEFAULT_WEBHOOK_TOLERANCE_SECONDS, stripeWebhookHandler, suspendOverdueTenants, type WebhookResult } from '../billing/webhooks';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { guardedPool } from '../db/lost-connections';
import { readPlatformFile } from '../registry/load-registry';
import { formatProblem, type RegistryProblem } from '../registry/registry-error';
import { defaultIo, usageFor } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';
import { stripeConnection } from './post-apply-command';

/** What stops the server: the process by default; tests pass their own emitter. */
export interface SignalSource {
  once(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

export interface WebhooksCommandHooks {
  readonly signals?: SignalSource;
  /** Called once the server listens (tests learn the port). */
  readonly onListening?: (address: { host: string; port: number }) => void;
}

interface ServeOptions {
  port: number;
  host: string;
  path: string;
  root?: string;
  controlPlaneUrl?: string;
  tolerance: number;
  sweepInterval: number;
}

const intFrom = (min: number, name: string, max: number) => (v: string) => {
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
  return Number(v);
};
const positiveInt = (name: string, max: number) => intFrom(1, name, max);

/**
 * `tenancy webhooks serve`: Stripe's webhook endpoint (lib/billing/webhooks) on a small node:http
 * server. The signing secret comes from STRIPE_WEBHOOK_SECRET and the API key (to re-fetch
 * subscriptions) from STRIPE_SECRET_KEY(_REF), never from the command line (argv is visible to
 * every local user); the grace period of a failed payment from platform.yaml
 * (billing.pastDueGraceDays). It also suspends past-due tenants whose grace period ended, every
 * --sweep-interval seconds. SIGTERM or SIGINT: stops accepting, finishes the requests in flight,
 * exits 0.
 */
export function registerWebhooksCommand(program: Command, io: MigrateCommandIo = defaultIo(), hooks: WebhooksCommandHooks = {}): void {
  const webhooks = program.command('webhooks').description('Stripe webhooks: the endpoint that brings Stripe billing events into the control plane.');
  webhooks
    .command('serve')
    .description('Serve the Stripe webhook endpoint (env STRIPE_WEBHOOK_SECRET, STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_REF, TENANCY_CONTROL_PLANE_URL).')
    .option('--port <port>', 'TCP port (0: any free port)', intFrom(0, '--port', 65535), 8787)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--path <path>', 'URL path of the endpoint', '/stripe/webhooks')
    .option('--root <dir>', 'project root with platform.yaml (env TENANCY_ROOT; default: the working directory)')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--tolerance <seconds>', 'oldest accepted signature timestamp', positiveInt('--tolerance', 3600), DEFAULT_WEBHOOK_TOLERANCE_SECONDS)
    .option('--sweep-interval <seconds>', 'how often past-due tenants past their grace period are suspended', positiveInt('--sweep-interval', 86_400), 300)
    .action(async (options: ServeOptions) => {
      const usage = usageFor('webhooks serve', io);
      if (!/^\/[A-Za-z0-9/_.-]*$/.test(options.path)) usage(`--path ${JSON.stringify(options.path)}: must be an absolute URL path`);
      let secret: string;
      try {
        secret = checkWebhookSecret(io.env.STRIPE_WEBHOOK_SECRET, 'STRIPE_WEBHOOK_SECRET');
      } catch (e) {
        return usage((e as Error).message);
      }
      const root = resolve(options.root ?? io.env.TENANCY_ROOT ?? '.');
      const problems: RegistryProblem[] = [];
      const platform = readPlatformFile(join(root, 'platform.yaml'), 'platform.yaml', problems);
      if (!platform) return usage(`${join(root, 'platform.yaml')}: ${problems.map(formatProblem).join('; ') || 'not readable'}`);
      const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
      if (!url) return usage('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL');
      let config;
      try {
        config = controlPlaneConnection(url, { env: io.env, applicationName: 'tenancy-webhooks' });
      } catch (e) {
        if (e instanceof ControlPlaneTlsError) return usage(e.message);
        throw e;
      }
      const key = await resolveStripeKey({ env: io.env });
      if (!key) return usage('no Stripe key: set STRIPE_SECRET_KEY or STRIPE_SECRET_KEY_REF (subscriptions are re-fetched from Stripe)');
      const stripe = createStripeClient(key.key, stripeConnection(io.env.TENANCY_STRIPE_API_URL, usage));

      const pool = guardedPool({ ...config, max: 8 });
      const actor = io.env.TENANCY_ACTOR ?? 'stripe-webhook';
      const log = (line: Record<string, unknown>) => io.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), ...line })}\n`);
      const handler = stripeWebhookHandler({
        secret, stripe, pool, pastDueGraceDays: platform.billing.pastDueGraceDays, toleranceSeconds: options.tolerance, actor,
        onResult: (r: WebhookResult) => log({ status: r.status, ...r.body, ...(r.outcome && !r.outcome.duplicate ? { tenant: r.outcome.tenantId, outcome: r.outcome.outcome } : {}), ...(r.error && r.status >= 500 ? { error: r.error.message } : {}) }),
      });
      const server: Server = createServer((req, res) => {
        if (new URL(req.url ?? '/', 'http://webhooks.invalid').pathname !== options.path) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
          return;
        }
        void handler(req, res);
      });
      server.requestTimeout = 30_000;
      let sweeping: Promise<unknown> = Promise.resolve();
      const sweep = setInterval(() => {
        sweeping = suspendOverdueTenants(pool, { actor })
          .then((ids) => ids.length > 0 && log({ suspended: ids, reason: 'payment overdue: grace period ended' }))
          .catch((e: Error) => log({ sweep: 'failed', error: e.message }));
      }, options.sweepInterval * 1000);
      sweep.unref();
      try {
        await new Promise<void>((ok, fail) => {
          server.once('error', fail);
          server.listen(options.port, options.host, () => ok());
        });
      } catch (e) {
        clearInterval(sweep);
        await pool.end();
        return usage(`cannot listen on ${options.host}:${options.port}: ${(e as Error).message}`);
      }
      const address = server.address() as AddressInfo;
      log({ listening: `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}${options.path}`, grace_days: platform.billing.pastDueGraceDays });
      hooks.onListening?.({ host: address.address, port: address.port });

      const signals = hooks.signals ?? process;
      await new Promise<void>((stopped) => {
        const stop = () => {
          signals.off('SIGTERM', stop);
          signals.off('SIGINT', stop);
          clearInterval(sweep);
          // close() waits for the requests in flight; idle keep-alive connections are ended now.
          server.close(() => stopped());
          server.closeIdleConnections();
        };
        signals.once('SIGTERM', stop);
        signals.once('SIGINT', stop);
      });
      await sweeping;
      await pool.end();
      log({ stopped: true });
      process.exitCode = 0;
    });
}
