-- Back to 0005: slugs and domains unique across every tenant, offboarded ones included. Refused
-- while a slug or domain has been taken again by a new tenant (which tenant should give it up is
-- not this migration's decision). Archived registry entries become ordinary entries again (with
-- status offboarded, as 0005 kept them); released domain claims are held again.
DO $$
DECLARE
  dup text;
BEGIN
  SELECT slug INTO dup FROM tenancy.tenants GROUP BY slug HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'slug % is used by more than one tenant (an offboarded one and its successor); 0005 allows one', dup;
  END IF;
  SELECT domain INTO dup FROM tenancy.tenant_domains GROUP BY domain HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'domain % is claimed by more than one tenant; 0005 allows one', dup;
  END IF;
  SELECT slug INTO dup FROM tenancy.registry_entries GROUP BY slug HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'registry entry slug % is used more than once (an archived entry and its successor); 0005 allows one', dup;
  END IF;
END $$;

DROP INDEX tenancy.registry_entries_live_slug_key;
ALTER TABLE tenancy.registry_entries DROP CONSTRAINT registry_entries_pkey;
ALTER TABLE tenancy.registry_entries ADD CONSTRAINT registry_entries_pkey PRIMARY KEY (slug);
ALTER TABLE tenancy.registry_entries ADD CONSTRAINT registry_entries_id_key UNIQUE (id);
ALTER TABLE tenancy.registry_entries DROP COLUMN archived_at;

DROP INDEX tenancy.tenant_domains_live_domain_key;
ALTER TABLE tenancy.tenant_domains DROP CONSTRAINT tenant_domains_pkey;
ALTER TABLE tenancy.tenant_domains ADD CONSTRAINT tenant_domains_pkey PRIMARY KEY (domain);
ALTER TABLE tenancy.tenant_domains DROP COLUMN released_at;

DROP INDEX tenancy.tenants_slug;
DROP INDEX tenancy.tenants_live_slug_key;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_slug_key UNIQUE (slug);
