// Stripe webhooks: signature verification, once-only application to the control plane, dunning.
export { stripeWebhookHandler, handleStripeWebhook, type StripeWebhookHandlerOptions, type WebhookResult } from './webhook-handler';
export { processStripeEvent, HANDLED_EVENT_TYPES, type StripeEventProcessorOptions, type EventOutcome } from './stripe-event-processor';
export { verifyWebhookEvent, checkWebhookSecret, WebhookSignatureError, DEFAULT_WEBHOOK_TOLERANCE_SECONDS } from './webhook-signature';
export { suspendOverdueTenants } from './overdue-sweep';
export { planOfPrice } from './subscription-sync';
