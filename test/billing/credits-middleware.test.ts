// Prepaid credits at the HTTP edge: a real node:http server whose tenant comes from the
// TenantRouter (Host subdomain, control plane). A request without enough credits gets 402 with a
// JSON body and never reaches its handler; the low-credit mail goes out once per grant, and a
// failed send stays pending until it is sent.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import {
  creditBalance, DEBIT_STRATEGIES, debitCredits, grantCredits, LowCreditMailer, requireCredits, withCredits, type CreditsMiddlewareOptions, type LowCreditDelivery,
} from '../../lib/billing/credits';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { SmtpNotifier } from '../../lib/onboarding/notifier';
import { TenantRouter } from '../../lib/runtime/router';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { freePort, usePostgres } from '../support/postgres';
import { useSmtp } from '../support/smtp';
import { creditsControlPlane, type CreditsControlPlane } from './credits-fixture';

jest.setTimeout(120_000);

const pg = usePostgres();
const smtp = useSmtp();
const DB = 'credits_http';
const BASE = 'saas.test';
let cp: CreditsControlPlane;
let router: TenantRouter;
const servers: Server[] = [];
const notifiers: SmtpNotifier[] = [];

beforeAll(async () => {
  cp = await creditsControlPlane(pg(), DB);
  router = new TenantRouter({ controlPlane: cp.pool, secrets: new StaticSecretResolver({}), baseDomain: BASE, connectionBudget: 1, tenantCacheTtlMs: 0, statusListener: false });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  notifiers.forEach((n) => n.close());
  await router?.close();
  await cp?.close();
});

const resolveTenant = (req: IncomingMessage) => router.resolve(req);

async function listen(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function get(port: number, host: string): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/work', headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    });
    req.on('error', reject).end();
  });
}

function smtpNotifier(url: string): SmtpNotifier {
  const n = new SmtpNotifier({ url, from: 'billing@saas.test' });
  notifiers.push(n);
  return n;
}

describe.each(DEBIT_STRATEGIES.map((s) => [s]))('strategy %s', (strategy) => {
  test('plain node:http: requests spend the credits, then 402 with a JSON body; the handler never runs unpaid', async () => {
    const tenant = await cp.tenant();
    await grantCredits(cp.pool, tenant.id, 3);
    let handled = 0;
    const port = await listen(withCredits({ pool: cp.pool, resolveTenant, strategy }, (_req, res, debit) => {
      handled++;
      res.end(`ok ${debit.balance}`);
    }));
    const host = `${tenant.slug}.${BASE}`;
    expect([(await get(port, host)).body, (await get(port, host)).body, (await get(port, host)).body]).toEqual(['ok 2', 'ok 1', 'ok 0']);
    const refused = await get(port, host);
    expect(refused.status).toBe(402);
    expect(refused.type).toBe('application/json; charset=utf-8');
    expect(JSON.parse(refused.body)).toEqual({
      error: 'insufficient_credits', tenantId: tenant.id, balance: 0, cost: 1, message: `tenant ${tenant.id} has 0 credits, 1 needed: debit refused`,
    });
    expect(handled).toBe(3);
    expect(await creditBalance(cp.pool, tenant.id)).toBe(0);
  });

  test('(req, res, next) style: next() only after the debit; the cost may depend on the request', async () => {
    const tenant = await cp.tenant();
    await grantCredits(cp.pool, tenant.id, 10);
    const mw = requireCredits({ pool: cp.pool, resolveTenant, strategy, cost: () => 4 });
    let handled = 0;
    const port = await listen((req, res) => mw(req, res, (err?: unknown) => {
      if (err) return void res.writeHead(500).end();
      handled++;
      res.end('ok');
    }));
    const host = `${tenant.slug}.${BASE}`;
    expect((await get(port, host)).status).toBe(200);
    expect((await get(port, host)).status).toBe(200);
    const refused = await get(port, host);
    expect(refused.status).toBe(402);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'insufficient_credits', balance: 2, cost: 4 });
    expect(handled).toBe(2);
  });
});

test("the router's refusal keeps its status (unknown 404, suspended 403); nothing is debited", async () => {
  const tenant = await cp.tenant();
  await grantCredits(cp.pool, tenant.id, 5);
  let handled = 0;
  const port = await listen(withCredits({ pool: cp.pool, resolveTenant, onError: () => undefined }, (_req, res) => {
    handled++;
    res.end();
  }));
  const unknown = await get(port, `nobody-here.${BASE}`);
  expect(unknown.status).toBe(404);
  expect(JSON.parse(unknown.body)).toMatchObject({ error: 'tenant_refused' });
  await new ControlPlane(cp.pool, 'credits-test').setStatus(tenant.id, 'suspended');
  expect((await get(port, `${tenant.slug}.${BASE}`)).status).toBe(403);
  expect(handled).toBe(0);
  expect(await creditBalance(cp.pool, tenant.id)).toBe(5);
});

