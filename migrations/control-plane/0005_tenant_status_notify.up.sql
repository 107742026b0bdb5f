-- Announces every change to what the router (lib/runtime/router.ts) reads about a tenant (status,
-- slug, model, placement, or the row's deletion) on channel tenancy_tenant_status, with the
-- tenant id as payload. The router LISTENs on it and evicts the tenant from its lookup cache (and
-- ends a bridge or silo tenant's own pool), so a suspension takes effect when the UPDATE commits,
-- not when a cache TTL expires. The payload is only the id: every session that can connect to the
-- control-plane database may LISTEN.
CREATE FUNCTION tenancy.notify_tenant_status() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF TG_OP = 'DELETE'
     OR (OLD.id, OLD.status, OLD.slug, OLD.model, OLD.placement) IS DISTINCT FROM (NEW.id, NEW.status, NEW.slug, NEW.model, NEW.placement) THEN
    PERFORM pg_notify('tenancy_tenant_status', OLD.id::text);
    IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
      PERFORM pg_notify('tenancy_tenant_status', NEW.id::text);
    END IF;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tenants_notify_status AFTER UPDATE OR DELETE ON tenancy.tenants
  FOR EACH ROW EXECUTE FUNCTION tenancy.notify_tenant_status();
