// Stripe billing of tenants: customer, subscription per plan, plan changes, the post-apply hook.
export { billingHook, BillingActionRequiredError, BILLING_HOOK_NAME, NO_STRIPE_KEY, type BillingHookOptions } from './billing-hook';
export { StripeBilling, type StripeBillingOptions, type BillingOutcome } from './stripe-billing';
export { BillingError, type BillingRecords, type CheckoutUrls } from './billing-context';
export { billingTenantOf, tenantMetadata, type BillingTenant, type BillingProfile } from './billing-tenant';
export { type CustomerOutcome } from './customer';
export { type SubscriptionOutcome, type Subscribed, type Unsubscribed } from './subscription';
export { type CheckoutRequired } from './checkout';
export { type PlanChangePreview, type ProrationLine } from './plan-change';
export { type PlanChangeStatus, type AppliedPlanChange } from './plan-change-status';
export { DEFAULT_PLAN_PRICES, PlanPriceResolver, BillingConfigError, type PlanPrices, type PriceRef, type PlanPrice } from './plan-prices';
export { ensureCatalog, planPricesOf, DEFAULT_CATALOG, type Catalog, type CatalogPrice, type CatalogEntry } from './catalog';
export {
  USAGE_DIMENSIONS, meterFor, ensureUsageCatalog, findUsageMeters, DEFAULT_USAGE_CATALOG, METER_CUSTOMER_KEY, METER_VALUE_KEY,
  type UsageDimension, type UsageMeterDefinition, type UsageMeter, type UsageCatalog, type UsagePrice, type UsageCatalogEntry,
} from './meters';
export {
  DEFAULT_USAGE_PRICES, NO_USAGE_PRICES, UsagePriceResolver, usagePricesOf, checkUsagePrices, type UsagePrices, type MeteredPrice,
} from './usage-prices';
export { licensedItem, missingMeteredPrices } from './subscription-items';
export { billingKeys, fingerprint } from './idempotency-keys';
export { createStripeClient, type StripeConnection } from './stripe-client';
export {
  resolveStripeKey, stripeKeySource, checkStripeKey, keyFromSecretValue, StripeKeyError, StaticSecretValueResolver, AwsSecretsManagerValueResolver,
  type StripeKeyOptions, type StripeKeySource, type SecretValueResolver,
} from './stripe-key';
