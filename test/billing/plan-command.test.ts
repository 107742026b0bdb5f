/**
 * `tenancy plan <slug> <plan>` on real services (PostgreSQL control plane, Redis, the local Stripe
 * server, a git work tree as the registry; tenants onboarded by the real lifecycle job with the
 * local deployer): the preview printed is the server's own, nothing changes without a
 * confirmation, --yes (or "y" on a terminal) applies the change with the previewed proration
 * date, commits the registry entry and records the plan in the control plane with one audit
 * entry, and a rerun after a failure between Stripe and the registry completes the change without
 * a second Stripe update.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { formatMoney, registerPlanCommand } from '../../lib/cli/plan-command';
import { registerStatusCommand } from '../../lib/cli/status-command';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { runCommand, type CliIo } from '../support/cli';
import { useLifecycleTestbed } from '../support/lifecycle';

const bed = useLifecycleTestbed({ git: true, smtp: false });
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });
let services: LifecycleServices;
const ids: Record<string, string> = {};

/**
 * A terminal on stdin that answers `answer` once it is read (the prompt is shown) and the clock
 * has moved on to the next second: applying at another second than the preview's shows that the
 * previewed proration date is the one applied.
 */
function slowTerminal(answer: string): NodeJS.ReadableStream & { isTTY: boolean } {
  let asked = false;
  const stdin = new Readable({
    read() {
      if (asked) return;
      asked = true;
      const second = Math.floor(Date.now() / 1000);
      const answerWhenNextSecond = () => {
        if (Math.floor(Date.now() / 1000) > second) {
          this.push(answer);
          this.push(null);
        } else setTimeout(answerWhenNextSecond, 20);
      };
      answerWhenNextSecond();
    },
  });
  return Object.assign(stdin, { isTTY: true });
}

/** A terminal on stdin that answers `answer` to the prompt. */
function terminal(answer: string): NodeJS.ReadableStream & { isTTY: boolean } {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  stdin.end(answer);
  return stdin;
}

function plan(args: string[], options: { stdin?: NodeJS.ReadableStream & { isTTY?: boolean }; tty?: boolean } = {}) {
  return runCommand((program: Command, io: CliIo) => registerPlanCommand(program, { ...io, stdin: options.stdin }), ['plan', ...args], { env: bed().childEnv(), tty: options.tty });
}

const lines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l));
const subscriptionOf = async (slug: string) => (await cp('SELECT stripe_subscription_id AS id FROM tenancy.tenants WHERE id = $1', [ids[slug]]))[0].id as string;
/** Updates of the subscription the server applied (an SDK retry the server replays for its idempotency key is not one). */
const subscriptionUpdates = (subscriptionId: string) => bed().stripe.requests.filter((r) => r.method === 'POST' && r.path === `/v1/subscriptions/${subscriptionId}` && r.status === 200 && !r.replayed);
const planChangedAudits = (slug: string) => cp("SELECT actor, details FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'tenant.plan_changed' ORDER BY seq", [ids[slug]]);

/** Everything the command may change, to compare before and after. */
async function state(slug: string) {
  const sub = await bed().stripeClient().subscriptions.retrieve(await subscriptionOf(slug));
  return {
    price: sub.items.data[0].price.lookup_key,
    // The usage items (metered-items.test.ts): a plan change leaves them as they are.
    metered: sub.items.data.slice(1).map((i) => [i.id, i.price.lookup_key]),
    updates: subscriptionUpdates(sub.id).length,
    registry: existsSync(join(bed().root, 'tenants', `${slug}.yaml`)) ? readFileSync(join(bed().root, 'tenants', `${slug}.yaml`), 'utf8') : undefined,
    head: git('rev-parse', 'HEAD').trim(),
    dirty: git('status', '--porcelain', '--', 'tenants').trim(),
    controlPlane: (await cp('SELECT plan, status FROM tenancy.tenants WHERE id = $1', [ids[slug]]))[0],
    audits: (await planChangedAudits(slug)).length,
  };
}

