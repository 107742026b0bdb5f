// Stripe billing of tenants: customer, subscription per plan, plan changes, the post-apply hook.
export { billingHook, BillingActionRequiredError, BILLING_HOOK_NAME, NO_STRIPE_KEY, type BillingHookOptions } from './billing-hook';
export { StripeBilling, type StripeBillingOptions, type BillingOutcome } from './stripe-billing';
export { BillingError, type BillingRecords, type CheckoutUrls } from './billing-context';
export { billingTenantOf, tenantMetadata, type BillingTenant, type BillingProfile } from './billing-tenant';
export { type CustomerOutcome } from './customer';
export { type SubscriptionOutcome, type Subscribed, type Unsubscribed } from './subscription';
export { type CheckoutRequired } from './checkout';
export { type PlanChangePreview, type ProrationLine } from './plan-change';
export { DEFAULT_PLAN_PRICES, PlanPriceResolver, BillingConfigError, type PlanPrices, type PriceRef, type PlanPrice } from './plan-prices';
export { ensureCatalog, planPricesOf, DEFAULT_CATALOG, type Catalog, type CatalogPrice, type CatalogEntry } from './catalog';
export { billingKeys, fingerprint } from './idempotency-keys';
export { createStripeClient, type StripeConnection } from './stripe-client';
export {
  resolveStripeKey, stripeKeySource, checkStripeKey, keyFromSecretValue, StripeKeyError, StaticSecretValueResolver, AwsSecretsManagerValueResolver,
  type StripeKeyOptions, type StripeKeySource, type SecretValueResolver,
} from './stripe-key';
