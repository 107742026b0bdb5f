import { createHash } from 'node:crypto';
import type { ControlPlane } from '../control-plane/control-plane';
import type { DatabaseConnector } from './database-connector';
import type { DeployOutputs, TenantOutputs } from './deploy-outputs';
import type { HookContext, PostApplyHook } from './post-apply-hook';

/** What happened to one hook of one tenant. */
export interface HookOutcome {
  readonly tenant: string;
  readonly hook: string;
  readonly status: 'succeeded' | 'unchanged' | 'failed' | 'not-run';
  readonly result?: Record<string, unknown>;
  readonly error?: string;
}

export interface PostApplyOptions {
  readonly outputs: DeployOutputs;
  readonly hooks: readonly PostApplyHook[];
  readonly controlPlane: ControlPlane;
  readonly databases: DatabaseConnector;
  /** Only these tenant slugs. @default every tenant in the outputs */
  readonly tenants?: readonly string[];
  /** Run every hook even when its input did not change (after a password rotation, a manual repair). @default false */
  readonly force?: boolean;
  /** Called after each hook of each tenant (progress, JSON lines). */
  readonly onOutcome?: (outcome: HookOutcome) => void;
}

/** Stable JSON (sorted keys) hashed with SHA-256: the identity of a hook's input. */
export function inputHash(hook: string, input: Record<string, unknown>): string {
  const stable = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(stable) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify([hook, stable(input)])).digest('hex');
}

/**
 * Runs the hooks for every deployed tenant, in order, tenant after tenant. A hook whose last
 * successful run had the same input is skipped (`unchanged`); a failed hook stops that tenant's
 * later hooks (`not-run`) but never another tenant's. Every run is recorded in the control plane.
 */
export async function runPostApply(options: PostApplyOptions): Promise<HookOutcome[]> {
  const selected = selectTenants(options.outputs.tenants, options.tenants);
  const outcomes: HookOutcome[] = [];
  const emit = (o: HookOutcome) => {
    outcomes.push(o);
    options.onOutcome?.(o);
  };
  for (const tenant of selected) {
    const ctx: HookContext = { tenant, platform: options.outputs.platforms.get(tenant.region), controlPlane: options.controlPlane, databases: options.databases };
    let failed = false;
    for (const hook of options.hooks) {
      if (hook.models && !hook.models.includes(tenant.model)) continue;
      if (failed) {
        emit({ tenant: tenant.slug, hook: hook.name, status: 'not-run' });
        continue;
      }
      emit(await runHook(hook, ctx, options.force ?? false));
      failed = outcomes[outcomes.length - 1].status === 'failed';
    }
  }
  return outcomes;
}

async function runHook(hook: PostApplyHook, ctx: HookContext, force: boolean): Promise<HookOutcome> {
  const { tenant, controlPlane } = ctx;
  const startedAt = new Date();
  let hash: string;
  try {
    hash = inputHash(hook.name, hook.input(ctx));
    // The tenant row must exist before a hook run can reference it: the first hook creates it.
    const last = (await controlPlane.tenantById(tenant.tenant_id)) ? await controlPlane.lastHookRun(tenant.tenant_id, hook.name) : undefined;
    if (!force && last && last.status === 'succeeded' && last.inputHash === hash) return { tenant: tenant.slug, hook: hook.name, status: 'unchanged', result: last.result };
  } catch (e) {
    return { tenant: tenant.slug, hook: hook.name, status: 'failed', error: message(e) };
  }
  try {
    const result = await hook.run(ctx);
    await controlPlane.recordHookRun(tenant.tenant_id, { hook: hook.name, inputHash: hash, status: 'succeeded', result, error: null, startedAt });
    return { tenant: tenant.slug, hook: hook.name, status: 'succeeded', result };
  } catch (e) {
    const error = message(e);
    // Recording can fail too (the tenant row may not exist yet); the outcome is reported either way.
    await controlPlane.recordHookRun(tenant.tenant_id, { hook: hook.name, inputHash: hash, status: 'failed', result: {}, error, startedAt }).catch(() => undefined);
    return { tenant: tenant.slug, hook: hook.name, status: 'failed', error };
  }
}

function selectTenants(all: readonly TenantOutputs[], slugs: readonly string[] | undefined): TenantOutputs[] {
  if (!slugs || slugs.length === 0) return [...all];
  const bySlug = new Map(all.map((t) => [t.slug, t]));
  const missing = slugs.filter((s) => !bySlug.has(s));
  if (missing.length > 0) throw new Error(`no deployed tenant ${missing.join(', ')} in the outputs`);
  return slugs.map((s) => bySlug.get(s)!);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