beforeAll(async () => {
  services = bed().track(await bed().open(), (s) => s.close());
  for (const slug of ['alpha', 'bravo']) {
    const s = await submitOnboarding(services, noQueue, { email: `ops@${slug}.example`, company: `${slug} Inc`, slug, plan: 'starter', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
    const r = await runLifecycleJob(services, s.job.id);
    if (r.outcome !== 'succeeded') throw new Error(`onboarding ${slug}: ${r.error}`);
    ids[slug] = s.tenantId;
  }
});

describe('preview and confirmation', () => {
  test('without a terminal and without --yes: the preview (the server\'s own amounts) is printed, the change refused, nothing changed', async () => {
    const before = await state('alpha');
    const r = await plan(['alpha', 'pro']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not applied: no terminal to confirm on; .*--yes/);
    const [preview] = lines(r.stdout);
    expect(preview).toMatchObject({ type: 'preview', slug: 'alpha', tenantId: ids.alpha, from: 'starter', to: 'pro', currency: 'usd', amountDueNow: 0 });

    // The server's preview of the same change at the same proration date.
    const stripe = bed().stripeClient();
    const sub = await stripe.subscriptions.retrieve(preview.subscription);
    const [pro] = (await stripe.prices.list({ lookup_keys: ['tenancy_pro_monthly'] })).data;
    const server = await stripe.invoices.createPreview({
      customer: sub.customer as string,
      subscription: sub.id,
      subscription_details: { items: [{ id: sub.items.data[0].id, price: pro.id, quantity: 1 }], proration_behavior: 'create_prorations', proration_date: preview.prorationDate },
    });
    const serverProrations = server.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => ({ description: l.description, amount: l.amount }));
    expect(serverProrations).toHaveLength(2);
    expect(preview.prorations).toEqual(serverProrations);
    expect(preview.prorationTotal).toBe(serverProrations[0].amount + serverProrations[1].amount);
    expect(preview.nextInvoiceTotal).toBe(server.total);
    expect(preview.nextInvoiceAt).toBe(new Date(sub.items.data[0].current_period_end * 1000).toISOString().replace('.000Z', 'Z'));

    expect(await state('alpha')).toEqual(before);
  });

  test('on a terminal the answer defaults to no: declined, nothing changed; the preview is formatted as money', async () => {
    const before = await state('alpha');
    const r = await plan(['alpha', 'pro'], { stdin: terminal('\n'), tty: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Apply the change of alpha to pro? [y/N] ');
    expect(r.stderr).toContain('not applied; nothing changed');
    expect(r.stdout).toMatch(/^Plan change of alpha \(.*\): starter -> pro$/m);
    expect(r.stdout).toMatch(/^ {2}Unused time on Tenancy Starter after .* -\$\d+\.\d\d$/m);
    expect(r.stdout).toMatch(/^ {2}Due now \(prorations go on the next invoice\) +\$0\.00$/m);
    expect(await state('alpha')).toEqual(before);
  });

  test('currency formatting follows the currency\'s minor unit', () => {
    expect(formatMoney(14729, 'usd')).toBe('$147.29');
    expect(formatMoney(-4812, 'eur')).toBe('-€48.12');
    expect(formatMoney(500, 'jpy')).toBe('¥500');
  });
});

describe('applying', () => {
  test('--yes applies it with the previewed proration date, commits the registry entry, records the plan with one audit entry', async () => {
    const subscriptionId = await subscriptionOf('alpha');
    const before = await state('alpha');
    const r = await plan(['alpha', 'pro', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [preview, changed] = lines(r.stdout);
    expect(changed).toMatchObject({ type: 'changed', from: 'starter', to: 'pro', stripe: 'applied', registry: 'updated', controlPlane: 'recorded', prorationDate: preview.prorationDate });
    expect(changed.next).toMatch(/cdktf deploy tenant-alpha/);

    // One update of the subscription, with the previewed proration date and its idempotency key.
    const updates = subscriptionUpdates(subscriptionId).slice(before.updates);
    expect(updates).toHaveLength(1);
    expect(updates[0].params).toMatchObject({ proration_behavior: 'create_prorations', proration_date: String(preview.prorationDate) });
    expect(updates[0].idempotencyKey).toBe(`tenancy:${ids.alpha}:subscription:${subscriptionId}:plan:pro:${preview.prorationDate}`);
    const after = await state('alpha');
    expect(after.price).toBe('tenancy_pro_monthly');
    expect(after.metered).toEqual(before.metered);
    expect(before.metered.map(([, key]) => key)).toEqual(['tenancy_api_calls_metered', 'tenancy_storage_gb_days_metered', 'tenancy_active_seats_metered']);
    // The prorations billed are the previewed ones.
    const next = await bed().stripeClient().invoices.createPreview({ subscription: subscriptionId });
    expect(next.lines.data.filter((l) => l.parent?.subscription_item_details?.proration).map((l) => l.amount)).toEqual(preview.prorations.map((l: { amount: number }) => l.amount));

    // The registry entry, committed alone.
    expect(parse(after.registry!)).toMatchObject({ id: ids.alpha, slug: 'alpha', plan: 'pro' });
    expect(after.dirty).toBe('');
    expect(git('log', '-1', '--format=%s', '--name-only').trim().split('\n')).toEqual(['Change plan of tenant alpha: starter -> pro', '', 'tenants/alpha.yaml']);
    expect(await services.registry.load().then((reg) => reg.tenants.find((t) => t.slug === 'alpha')!.plan)).toBe('pro');

    // The control plane, with one audit entry.
    expect(after.controlPlane).toEqual({ plan: 'pro', status: 'active' });
    expect(await planChangedAudits('alpha')).toEqual([{
      actor: 'lifecycle-test',
      details: expect.objectContaining({ from: 'starter', to: 'pro', subscription: subscriptionId, prorationDate: preview.prorationDate, prorations: preview.prorations, prorationTotal: preview.prorationTotal, nextInvoiceTotal: preview.nextInvoiceTotal, stripe: 'applied' }),
    }]);
    const status = await runCommand(registerStatusCommand, ['status', 'alpha', '--json'], { env: bed().childEnv() });
    expect(JSON.parse(status.stdout)).toMatchObject({ slug: 'alpha', plan: 'pro', status: 'active' });

    // Again: the same plan, refused, nothing sent to Stripe.
    const again = await plan(['alpha', 'pro', '--yes']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/tenant alpha is on plan pro already/);
    expect(await state('alpha')).toEqual(after);
  });

  test('"y" on a terminal applies it, read later: still at the previewed proration date', async () => {
    const subscriptionId = await subscriptionOf('bravo');
    const before = await state('bravo');
    const r = await plan(['bravo', 'pro'], { stdin: slowTerminal('y\n'), tty: true });
    expect(r.stderr).toBe('Apply the change of bravo to pro? [y/N] ');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Changed bravo to plan pro: Stripe applied, registry entry updated .*, control plane recorded \(audited\)\.$/m);
    const previewed = Date.parse(/proration date (\S+)$/m.exec(r.stdout)![1]) / 1000;
    const updates = subscriptionUpdates(subscriptionId).slice(before.updates);
    expect(updates.map((u) => u.params.proration_date)).toEqual([String(previewed)]);
    expect(await state('bravo')).toMatchObject({ price: 'tenancy_pro_monthly', controlPlane: { plan: 'pro' }, audits: 1, dirty: '' });
  });

  test('a failure between Stripe and the registry commit: the rerun completes it without a second Stripe change', async () => {
    const subscriptionId = await subscriptionOf('bravo');
    const before = await state('bravo');
    // Another git process holds the index: the registry commit fails after Stripe applied the change.
    const indexLock = join(bed().root, '.git', 'index.lock');
    writeFileSync(indexLock, '');
    let first;
    try {
      first = await plan(['bravo', 'enterprise', '--yes']);
    } finally {
      rmSync(indexLock, { force: true });
    }
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/tenant bravo: Stripe bills the new plan, but updating the registry entry failed .*index\.lock.*run the same command again/s);
    const [preview] = lines(first.stdout);
    const failed = await state('bravo');
    expect(failed.price).toBe('tenancy_enterprise_monthly');
    expect(failed.updates).toBe(before.updates + 1);
    expect(failed.head).toBe(before.head);
    expect(failed.controlPlane).toEqual({ plan: 'pro', status: 'active' });
    expect(failed.audits).toBe(1);

    const rerun = await plan(['bravo', 'enterprise', '--yes']);
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    const [resume, changed] = lines(rerun.stdout);
    // What Stripe billed for the first run's change, read back from it.
    expect(resume).toMatchObject({ type: 'resume', from: 'pro', to: 'enterprise', subscription: subscriptionId, prorationDate: preview.prorationDate, prorations: preview.prorations, prorationTotal: preview.prorationTotal });
    expect(changed).toMatchObject({ type: 'changed', stripe: 'already-applied', controlPlane: 'recorded' });
    const after = await state('bravo');
    expect(after.updates).toBe(failed.updates); // no second Stripe change
    expect(parse(after.registry!)).toMatchObject({ plan: 'enterprise' });
    expect(after.dirty).toBe('');
    expect(git('log', '-1', '--format=%s').trim()).toBe('Change plan of tenant bravo: pro -> enterprise');
    expect(after.controlPlane).toEqual({ plan: 'enterprise', status: 'active' });
    const audits = await planChangedAudits('bravo');
    expect(audits).toHaveLength(2);
    expect(audits[1].details).toMatchObject({ from: 'pro', to: 'enterprise', stripe: 'already-applied', prorationDate: preview.prorationDate, prorationTotal: preview.prorationTotal });
  });
});

describe('bad requests are refused, naming the tenant or plan, and change nothing', () => {
  test.each([
    [['Not_A_Slug', 'pro'], /slug "Not_A_Slug" is not a safe tenant slug/],
    [['nosuch', 'pro'], /no tenant nosuch in the registry/],
    [['alpha', 'platinum'], /unknown plan "platinum" \(plans: free, starter, pro, enterprise\)/],
    [['alpha', 'pro'], /tenant alpha is on plan pro already/],
    [['alpha', 'free'], /tenant alpha: moving to plan free is not a prorated change/],
  ])('tenancy plan %j', async (args, message) => {
    const before = await state('alpha');
    const r = await plan([...args, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await state('alpha')).toEqual(before);
  });

  test('a tenant that is not active', async () => {
    await services.controlPlane.setStatus(ids.alpha, 'suspended');
    try {
      const before = await state('alpha');
      const r = await plan(['alpha', 'enterprise', '--yes']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/tenant alpha is suspended in the control plane, not active/);
      expect(await state('alpha')).toEqual(before);
    } finally {
      await services.controlPlane.setStatus(ids.alpha, 'active');
    }
  });
});

describe('the database registry source', () => {
  test('the entry in tenancy.registry_entries gets the plan, with the control plane and one audit entry', async () => {
    const dbServices = bed().track(await bed().open({ registrySource: 'database' }), (s) => s.close());
    const s = await submitOnboarding(dbServices, noQueue, { email: 'ops@charlie.example', company: 'Charlie Inc', slug: 'charlie', plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
    const r = await runLifecycleJob(dbServices, s.job.id);
    if (r.outcome !== 'succeeded') throw new Error(`onboarding charlie: ${r.error}`);
    ids.charlie = s.tenantId;
    const head = git('rev-parse', 'HEAD').trim();

    const changed = await runCommand((program: Command, io: CliIo) => registerPlanCommand(program, io), ['plan', 'charlie', 'starter', '--yes'], { env: bed().childEnv({ TENANCY_REGISTRY_SOURCE: 'database' }) });
    expect(changed.stderr).toBe('');
    expect(changed.code).toBe(0);
    expect(lines(changed.stdout)[1]).toMatchObject({ type: 'changed', from: 'pro', to: 'starter', stripe: 'applied', registry: 'updated', controlPlane: 'recorded' });
    // A downgrade credits more than it charges.
    expect(lines(changed.stdout)[0].prorationTotal).toBeLessThan(0);
    expect(await cp("SELECT entry->>'plan' AS plan FROM tenancy.registry_entries WHERE slug = 'charlie'")).toEqual([{ plan: 'starter' }]);
    expect((await dbServices.registry.load()).tenants.find((t) => t.slug === 'charlie')!.plan).toBe('starter');
    expect(await state('charlie').then((st) => ({ price: st.price, controlPlane: st.controlPlane, audits: st.audits }))).toEqual({ price: 'tenancy_starter_monthly', controlPlane: { plan: 'starter', status: 'active' }, audits: 1 });
    expect(git('rev-parse', 'HEAD').trim()).toBe(head); // nothing in git
  });
});

describe('the control plane synced first by something else', () => {
  test('a plan a Stripe webhook recorded before the rerun still gets the one audit entry of the confirmed change', async () => {
    const { plan: from } = (await state('alpha')).controlPlane;
    const indexLock = join(bed().root, '.git', 'index.lock');
    writeFileSync(indexLock, '');
    let first;
    try {
      first = await plan(['alpha', 'enterprise', '--yes']);
    } finally {
      rmSync(indexLock, { force: true });
    }
    expect(first.code).toBe(1);
    const [preview] = lines(first.stdout);
    // What webhooks.ts does on customer.subscription.updated: the control plane follows Stripe (no plan_changed entry).
    await cp("UPDATE tenancy.tenants SET plan = 'enterprise' WHERE id = $1", [ids.alpha]);
    const audits = (await planChangedAudits('alpha')).length;

    const rerun = await plan(['alpha', 'enterprise', '--yes']);
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    expect(lines(rerun.stdout)[1]).toMatchObject({ type: 'changed', from, to: 'enterprise', stripe: 'already-applied', registry: 'unchanged', controlPlane: 'recorded' });
    const entries = await planChangedAudits('alpha');
    expect(entries).toHaveLength(audits + 1);
    expect(entries.at(-1)!.details).toMatchObject({ from, to: 'enterprise', prorationDate: preview.prorationDate, prorations: preview.prorations, stripe: 'already-applied' });
    expect(git('log', '-1', '--format=%s').trim()).toBe(`Change plan of tenant alpha: ${from} -> enterprise`);
    // A third run: on the plan everywhere, refused; nothing audited again.
    const again = await plan(['alpha', 'enterprise', '--yes']);
    expect(again.code).toBe(2);
    expect(await planChangedAudits('alpha')).toHaveLength(audits + 1);
  });
});
