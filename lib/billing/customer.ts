import type Stripe from 'stripe';
import { BillingError, wasReplayed, type BillingContext } from './billing-context';
import { checkTenantId, tenantMetadata, type BillingTenant } from './billing-tenant';
import { billingKeys } from './idempotency-keys';

/** What ensureCustomer did. */
export interface CustomerOutcome {
  readonly customerId: string;
  /**
   * existing: the recorded customer; adopted: found by metadata search (a previous run created it
   * but did not record it); created: new; replayed: Stripe replayed an earlier run's create.
   */
  readonly action: 'existing' | 'adopted' | 'created' | 'replayed';
  /** Name, email or metadata were brought up to date. */
  readonly updated: boolean;
}

/**
 * The tenant's one Stripe customer: the recorded one, else the one carrying its tenant_id
 * (search), else a new one, created with idempotency key `tenancy:<tenant-id>:customer:create`
 * and only immutable parameters (metadata tenant_id), so a rerun within 24 hours — after a crash
 * between create and record, or concurrently — replays the same customer; after 24 hours the
 * search (eventually consistent, seconds behind) finds it. The id is recorded in the control
 * plane; name, email and slug are then kept up to date with an update.
 */
export async function ensureCustomer(ctx: BillingContext, tenant: BillingTenant): Promise<CustomerOutcome> {
  checkTenantId(tenant.id);
  const recorded = await ctx.records.stripeIds(tenant.id);
  if (!recorded) throw new BillingError(`tenant ${tenant.slug} (${tenant.id}) is not registered in the control plane; the register hook runs first`);

  let customer: Stripe.Customer;
  let action: CustomerOutcome['action'];
  if (recorded.customerId) {
    const found = await ctx.stripe.customers.retrieve(recorded.customerId);
    if ('deleted' in found && found.deleted) {
      throw new BillingError(
        `tenant ${tenant.slug}: its Stripe customer ${recorded.customerId} was deleted in Stripe; if that was intended, clear tenancy.tenants.stripe_customer_id and stripe_subscription_id to start over`,
      );
    }
    customer = found as Stripe.Customer;
    if (customer.metadata.tenant_id !== undefined && customer.metadata.tenant_id !== tenant.id) {
      throw new BillingError(`tenant ${tenant.slug}: recorded Stripe customer ${customer.id} belongs to tenant ${customer.metadata.tenant_id}`);
    }
    action = 'existing';
  } else {
    const found = await ctx.stripe.customers.search({ query: `metadata['tenant_id']:'${tenant.id}'`, limit: 10 });
    if (found.data.length > 1) {
      throw new BillingError(`tenant ${tenant.slug}: ${found.data.length} Stripe customers carry tenant_id ${tenant.id} (${found.data.map((c) => c.id).join(', ')}); keep one, delete the others, then rerun`);
    }
    if (found.data.length === 1) {
      customer = found.data[0];
      action = 'adopted';
    } else {
      customer = await ctx.stripe.customers.create(
        { metadata: { tenant_id: tenant.id }, description: `tenancy tenant ${tenant.id}` },
        { idempotencyKey: billingKeys.customerCreate(tenant.id) },
      );
      action = wasReplayed(customer) ? 'replayed' : 'created';
    }
    await ctx.records.setStripeCustomerId(tenant.id, customer.id);
  }

  const wanted = { name: tenant.name ?? tenant.slug, ...(tenant.email ? { email: tenant.email } : {}), metadata: tenantMetadata(tenant) };
  const stale = customer.name !== wanted.name || (wanted.email !== undefined && customer.email !== wanted.email) || Object.entries(wanted.metadata).some(([k, v]) => customer.metadata[k] !== v);
  // A declarative update (set these values): the SDK's own per-request key covers its retries; a
  // derived key would replay an older update after a change back (A → B → A within 24 hours).
  if (stale) await ctx.stripe.customers.update(customer.id, wanted);
  return { customerId: customer.id, action, updated: stale };
}
