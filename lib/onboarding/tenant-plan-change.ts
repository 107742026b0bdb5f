import type Stripe from 'stripe';
import { BillingError, type AppliedPlanChange, type PlanChangePreview, type PlanChangeStatus, type ProrationLine, type StripeBilling } from '../billing';
import type { ControlPlane } from '../control-plane/control-plane';
import { assertSafeSlug } from '../naming';
import { checkRegistryRules } from '../registry/load-registry';
import { formatProblem, type RegistryProblem } from '../registry/registry-error';
import { PLANS, type Plan, type Tenant } from '../registry/tenant-schema';
import { formatPath } from '../registry/yaml-file';
import type { RedisLock } from './lock';
import type { RegistrySource } from './registry-source';

/**
 * A confirmed plan change of one tenant (`tenancy plan <slug> <plan>`, lib/cli/plan-command.ts),
 * in two calls with the confirmation between them:
 *
 * 1. {@link preparePlanChange} checks the request (a live, active tenant in the registry and the
 *    control plane; a known, paid plan other than its own; the registry's rules with the new plan)
 *    and asks Stripe where the change stands: `pending` with the proration preview
 *    (`invoices.createPreview` at a proration date), or `applied` by an earlier run that stopped
 *    before recording it (a resume). Nothing is written.
 * 2. {@link applyPlanChange}, under the tenant's lifecycle lock, in this order so that a failure
 *    anywhere is completed by running the same command again: Stripe (the licensed subscription item moved
 *    to the new price with the previewed proration date and the idempotency key
 *    `tenancy:<id>:subscription:<sub>:plan:<plan>:<proration-date>`: a retry of a lost response is
 *    replayed, not applied twice); the registry entry's plan (written whole and committed, like
 *    onboarding's writes); the control plane's `tenants.plan` with one audit entry
 *    `tenant.plan_changed`, in one transaction. A rerun after Stripe applied finds the subscription
 *    on the new price (`applied`) and writes only what is missing, without a second Stripe change.
 *
 * Infrastructure is not changed here: the tenant's stack (quotas, replicas, PgBouncer, a silo's
 * database size) follows the registry at its next `cdktf deploy`, and its database role limits at
 * the `tenancy post-apply` after that (README "Plans").
 */

/** A request refused before anything changed: bad input (exit 2 from the CLI). */
export class PlanChangeRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanChangeRefusedError';
  }
}

/**
 * Stripe bills the new plan but the registry or the control plane was not updated (a failure
 * after Stripe applied the change): running the same command again completes them, without a
 * second Stripe change. Until then the registry and `tenancy status` show the old plan.
 */
export class PlanChangeIncompleteError extends Error {
  constructor(readonly slug: string, readonly stage: 'registry' | 'control-plane', cause: unknown) {
    super(
      `tenant ${slug}: Stripe bills the new plan, but updating the ${stage === 'registry' ? 'registry entry' : 'control plane'} failed ` +
        `(${cause instanceof Error ? cause.message : String(cause)}); run the same command again to complete it (Stripe is not changed twice)`,
      { cause },
    );
    this.name = 'PlanChangeIncompleteError';
  }
}

/** The parts of LifecycleServices a plan change uses. */
export interface PlanChangeServices {
  readonly registry: RegistrySource;
  readonly controlPlane: ControlPlane;
  readonly lock: RedisLock;
}

/** Stripe for plan changes: the SDK client and the billing on it (BillingProvider.planChanges). */
export interface PlanChangeBilling {
  readonly stripe: Stripe;
  readonly billing: StripeBilling;
}

export interface PreparedPlanChange {
  readonly tenantId: string;
  readonly slug: string;
  readonly model: Tenant['model'];
  /** The plan the change is from (as recorded before it). */
  readonly from: Plan;
  readonly to: Plan;
  /** The registry entry's and the control plane's plans when prepared (apply refuses if either moved meanwhile). */
  readonly registryPlan: Plan;
  readonly controlPlanePlan: string;
  readonly stripe: PlanChangeStatus;
  /** Where the registry lives (for messages and the audit entry). */
  readonly registry: string;
}

export interface PlanChangeOutcome {
  readonly stripe: 'applied' | 'already-applied';
  readonly registry: 'updated' | 'unchanged';
  readonly controlPlane: 'recorded' | 'unchanged';
  readonly subscription: Stripe.Subscription | undefined;
}

