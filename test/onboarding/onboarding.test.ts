import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import { Command, CommanderError } from 'commander';
import { parse } from 'yaml';
import { registerOnboardCommand } from '../../lib/cli/onboard-command';
import { registerStatusCommand } from '../../lib/cli/status-command';
import { WebhookEscalationPolicy } from '../../lib/onboarding/escalation';
import { bullJobId, LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import { OnboardingRequestError, type OnboardingRequest } from '../../lib/onboarding/request';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { localCredentialsRef } from '../../lib/onboarding/stack-deployer';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob, startLifecycleWorker } from '../../lib/onboarding/worker';
import { runCommand } from '../support/cli';
import { POOL_APP_PASSWORD, useLifecycleTestbed } from '../support/lifecycle';

/**
 * Onboarding end to end, locally (synthesize-only deploy): real PostgreSQL, Redis (BullMQ and the
 * lock), the local Stripe-compatible server and a local SMTP server; the project root is a git
 * work tree holding the sample registry.
 */
const bed = useLifecycleTestbed({ sampleTenants: true, git: true });
let services: LifecycleServices;
let queue: LifecycleQueue;
let worker: Worker;

/** A queue that accepts nothing: jobs are run directly by the test (runLifecycleJob). */
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;

const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  // Closed by the testbed before its servers stop.
  services = bed().track(await bed().open(), (s) => s.close());
  // Two attempts, a short backoff: a job that keeps failing fails the test at once instead of retrying for minutes.
  queue = bed().track(new LifecycleQueue(redisOptionsFromUrl(bed().redis.url), services.config.queueName, { attempts: 2, backoffMs: 100 }), (q) => q.close());
  worker = bed().track(startLifecycleWorker(services, { concurrency: 2 }), (w) => w.close());
});

async function customersOf(tenantId: string) {
  return (await bed().stripeClient().customers.search({ query: `metadata['tenant_id']:'${tenantId}'` })).data;
}
async function subscriptionsOf(customer: string) {
  return (await bed().stripeClient().subscriptions.list({ customer, status: 'all' })).data;
}

