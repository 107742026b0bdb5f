DROP TRIGGER tenants_notify_status ON tenancy.tenants;
DROP FUNCTION tenancy.notify_tenant_status();
