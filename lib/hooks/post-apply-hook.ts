import type { ControlPlane } from '../control-plane/control-plane';
import type { PlatformOutputs, TenantOutputs } from './deploy-outputs';
import type { DatabaseConnector } from './database-connector';

/** What a hook gets for one tenant. */
export interface HookContext {
  readonly tenant: TenantOutputs;
  /** The platform outputs of the tenant's region (shared clusters). */
  readonly platform: PlatformOutputs | undefined;
  readonly controlPlane: ControlPlane;
  readonly databases: DatabaseConnector;
}

/**
 * A post-apply hook: one idempotent step run for each deployed tenant after `cdktf deploy`.
 * `input` is what the step depends on; the runner hashes it, and skips the hook when its last
 * successful run had the same hash. Register more hooks (billing, DNS, notifications) by adding
 * them to the list given to runPostApply.
 */
export interface PostApplyHook {
  readonly name: string;
  /** Models the hook applies to. @default every model */
  readonly models?: readonly TenantOutputs['model'][];
  /** Everything the hook's effect depends on (no secrets: it is hashed and compared). */
  input(ctx: HookContext): Record<string, unknown>;
  /** Does the work; returns a small JSON result that is recorded. */
  run(ctx: HookContext): Promise<Record<string, unknown>>;
}