export async function preparePlanChange(services: Pick<PlanChangeServices, 'registry' | 'controlPlane'>, planChanges: PlanChangeBilling, slug: string, plan: string): Promise<PreparedPlanChange> {
  try {
    assertSafeSlug(slug, 'plan');
  } catch (e) {
    throw new PlanChangeRefusedError((e as Error).message);
  }
  if (!(PLANS as readonly string[]).includes(plan)) throw new PlanChangeRefusedError(`unknown plan ${JSON.stringify(plan)} (plans: ${PLANS.join(', ')})`);
  const to = plan as Plan;
  if (!(await services.registry.get(slug))) throw new PlanChangeRefusedError(`no tenant ${slug} in the registry (${services.registry.describe()})`);
  const registry = await services.registry.load();
  const tenant = registry.tenants.find((t) => t.slug === slug)!;
  const record = await services.controlPlane.tenantBySlug(slug);
  if (!record || record.id.toLowerCase() !== tenant.id.toLowerCase()) throw new PlanChangeRefusedError(`tenant ${slug} (${tenant.id}) is not registered in the control plane (is it onboarded?)`);
  for (const [where, status] of [['the registry', tenant.status], ['the control plane', record.status]] as const) {
    if (status !== 'active') throw new PlanChangeRefusedError(`tenant ${slug} is ${status} in ${where}, not active: its plan cannot change now`);
  }
  const onPlan = tenant.plan === to && record.plan === to;
  if (!onPlan) {
    for (const free of [tenant.plan, to].filter((p) => p === 'free')) {
      throw new PlanChangeRefusedError(
        `tenant ${slug}: moving ${free === to ? 'to' : 'from'} plan free is not a prorated change (free has no subscription): set plan ${to} in its registry entry, ` +
          `then \`tenancy post-apply\` ${free === to ? 'sets the subscription to cancel at the end of the paid period' : 'creates the subscription (Checkout when the customer has no card)'}`,
      );
    }
    const problems = rulesWithPlan(registry.tenants, registry.platform, tenant, to, services.registry.kind);
    if (problems.length > 0) throw new PlanChangeRefusedError(`tenant ${slug} cannot move to plan ${to}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
  }
  const already = new PlanChangeRefusedError(`tenant ${slug} is on plan ${to} already`);
  if (onPlan && to === 'free') throw already;

  // Were Stripe applied already (a resume), the change is from the plan the control plane still shows.
  let from = record.plan !== to && (PLANS as readonly string[]).includes(record.plan) ? (record.plan as Plan) : tenant.plan;
  const billingTenant = { id: tenant.id, slug, plan: from, email: tenant.adminEmail, name: tenant.company };
  let stripe: PlanChangeStatus;
  try {
    stripe = await planChanges.billing.planChangeStatus(billingTenant, to);
  } catch (e) {
    if (onPlan && e instanceof BillingError) throw already;
    throw e;
  }
  if (onPlan) {
    // On the plan everywhere. Unless the change Stripe applied last has no audit entry: an interrupted
    // run whose registry commit failed after its file was written, the control plane synced by
    // something else (a Stripe webhook) meanwhile. That one is completed.
    const applied = stripe.kind === 'applied' ? stripe.applied : undefined;
    if (!applied?.fromPlan || applied.fromPlan === to || applied.prorationDate === null) throw already;
    if (await services.controlPlane.planChangeAudited(tenant.id, to, applied.prorationDate)) throw already;
    from = applied.fromPlan;
  } else if (stripe.kind === 'pending' && tenant.plan !== record.plan) {
    throw new PlanChangeRefusedError(
      `tenant ${slug}: the registry says plan ${tenant.plan}, the control plane ${record.plan} (a registry change not deployed yet?): ` +
        '`cdktf deploy` and `tenancy post-apply` reconcile them (billing included); then change the plan',
    );
  }
  return { tenantId: tenant.id, slug, model: tenant.model, from, to, registryPlan: tenant.plan, controlPlanePlan: record.plan, stripe, registry: services.registry.describe() };
}

/**
 * Applies a prepared (and confirmed) change: Stripe, the registry, the control plane, in that
 * order (see the file comment). `actor` goes into the commit message (the control plane's audit
 * entry carries it as its actor).
 */
export async function applyPlanChange(services: PlanChangeServices, planChanges: PlanChangeBilling, change: PreparedPlanChange, actor: string): Promise<PlanChangeOutcome> {
  const handle = await services.lock.tryAcquire(`tenant:${change.tenantId}`);
  if (!handle) throw new Error(`tenant ${change.slug} is locked by another lifecycle operation (onboarding, offboarding or a plan change); nothing changed, run the command again later`);
  try {
    const entry = await services.registry.get(change.slug);
    const record = await services.controlPlane.tenantById(change.tenantId);
    if (entry?.plan !== change.registryPlan || record?.plan !== change.controlPlanePlan) {
      throw new Error(`tenant ${change.slug}: its plan changed since the preview (registry ${entry?.plan ?? 'gone'}, control plane ${record?.plan ?? 'gone'}); nothing changed, run the command again`);
    }
    let subscription: Stripe.Subscription | undefined;
    if (change.stripe.kind === 'pending') {
      const preview = change.stripe.preview;
      const current = await planChanges.stripe.subscriptions.retrieve(preview.subscriptionId);
      // The licensed item (the plan) by id: metered usage items are not part of a plan change.
      const item = current.items.data.find((i) => i.id === preview.subscriptionItemId);
      if (item?.price.id !== preview.fromPrice) {
        throw new Error(`tenant ${change.slug}: subscription ${preview.subscriptionId} changed since the preview (price ${item?.price.id ?? 'none'}, previewed ${preview.fromPrice}); nothing changed, run the command again`);
      }
      await handle.assertHeld();
      subscription = await planChanges.billing.applyPlanChange({ id: change.tenantId, slug: change.slug, plan: change.to }, preview);
    }
    const amounts = auditAmounts(change.stripe);
    const registry = await services.registry.setPlan(
      change.slug,
      change.to,
      `Change plan of tenant ${change.slug}: ${change.from} -> ${change.to}\n\nTenant id: ${change.tenantId}\nStripe subscription: ${amounts.subscription}\n` +
        `Proration date: ${amounts.prorationDate ?? 'none'}\nBy: ${actor}`,
    ).catch((e: unknown) => {
      throw new PlanChangeIncompleteError(change.slug, 'registry', e);
    });
    const controlPlane = await services.controlPlane.recordPlanChange(change.tenantId, { expected: change.controlPlanePlan, from: change.from, to: change.to }, {
      ...amounts,
      stripe: change.stripe.kind === 'pending' ? 'applied' : 'already-applied',
      registry: change.registry,
    }).catch((e: unknown) => {
      throw new PlanChangeIncompleteError(change.slug, 'control-plane', e);
    });
    return { stripe: change.stripe.kind === 'pending' ? 'applied' : 'already-applied', registry, controlPlane, subscription };
  } finally {
    await handle.release().catch(() => undefined);
  }
}

/** What the audit entry and the output say about the money: the preview's, or what Stripe left pending. */
export function auditAmounts(status: PlanChangeStatus): {
  subscription: string;
  prorationDate: number | null;
  currency: string;
  prorations: { description: string | null; amount: number }[];
  prorationTotal: number;
  amountDueNow: number;
  nextInvoiceTotal: number;
  nextInvoiceAt: number;
} {
  const s: PlanChangePreview | AppliedPlanChange = status.kind === 'pending' ? status.preview : status.applied;
  return {
    subscription: s.subscriptionId,
    prorationDate: s.prorationDate,
    currency: s.currency,
    prorations: s.prorations.map((l: ProrationLine) => ({ description: l.description, amount: l.amount })),
    prorationTotal: s.prorationTotal,
    // create_prorations invoices nothing now: the prorations are items of the next invoice.
    amountDueNow: 0,
    nextInvoiceTotal: s.nextInvoiceTotal,
    nextInvoiceAt: s.nextInvoiceAt,
  };
}

/** The registry's cross-field rules (plan ⇒ models, quota ceilings) with `tenant` on plan `to`. */
function rulesWithPlan(tenants: readonly Tenant[], platform: Parameters<typeof checkRegistryRules>[1], tenant: Tenant, to: Plan, kind: RegistrySource['kind']): RegistryProblem[] {
  const problems: RegistryProblem[] = [];
  const location = (slug: string) => {
    // Named as the registry source names its entries in problems.
    const file = kind === 'database' ? `control-plane:registry_entries/${slug}` : `tenants/${slug}.yaml`;
    return { file, problem: (path: readonly PropertyKey[], message: string) => ({ file, path: formatPath(path), message }) };
  };
  checkRegistryRules(tenants.map((t) => ({ tenant: t.slug === tenant.slug ? { ...t, plan: to } : t, yaml: location(t.slug), fileSlug: t.slug })), platform, problems);
  return problems;
}
