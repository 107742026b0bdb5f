DROP TABLE tenancy.rollout_stacks;
DROP TABLE tenancy.rollouts;
