import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { appliedContentOf, recordAppliedStack, type AppliedContent } from '../fleet/applied-stacks';
import { readStackArtifact } from '../fleet/stack-artifact';
import { builtinHooks } from '../hooks/builtin-hooks';
import { TenantOutputsSchema, type TenantOutputs } from '../hooks/deploy-outputs';
import type { PostApplyHook } from '../hooks/post-apply-hook';
import { runPostApply } from '../hooks/post-apply';
import { tenantNames } from '../naming';
import type { Registry } from '../registry/load-registry';
import type { Tenant } from '../registry/tenant-schema';
import { ESCALATION_PLANS } from './escalation';
import type { Step, StepContextBase } from './job-runner';
import { welcomeMessage } from './notifier';
import type { TenantEntry } from './registry-source';
import type { LifecycleServices } from './services';
import type { StackContext } from './stack-deployer';
import { synthesizeInChild } from './synthesize-in-child';
import type { OnboardingStepName } from './step-names';

/**
 * The onboarding job's steps, in order. Each is idempotent (a worker can die after a step's effect
 * and before its record; the retry runs the step again):
 *
 *  registry     the registry entry exists (written by the request; re-created if the request died before)
 *  synthesize   synthesize({ select: <slug> }): only this tenant's stack
 *  deploy       the stack applied (cdktf deploy, or the local stand-in); its outputs recorded
 *  register     post-apply hook: the control-plane record gets its placement
 *  provision    post-apply hook: schema and role (bridge, silo) or pool roles and RLS
 *  migrate      post-apply hook: tenant or pool migrations
 *  billing      the billing hook (lib/billing): Stripe customer and subscription
 *  escalation   enterprise plans: the escalation policy
 *  welcome      the welcome notification to the admin email
 *  activate     the registry entry and the control-plane record `active`, and a `tenant.created`
 *               event in the outbox, the last two in the transaction that records the step
 */
export interface OnboardingContext extends StepContextBase {
  readonly services: LifecycleServices;
  /** The registry entry of the request. */
  readonly entry: TenantEntry;
  /** The registry, loaded (and validated) once per attempt, after the registry step. */
  registry(): Promise<Registry>;
  /** This tenant as the registry validates it. */
  tenant(): Promise<Tenant>;
  /** The job's working directory and synthesized output. */
  readonly workDir: string;
  readonly outdir: string;
}

export { ONBOARDING_STEPS, type OnboardingStepName } from './step-names';

export function onboardingSteps(): Step<OnboardingContext>[] {
  return [
    {
      name: 'registry',
      async run(ctx) {
        const e = ctx.entry;
        const outcome = await ctx.services.registry.create(e, `Onboard tenant ${e.slug} (${e.model}, ${e.plan}, ${e.region})\n\nTenant id: ${e.id}\nOnboarding job: ${ctx.job.id}`);
        return { source: ctx.services.registry.kind, outcome };
      },
    },
    {
      name: 'synthesize',
      async run(ctx) {
        return synthesizeTenant(ctx);
      },
    },
    {
      name: 'deploy',
      async run(ctx) {
        const tenant = await ctx.tenant();
        // A retry on another host has no synthesized output yet.
        if (!existsSync(join(ctx.outdir, 'stacks', tenantNames(tenant.slug).stack))) await synthesizeTenant(ctx);
        const outputs = await ctx.services.deployer.deploy(stackContext(ctx, tenant));
        // What was applied (its content hash), recorded with the step for `tenancy fleet plan`.
        const applied = appliedContentOf(readStackArtifact(ctx.outdir, tenantNames(tenant.slug).stack));
        return { mode: ctx.services.deployer.mode, stack: tenantNames(tenant.slug).stack, outputs, applied };
      },
      async commitWith(ctx, c, result) {
        await recordAppliedStack(c, result.applied as AppliedContent, `${ctx.services.config.actor} (onboarding job ${ctx.job.id})`);
      },
    },
    hookStep('register', (ctx) => builtinHook(ctx, 'register')),
    hookStep('provision', (ctx) => builtinHook(ctx, 'provision')),
    hookStep('migrate', (ctx) => builtinHook(ctx, 'migrate')),
    {
      name: 'billing',
      async run(ctx) {
        const billing = ctx.services.billing;
        if (!billing) throw new Error('billing is not configured (lib/billing: the Stripe hook)');
        const tenant = await ctx.tenant();
        const paymentMethod = typeof ctx.job.request.paymentMethod === 'string' ? ctx.job.request.paymentMethod : undefined;
        const payment = paymentMethod
          ? await billing.preparePayment({ id: tenant.id, slug: tenant.slug, plan: tenant.plan, email: tenant.adminEmail, name: tenant.company }, paymentMethod, ctx.services.controlPlane)
          : undefined;
        const hooked = await runHook(ctx, billing.hookFor({ email: tenant.adminEmail, name: tenant.company }));
        return { ...hooked, ...(payment ? { payment } : {}) };
      },
    },
    {
      name: 'escalation',
      when: (ctx) => ESCALATION_PLANS.has(ctx.entry.plan),
      async run(ctx) {
        const policy = await ctx.services.escalation.ensurePolicy(await ctx.tenant());
        return { provider: ctx.services.escalation.name, ...policy };
      },
    },
    {
      name: 'welcome',
      async run(ctx) {
        const registry = await ctx.registry();
        const tenant = await ctx.tenant();
        const baseDomain = registry.platform.baseDomain;
        const sent = await ctx.services.notifier.send(welcomeMessage(tenant, baseDomain, baseDomain));
        return { notifier: ctx.services.notifier.name, to: tenant.adminEmail, messageId: sent.messageId };
      },
    },
    {
      name: 'activate',
      async run(ctx) {
        const registry = await ctx.services.registry.setStatus(ctx.entry.slug, 'active', `Tenant ${ctx.entry.slug} is active\n\nTenant id: ${ctx.entry.id}\nOnboarding job: ${ctx.job.id}`);
        return { status: 'active', registry };
      },
      async commitWith(ctx, c) {
        const { store } = ctx.services;
        await store.setTenantStatusIn(c, ctx.job.tenantId, 'active');
        const outputs = deployedOutputs(ctx);
        await store.emitIn(c, {
          eventType: 'tenant.created',
          tenantId: ctx.job.tenantId,
          idempotencyKey: `tenant.created:${ctx.job.tenantId}`,
          payload: {
            tenantId: ctx.job.tenantId, slug: ctx.entry.slug, company: ctx.entry.company, plan: ctx.entry.plan, model: ctx.entry.model, region: ctx.entry.region,
            namespace: outputs.k8s_namespace ?? null, billing: ctx.results.get('billing')?.result ?? null, job: ctx.job.id,
          },
        });
      },
    },
  ];
}

