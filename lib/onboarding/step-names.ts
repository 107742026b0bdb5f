/**
 * The step names of the lifecycle jobs, in order (steps.ts and lib/offboarding/steps.ts define
 * them). Kept apart so that `tenancy status` reads them without loading cdktf.
 */
export const ONBOARDING_STEPS = ['registry', 'synthesize', 'deploy', 'register', 'provision', 'migrate', 'billing', 'escalation', 'welcome', 'activate'] as const;
export type OnboardingStepName = (typeof ONBOARDING_STEPS)[number];

export const OFFBOARDING_STEPS = ['begin', 'cancel-billing', 'snapshot', 'lift-deletion-protection', 'erase-schema', 'erase-rows', 'synthesize', 'destroy-stack', 'verify-erasure', 'registry', 'finalize'] as const;
export type OffboardingStepName = (typeof OFFBOARDING_STEPS)[number];
