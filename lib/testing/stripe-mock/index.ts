// A local Stripe-API-compatible server for tests and benchmarks (see server.ts).
export { StripeMockServer, MOCK_API_VERSION, maskKey, type StripeMockServerOptions, type MockRequest, type MockRequestRecord } from './server';
export { MockClock } from './clock';
export { StripeApiError, apiErrors, type StripeErrorBody } from './errors';
export { decodeForm, paramName, type FormObject, type FormValue } from './form';
export type { MockAccount, StripeObject } from './store';
