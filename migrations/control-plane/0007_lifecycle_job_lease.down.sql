ALTER TABLE tenancy.lifecycle_jobs DROP COLUMN worker;
ALTER TABLE tenancy.lifecycle_jobs DROP COLUMN lease_expires_at;