describe('onboarding a bridge and a pool tenant through the queue', () => {
  const requests: Record<'bridge' | 'pool', OnboardingRequest> = {
    bridge: { email: 'ops@brightline.example', company: 'Brightline Analytics', plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' },
    pool: { email: 'hello@pebble.example', company: 'Pebble & Co', plan: 'starter', model: 'pool', region: 'us-east-1', paymentMethod: 'pm_card_visa' },
  };
  const submitted: Partial<Record<'bridge' | 'pool', SubmittedOnboarding>> = {};
  let auditBefore: number;

  beforeAll(async () => {
    auditBefore = (await cp('SELECT count(*)::int AS n FROM tenancy.audit_log'))[0].n;
    submitted.bridge = await submitOnboarding(services, queue, requests.bridge);
    submitted.pool = await submitOnboarding(services, queue, requests.pool);
    await Promise.all([queue.waitFor(bullJobId('onboard', submitted.bridge.tenantId), 170_000), queue.waitFor(bullJobId('onboard', submitted.pool.tenantId), 170_000)]);
  });

  test('the slugs come from the company names; both tenants are active, every step done once', async () => {
    expect(submitted.bridge!.slug).toBe('brightline-analytics');
    expect(submitted.pool!.slug).toBe('pebble-co');
    const rows = await cp("SELECT slug, model, plan, status FROM tenancy.tenants WHERE slug IN ('brightline-analytics', 'pebble-co') ORDER BY slug");
    expect(rows).toEqual([
      { slug: 'brightline-analytics', model: 'bridge', plan: 'pro', status: 'active' },
      { slug: 'pebble-co', model: 'pool', plan: 'starter', status: 'active' },
    ]);
    for (const s of [submitted.bridge!, submitted.pool!]) {
      const steps = (await services.store.steps(s.job.id)).map((r) => r.step);
      expect(steps).toEqual(['registry', 'synthesize', 'deploy', 'register', 'provision', 'migrate', 'billing', 'welcome', 'activate']);
      expect((await services.store.jobById(s.job.id))!.status).toBe('succeeded');
    }
  });

  test('the registry files are written, active, and committed to git (one commit each for creation and activation)', () => {
    for (const s of [submitted.bridge!, submitted.pool!]) {
      const entry = parse(readFileSync(join(bed().root, 'tenants', `${s.slug}.yaml`), 'utf8'));
      expect(entry).toMatchObject({ id: s.tenantId, slug: s.slug, status: 'active' });
      expect(git('log', '--format=%s', '--', `tenants/${s.slug}.yaml`).trim().split('\n')).toEqual([`Tenant ${s.slug} is active`, expect.stringMatching(new RegExp(`^Onboard tenant ${s.slug} `))]);
    }
    expect(git('status', '--porcelain', '--', 'tenants').trim()).toBe('');
    expect(readdirSync(join(bed().root, 'tenants')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  test('only the tenant\'s stack was synthesized', () => {
    const stacks = readdirSync(join(bed().dir, 'work', 'jobs', `onboard-pebble-co-${submitted.pool!.tenantId}`, 'cdktf.out', 'stacks'));
    expect(stacks).toEqual(['tenant-pebble-co']);
  });

  test('bridge: the schema is provisioned and migrated, and the login role (its password in the local secret store) works', async () => {
    const applied = await bed().pg.query("SELECT version FROM tenancy.schema_migrations WHERE target = 'tenant_brightline_analytics' ORDER BY version", [], 'tenants');
    expect(applied.map((r) => r.version)).toEqual([1, 2]);
    const { password } = await services.localSecrets.resolve(localCredentialsRef('brightline-analytics'));
    const c = await bed().pg.connect({ user: 'tenant_brightline_analytics_app', password, database: 'tenants' });
    try {
      expect((await c.query('SHOW search_path')).rows[0].search_path).toBe('tenant_brightline_analytics');
      await c.query("INSERT INTO projects (id, name) VALUES ('0b7e3c52-6d1f-4e8a-b2c9-7a4f1e3d5c99', 'first')");
      await expect(c.query('CREATE TABLE x (i int)')).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
  });

  test('pool: migrated, RLS enabled and forced; the app role sees only the tenant it sets', async () => {
    const tables = await bed().pg.query("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'pool'::regnamespace AND relkind = 'r' ORDER BY relname", [], 'pool');
    expect(tables).toEqual([
      { relname: 'projects', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'tasks', relrowsecurity: true, relforcerowsecurity: true },
    ]);
    const c = await bed().pg.connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: 'pool' });
    try {
      await expect(c.query(`INSERT INTO projects (tenant_id, id, name) VALUES ('${submitted.pool!.tenantId}', gen_random_uuid(), 'x')`)).rejects.toThrow(/row-level security/);
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [submitted.pool!.tenantId]);
      await c.query(`INSERT INTO projects (tenant_id, id, name) VALUES ('${submitted.pool!.tenantId}', gen_random_uuid(), 'x')`);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  test('Stripe: exactly one customer (with the contact details) and one active subscription each, recorded in the control plane', async () => {
    for (const [kind, s] of Object.entries(submitted) as ['bridge' | 'pool', SubmittedOnboarding][]) {
      const customers = await customersOf(s.tenantId);
      expect(customers).toHaveLength(1);
      expect(customers[0]).toMatchObject({ email: requests[kind].email, name: requests[kind].company });
      const subs = await subscriptionsOf(customers[0].id);
      expect(subs).toHaveLength(1);
      expect(subs[0].status).toBe('active');
      // The plan's price plus one metered usage item per dimension (test/billing/metered-items.test.ts).
      expect(subs[0].items.data.map((i) => i.price.recurring?.usage_type)).toEqual(['licensed', 'metered', 'metered', 'metered']);
      expect(await services.controlPlane.stripeIds(s.tenantId)).toEqual({ customerId: customers[0].id, subscriptionId: subs[0].id });
    }
  });

  test('one welcome mail each, to the admin, with a stable Message-ID', async () => {
    for (const [kind, s] of Object.entries(submitted) as ['bridge' | 'pool', SubmittedOnboarding][]) {
      const mails = bed().smtp!.to(requests[kind].email);
      expect(mails).toHaveLength(1);
      expect(mails[0].header('subject')).toBe('Your saas.example.com workspace is ready');
      expect(mails[0].header('message-id')).toBe(`<welcome.${s.tenantId}@saas.example.com>`);
      expect(mails[0].raw).toContain(`https://${s.slug}.saas.example.com`);
    }
  });

  test('a tenant.created event in the outbox, once per tenant', async () => {
    for (const s of [submitted.bridge!, submitted.pool!]) {
      const events = await services.store.outbox(s.tenantId);
      expect(events.map((e) => [e.eventType, e.idempotencyKey])).toEqual([['tenant.created', `tenant.created:${s.tenantId}`]]);
      expect(events[0].payload).toMatchObject({ tenantId: s.tenantId, slug: s.slug, namespace: `tenant-${s.slug}` });
    }
  });

  test('the audit log has the request, the attempt, every step, the status changes and the end', async () => {
    const audit = await cp('SELECT actor, action, details FROM tenancy.audit_log WHERE tenant_id = $1 ORDER BY id', [submitted.pool!.tenantId]);
    const actions = audit.map((a) => (a.action === 'onboard.step' ? `step:${a.details.step}` : a.action));
    expect(actions).toEqual(expect.arrayContaining([
      'tenant.registered', 'onboard.requested', 'onboard.attempt',
      'step:registry', 'step:synthesize', 'step:deploy', 'step:register', 'step:provision', 'step:migrate', 'step:billing', 'step:welcome', 'step:activate',
      'tenant.status', 'tenant.stripe_customer', 'tenant.stripe_subscription', 'onboard.succeeded',
    ]));
    expect(actions.indexOf('step:activate')).toBeLessThan(actions.indexOf('onboard.succeeded'));
    expect(new Set(audit.map((a) => a.actor))).toEqual(new Set(['lifecycle-test']));
    expect((await cp('SELECT count(*)::int AS n FROM tenancy.audit_log'))[0].n).toBeGreaterThan(auditBefore);
  });

  test('a finished job is an instant no-op: nothing runs, nothing is written', async () => {
    const before = await cp('SELECT (SELECT count(*) FROM tenancy.audit_log)::int AS audit, (SELECT count(*) FROM tenancy.hook_runs)::int AS runs');
    const result = await runLifecycleJob(services, submitted.bridge!.job.id);
    expect(result).toMatchObject({ outcome: 'already-succeeded', ran: [] });
    expect(await queue.enqueue(submitted.bridge!.job)).toEqual({ id: bullJobId('onboard', submitted.bridge!.tenantId), state: 'completed' });
    expect(await cp('SELECT (SELECT count(*) FROM tenancy.audit_log)::int AS audit, (SELECT count(*) FROM tenancy.hook_runs)::int AS runs')).toEqual(before);
  });

  test('tenancy status: a table, and JSON with lifecycle state, steps, migration version and Stripe ids', async () => {
    const json = await status('brightline-analytics', '--json');
    expect(json.code).toBe(0);
    const view = JSON.parse(json.stdout);
    const ids = await services.controlPlane.stripeIds(submitted.bridge!.tenantId);
    expect(view).toMatchObject({
      slug: 'brightline-analytics', status: 'active', model: 'bridge', plan: 'pro', lastError: null,
      migration: { target: 'tenant_brightline_analytics', version: 2 },
      stripe: { customerId: ids!.customerId, subscriptionId: ids!.subscriptionId },
    });
    expect(view.jobs).toEqual([expect.objectContaining({ kind: 'onboard', status: 'succeeded', attempts: 1, stepsDone: expect.arrayContaining(['activate']) })]);
    const table = await status();
    expect(table.stdout).toMatch(/brightline-analytics/);
    expect(table.stdout).toMatch(/pebble-co/);
    expect(table.stdout).toMatch(/onboard: succeeded/);
    const unknown = await status('nobody-here');
    expect(unknown.code).toBe(2);
  });
});

describe('tenancy onboard', () => {
  test('--wait: accepted, then active once the worker is done (JSON lines); an invalid request is exit 2 with the problems', async () => {
    const ok = await command(registerOnboardCommand, 'onboard', '--email', 'cli@viaduct.example', '--company', 'Viaduct Systems', '--plan', 'pro', '--model', 'pool',
      '--region', 'us-east-1', '--payment-method', 'pm_card_visa', '--request-key', 'viaduct-signup-0001', '--wait', '--json');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const [accepted, status] = ok.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(accepted).toMatchObject({ type: 'accepted', slug: 'viaduct-systems', created: true, queue: { state: 'added' } });
    expect(status).toMatchObject({ type: 'status', slug: 'viaduct-systems', status: 'active' });
    // The same request key again: the same tenant, nothing new.
    const again = await command(registerOnboardCommand, 'onboard', '--email', 'cli@viaduct.example', '--company', 'Viaduct Systems', '--plan', 'pro', '--model', 'pool',
      '--region', 'us-east-1', '--request-key', 'viaduct-signup-0001', '--json');
    expect(JSON.parse(again.stdout.trim())).toMatchObject({ type: 'accepted', tenantId: accepted.tenantId, created: false, queue: { state: 'succeeded' } });
    const bad = await command(registerOnboardCommand, 'onboard', '--email', 'nope', '--company', 'Bad <Co>', '--plan', 'gold', '--model', 'pool', '--region', 'us-east-1', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout.trim()).problems.map((p: { field: string }) => p.field).sort()).toEqual(['company', 'email', 'plan']);
    expect(bad.stderr).toMatch(/company: may contain letters/);
  });
});

describe('bad inputs are rejected before anything is written', () => {
  test.each<[string, Partial<OnboardingRequest>]>([
    ['a duplicate slug', { slug: 'acme' }],
    ['a duplicate domain', { customDomain: 'portal.initech.example' }],
    ['an invalid email', { email: 'nobody' }],
    ['an unknown plan', { plan: 'gold' }],
    ['HIPAA on pool', { model: 'pool', compliance: { hipaa: true } }],
    ['SQL in the company name', { company: "Evil'); DROP TABLE tenancy.tenants;--" }],
    ['SQL in the slug', { slug: 'x; DROP SCHEMA pool CASCADE' }],
  ])('%s', async (_name, change) => {
    const snapshot = async () => ({
      cp: await cp('SELECT (SELECT count(*) FROM tenancy.tenants)::int AS tenants, (SELECT count(*) FROM tenancy.audit_log)::int AS audit, (SELECT count(*) FROM tenancy.lifecycle_jobs)::int AS jobs, (SELECT count(*) FROM tenancy.tenant_domains)::int AS domains'),
      files: readdirSync(join(bed().root, 'tenants')).sort(),
      commits: git('rev-list', '--count', 'HEAD').trim(),
      queued: await queue.queue.getJobCounts(),
    });
    const before = await snapshot();
    const request = { email: 'a@reject.example', company: 'Rejected Inc', plan: 'pro', model: 'bridge', region: 'us-east-1', ...change };
    await expect(submitOnboarding(services, queue, request)).rejects.toBeInstanceOf(OnboardingRequestError);
    expect(await snapshot()).toEqual(before);
  });
});

describe('two workers on one tenant', () => {
  test('while one runs the job, the other finds the tenant locked and does nothing; afterwards it is a no-op', async () => {
    const s = await submitOnboarding(services, noQueue, { email: 'a@race.example', company: 'Race Condition Ltd', plan: 'starter', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
    let paused!: () => void;
    const atDeploy = new Promise<void>((r) => (paused = r));
    let resume!: () => void;
    const gate = new Promise<void>((r) => (resume = r));
    const first = runLifecycleJob(services, s.job.id, { beforeStep: async (step) => { if (step === 'deploy') { paused(); await gate; } } });
    await Promise.race([atDeploy, first.then((r) => { throw new Error(`the job ended before the deploy step: ${JSON.stringify(r)}`); })]);
    const other = await bed().open();
    try {
      const second = await runLifecycleJob(other, s.job.id);
      expect(second).toMatchObject({ outcome: 'locked', ran: [] });
      resume();
      expect(await first).toMatchObject({ outcome: 'succeeded' });
      expect(await runLifecycleJob(other, s.job.id)).toMatchObject({ outcome: 'already-succeeded', ran: [] });
    } finally {
      await other.close();
    }
    expect((await services.store.jobById(s.job.id))!.attempts).toBe(1);
  });

  test('started at the same moment: exactly one does the work', async () => {
    const s = await submitOnboarding(services, noQueue, { email: 'a@same-time.example', company: 'Same Time Co', plan: 'starter', model: 'pool', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
    const other = await bed().open();
    try {
      const results = await Promise.all([runLifecycleJob(services, s.job.id), runLifecycleJob(other, s.job.id)]);
      const outcomes = results.map((r) => r.outcome).sort();
      expect(outcomes[1]).toBe('succeeded');
      expect(['locked', 'already-succeeded']).toContain(outcomes[0]);
      expect(results.flatMap((r) => r.ran)).toHaveLength(9);
    } finally {
      await other.close();
    }
    expect(await customersOf(s.tenantId)).toHaveLength(1);
  });
});

describe('a paid plan without a payment method', () => {
  test('the billing step fails with the Checkout URL; after the customer pays, the retry completes the job', async () => {
    const s = await submitOnboarding(services, noQueue, { email: 'pay@later.example', company: 'Pay Later GmbH', plan: 'pro', model: 'pool', region: 'us-east-1' });
    // An attempt the queue will retry leaves the job queued, its error shown, not failed.
    const retrying = await runLifecycleJob(services, s.job.id, { willRetry: true });
    expect(retrying.outcome).toBe('failed');
    expect(await services.store.jobById(s.job.id)).toMatchObject({ status: 'queued', lastError: expect.stringMatching(/needs a payment method/) });
    // The last attempt (or a manual run) fails the job.
    const failed = await runLifecycleJob(services, s.job.id);
    expect(failed.outcome).toBe('failed');
    expect(failed.error).toMatch(/needs a payment method .* send the customer to http:\/\/127\.0\.0\.1:\d+\/.*cs_/);
    const [view] = await statusJson('pay-later-gmbh');
    expect(view).toMatchObject({ status: 'provisioning', lastError: expect.stringMatching(/needs a payment method/) });
    expect(view.jobs[0]).toMatchObject({ status: 'failed', nextStep: 'billing' });
    const session = /\/(cs_[A-Za-z0-9_]+)/.exec(failed.error!)![1];
    bed().stripe.completeCheckoutSession(bed().stripeKey, session);
    const retried = await runLifecycleJob(services, s.job.id);
    expect(retried).toMatchObject({ outcome: 'succeeded', resumed: ['registry', 'synthesize', 'deploy', 'register', 'provision', 'migrate'], ran: ['billing', 'welcome', 'activate'] });
    const customers = await customersOf(s.tenantId);
    expect(customers).toHaveLength(1);
    expect(await subscriptionsOf(customers[0].id)).toHaveLength(1);
  });
});

describe('enterprise tenants get an escalation policy', () => {
  let server: Server;
  const received: { key: string | undefined; body: any }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ policyId: `EP-${received.length}` }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('the escalation step calls the policy hook once, after billing; other plans skip it', async () => {
    const escalation = new WebhookEscalationPolicy({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/policies` });
    const withHook = await bed().open({}, { escalation });
    try {
      const s = await submitOnboarding(withHook, noQueue, { email: 'cto@bigcorp.example', company: 'BigCorp Holdings', plan: 'enterprise', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
      const result = await runLifecycleJob(withHook, s.job.id);
      expect(result.outcome).toBe('succeeded');
      expect(result.ran).toEqual(['registry', 'synthesize', 'deploy', 'register', 'provision', 'migrate', 'billing', 'escalation', 'welcome', 'activate']);
      expect(received).toEqual([{ key: `escalation.${s.tenantId}`, body: expect.objectContaining({ tenantId: s.tenantId, plan: 'enterprise', contact: 'cto@bigcorp.example' }) }]);
      expect((await withHook.store.steps(s.job.id)).find((r) => r.step === 'escalation')!.result).toEqual({ provider: 'webhook', policyId: 'EP-1', status: 200 });
    } finally {
      await withHook.close();
    }
  });
});

describe('the control-plane database as the registry source', () => {
  test('the entry is a row (no file), validated like a file; the tenant onboards the same way', async () => {
    const db = await bed().open({ registrySource: 'database' });
    try {
      const s = await submitOnboarding(db, noQueue, { email: 'a@rowbased.example', company: 'Row Based', plan: 'free', model: 'pool', region: 'us-east-1' });
      expect(existsSync(join(bed().root, 'tenants', `${s.slug}.yaml`))).toBe(false);
      const result = await runLifecycleJob(db, s.job.id);
      expect(result.outcome).toBe('succeeded');
      expect(await cp("SELECT entry->>'status' AS status, entry->>'adminEmail' AS email FROM tenancy.registry_entries WHERE slug = 'row-based'")).toEqual([{ status: 'active', email: 'a@rowbased.example' }]);
      // Free plan: a customer, no subscription (lib/billing).
      const customers = await customersOf(s.tenantId);
      expect(customers).toHaveLength(1);
      expect(await subscriptionsOf(customers[0].id)).toHaveLength(0);
      // The same rules: a row that breaks them is reported with its place.
      await cp(`INSERT INTO tenancy.registry_entries (slug, id, entry) VALUES ('bad-row', gen_random_uuid(), '{"slug":"bad-row","plan":"free","model":"silo"}')`);
      await expect(db.registry.load()).rejects.toThrow(/control-plane:registry_entries\/bad-row: id: /);
      await cp("DELETE FROM tenancy.registry_entries WHERE slug = 'bad-row'");
    } finally {
      await db.close();
    }
  });
});

function status(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return command(registerStatusCommand, 'status', ...args);
}

/** Runs one `tenancy` command in-process with this testbed's environment. */
function command(register: Parameters<typeof runCommand>[0], ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(register, args, { env: bed().childEnv() });
}

async function statusJson(slug: string): Promise<any[]> {
  const r = await status(slug, '--json');
  return [JSON.parse(r.stdout)];
}
