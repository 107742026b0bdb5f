import type { PolicyRule } from './policy-rule';
import { NoPlaintextDbPasswordRule } from './rules/no-plaintext-db-password';
import { NoPublicDatabaseRule } from './rules/no-public-database';
import { TenantTagsRule } from './rules/tenant-tags';

/** Rules every platform stack passes. */
export const PLATFORM_RULES: readonly PolicyRule[] = [NoPlaintextDbPasswordRule, NoPublicDatabaseRule];
/** Rules every tenant stack passes. */
export const TENANT_RULES: readonly PolicyRule[] = [TenantTagsRule, ...PLATFORM_RULES];
