import { p } from '../params';

/** An item of a subscription update, also of an invoice preview's `subscription_details[items]` (the same shape in Stripe). */
export const subscriptionItemUpdate = p.obj({
  id: p.str(),
  price: p.str(),
  quantity: p.int({ min: 0 }),
  deleted: p.bool(),
  metadata: p.metadata(),
  ...p.unsupported('billing_thresholds', 'clear_usage', 'current_trial', 'discounts', 'plan', 'price_data', 'tax_rates'),
});
