DROP TABLE tenancy.tenant_billing;
DROP TABLE tenancy.stripe_events;
