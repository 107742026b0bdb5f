DROP TABLE tenancy.usage_reports;
