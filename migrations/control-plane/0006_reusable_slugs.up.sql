-- The slug and domains of a fully offboarded tenant can be taken by a new tenant (a new id): a
-- customer who left and comes back, onboarded again with the same slug (README "Offboarding").
-- Uniqueness now holds among the tenants that are not offboarded: never two live tenants with one
-- slug or one domain. The offboarded tenant keeps its row, jobs, steps, hook runs, outbox events
-- and audit trail, all keyed by its id; its domain claims are kept as released, its registry entry
-- (database registry source) as archived. No new grants: tenancy_control_plane's table privileges
-- (0004) cover the new columns; the tables stay owned by the migrating role, the audit log untouched.

-- tenants: one live tenant per slug. Lookups by slug resolve to the live one (lib/control-plane).
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_slug_key;
CREATE UNIQUE INDEX tenants_live_slug_key ON tenancy.tenants (slug) WHERE status <> 'offboarded';
-- Lookups that also find offboarded tenants (tenancy status, the router's refusal of an offboarded slug).
CREATE INDEX tenants_slug ON tenancy.tenants (slug);

-- tenant_domains: a claim ends when its tenant's offboarding finalizes (released_at); the row stays.
ALTER TABLE tenancy.tenant_domains ADD COLUMN released_at timestamptz;
ALTER TABLE tenancy.tenant_domains DROP CONSTRAINT tenant_domains_pkey;
ALTER TABLE tenancy.tenant_domains ADD CONSTRAINT tenant_domains_pkey PRIMARY KEY (domain, tenant_id);
CREATE UNIQUE INDEX tenant_domains_live_domain_key ON tenancy.tenant_domains (domain) WHERE released_at IS NULL;

-- registry_entries (the database registry source): an offboarded tenant's entry is archived
-- (archived_at), out of the loaded registry but kept for auditors; a new entry may take its slug.
ALTER TABLE tenancy.registry_entries ADD COLUMN archived_at timestamptz;
ALTER TABLE tenancy.registry_entries DROP CONSTRAINT registry_entries_pkey;
ALTER TABLE tenancy.registry_entries DROP CONSTRAINT registry_entries_id_key;
ALTER TABLE tenancy.registry_entries ADD CONSTRAINT registry_entries_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX registry_entries_live_slug_key ON tenancy.registry_entries (slug) WHERE archived_at IS NULL;