test('a control plane that cannot be reached refuses the request (503): nothing runs unpaid', async () => {
  const tenant = await cp.tenant();
  const down = new Pool({ host: '127.0.0.1', port: await freePort(), user: 'nobody', database: 'none', connectionTimeoutMillis: 5_000 });
  const errors: string[] = [];
  let handled = 0;
  const port = await listen(withCredits({ pool: down, resolveTenant: async () => tenant.id, onError: (_e, where) => errors.push(where) }, (_req, res) => {
    handled++;
    res.end();
  }));
  const r = await get(port, 'any');
  expect(r.status).toBe(503);
  expect(JSON.parse(r.body)).toEqual({ error: 'credits_unavailable', message: 'the credit balance could not be checked; try again' });
  expect(handled).toBe(0);
  expect(errors).toEqual(['credit debit']);
  await down.end();
});

test("a cost the caller's code gets wrong is a 500, not the client's 402; nothing is debited", async () => {
  const tenant = await cp.tenant();
  await grantCredits(cp.pool, tenant.id, 5);
  const errors: string[] = [];
  let handled = 0;
  const port = await listen(withCredits({ pool: cp.pool, resolveTenant, cost: () => 0.5, onError: (e) => errors.push((e as Error).message) }, (_req, res) => {
    handled++;
    res.end();
  }));
  const r = await get(port, `${tenant.slug}.${BASE}`);
  expect(r.status).toBe(500);
  expect(JSON.parse(r.body)).toEqual({ error: 'internal_error', message: 'the request cost could not be charged' });
  expect(errors).toEqual(['credits cost 0.5 is not a positive whole number']);
  expect(handled).toBe(0);
  expect(await creditBalance(cp.pool, tenant.id)).toBe(5);
});

test('the low-credit mail: sent once per grant after the debit that crossed 20%, with a Message-ID of the grant', async () => {
  const tenant = await cp.tenant();
  const grant = await grantCredits(cp.pool, tenant.id, 10, { stripeObjectId: 'cs_test_mail_once' });
  const recipient = async (id: string) => (id === tenant.id ? 'owner@acme.test' : undefined);
  const mailer = new LowCreditMailer(cp.pool, { notifier: smtpNotifier(smtp().url), recipient, messageDomain: BASE });
  let delivered!: (d: LowCreditDelivery) => void;
  const delivery = new Promise<LowCreditDelivery>((resolve) => (delivered = resolve));
  const options: CreditsMiddlewareOptions = { pool: cp.pool, resolveTenant, lowCreditMailer: mailer, onLowCreditDelivery: (d) => delivered(d) };
  const port = await listen(withCredits(options, (_req, res) => void res.end()));
  const before = smtp().messages.length;
  for (let i = 0; i < 10; i++) expect((await get(port, `${tenant.slug}.${BASE}`)).status).toBe(200);
  expect(await delivery).toEqual({ sent: 1, failed: 0, errors: [] });
  // Every debit is done; the mail was sent once, for this grant.
  const mails = smtp().messages.slice(before);
  expect(mails.map((m) => m.to)).toEqual([['owner@acme.test']]);
  expect(mails).toHaveLength(1);
  expect(mails[0].header('message-id')).toBe(`<credits-low.${grant.entryId}.${tenant.id}@${BASE}>`);
  expect(mails[0].header('subject')).toBe(`Credits running low for ${tenant.slug}`);
  expect(await mailer.deliverPending({ tenantId: tenant.id })).toEqual({ sent: 0, failed: 0, errors: [] });
  const [notice] = await pg().query('SELECT mail_sent_at IS NOT NULL AS sent, mail_attempts, mail_error FROM tenancy.credit_low_notices WHERE tenant_id = $1', [tenant.id], DB);
  expect(notice).toEqual({ sent: true, mail_attempts: 1, mail_error: null });
});

test('a failed low-credit mail stays pending with its error, and the next delivery sends it once', async () => {
  const tenant = await cp.tenant();
  const grant = await grantCredits(cp.pool, tenant.id, 5);
  const recipient = async () => 'finance@globex.test';
  await debitCredits(cp.pool, tenant.id, 4);
  const broken = new LowCreditMailer(cp.pool, { notifier: smtpNotifier(`smtp://127.0.0.1:${await freePort()}`), recipient, messageDomain: BASE });
  const failed = await broken.deliverPending({ tenantId: tenant.id });
  expect(failed).toMatchObject({ sent: 0, failed: 1, errors: [{ grantEntryId: grant.entryId, tenantId: tenant.id, error: expect.stringMatching(/ECONNREFUSED|connect/) }] });
  const [pending] = await pg().query('SELECT mail_sent_at, mail_attempts, mail_error IS NOT NULL AS has_error FROM tenancy.credit_low_notices WHERE tenant_id = $1', [tenant.id], DB);
  expect(pending).toEqual({ mail_sent_at: null, mail_attempts: 1, has_error: true });

  const working = new LowCreditMailer(cp.pool, { notifier: smtpNotifier(smtp().url), recipient, messageDomain: BASE });
  expect(await working.deliverPending({ tenantId: tenant.id })).toEqual({ sent: 1, failed: 0, errors: [] });
  expect(await working.deliverPending({ tenantId: tenant.id })).toEqual({ sent: 0, failed: 0, errors: [] });
  expect(smtp().to('finance@globex.test').map((m) => m.header('message-id'))).toEqual([`<credits-low.${grant.entryId}.${tenant.id}@${BASE}>`]);
});
