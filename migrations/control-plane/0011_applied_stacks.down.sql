DROP TABLE tenancy.applied_stacks;
