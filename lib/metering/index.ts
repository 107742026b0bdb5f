// Usage metering (README "Metering"): counters per request, reports to Stripe Meters.
export * from './usage-keys';
export * from './usage-recorder';
export * from './usage-middleware';
export * from './usage-store';
export * from './storage-usage';
export * from './seat-usage';
export * from './usage-reporter';
export * from './usage-job';
