DROP TABLE tenancy.credit_low_notices;
DROP TABLE tenancy.credit_accounts;
DROP TABLE tenancy.credit_entries;
DROP FUNCTION tenancy.credit_entries_are_append_only();