function synthesizeTenant(ctx: OnboardingContext): Promise<Record<string, unknown>> {
  return (async () => {
    const registry = await ctx.registry();
    const tenant = await ctx.tenant();
    // In a child process: the worker's event loop keeps renewing its locks (synthesize-in-child.ts).
    const result = await synthesizeInChild({ root: ctx.services.config.root, outdir: ctx.outdir, select: tenant.slug, registry });
    return { outdir: result.outdir, stacks: result.stacks, warnings: result.warnings, isolated: result.isolated };
  })();
}

export function stackContext(ctx: { services: LifecycleServices; workDir: string; outdir: string; job: { id: string } }, tenant: Tenant): StackContext {
  return { tenant, root: ctx.services.config.root, outdir: ctx.outdir, workDir: ctx.workDir, platform: ctx.services.platform(), databases: ctx.services.databases, jobId: ctx.job.id };
}

function builtinHook(ctx: OnboardingContext, name: string): PostApplyHook {
  const hook = builtinHooks(ctx.services.migrations).find((h) => h.name === name);
  if (!hook) throw new Error(`no built-in post-apply hook ${name}`);
  return hook;
}

/** The deploy step's outputs (validated again: they come back from the control plane's JSON). */
export function deployedOutputs(ctx: StepContextBase): TenantOutputs {
  const recorded = ctx.results.get('deploy')?.outputs;
  if (!recorded) throw new Error('the deploy step has no recorded outputs');
  return TenantOutputsSchema.parse(recorded);
}

/** A step that runs one post-apply hook for this tenant. */
function hookStep(name: OnboardingStepName, hookOf: (ctx: OnboardingContext) => PostApplyHook): Step<OnboardingContext> {
  return { name, run: (ctx) => runHook(ctx, hookOf(ctx)) };
}

/** Runs one post-apply hook for this tenant through runPostApply (recorded in tenancy.hook_runs, skipped when unchanged). */
async function runHook(ctx: OnboardingContext, hook: PostApplyHook): Promise<Record<string, unknown>> {
  const tenant = deployedOutputs(ctx);
  const [outcome] = await runPostApply({
    outputs: { tenants: [tenant], platforms: ctx.services.platform().platforms },
    hooks: [hook],
    controlPlane: ctx.services.controlPlane,
    databases: ctx.services.databases,
  });
  if (!outcome) return { hook: hook.name, status: 'not-applicable' };
  if (outcome.status === 'failed' || outcome.status === 'not-run') throw new Error(`post-apply hook ${hook.name} failed: ${outcome.error ?? outcome.status}`);
  return { hook: hook.name, status: outcome.status, result: outcome.result ?? {} };
}
