DROP TABLE IF EXISTS tenancy.tenant_domains;
DROP TABLE IF EXISTS tenancy.registry_entries;
DROP TABLE IF EXISTS tenancy.outbox;
DROP TABLE IF EXISTS tenancy.lifecycle_steps;
DROP TABLE IF EXISTS tenancy.lifecycle_jobs;
