import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { recordStackDestroyed } from '../fleet/applied-stacks';
import { synthesizeInChild } from '../onboarding/synthesize-in-child';
import type { TenantRecord } from '../control-plane/control-plane';
import type { DatabaseEndpoint } from '../hooks/database-connector';
import { bridgeShardCluster } from '../hooks/deploy-outputs';
import { bridgeShardOf } from '../registry/bridge-shards';
import { DEFAULT_BRIDGE_SHARD } from '../registry/tenant-schema';
import { tenantNames } from '../naming';
import type { Registry } from '../registry/load-registry';
import type { Tenant } from '../registry/tenant-schema';
import type { Step, StepContextBase } from '../onboarding/job-runner';
import type { LifecycleServices } from '../onboarding/services';
import { stackContext } from '../onboarding/steps';
import { eraseBridgeTenant, verifyBridgeErased } from './bridge-erasure';
import { countPoolTenantRows, erasePoolTenant } from './pool-erasure';

/**
 * The offboarding job's steps, in order (each idempotent, recorded and audited like onboarding's):
 *
 *  begin                     control-plane status `offboarding` (the router stops serving the tenant)
 *  cancel-billing            the subscription canceled (lib/billing)
 *  snapshot                  silo: a final snapshot of the tenant's database
 *  lift-deletion-protection  silo: RDS deletion protection off, deliberately, as its own audited step
 *  erase-schema              bridge: pg_depend check, DROP SCHEMA … CASCADE, DROP OWNED, DROP ROLE
 *  erase-rows                pool: the tenant's rows of every tenant table, FK-safe order, one transaction
 *  synthesize                the tenant's stack (cdktf deploys only: destroy needs it)
 *  destroy-stack             cdktf destroy (database, secrets, IAM, the namespace and its releases)
 *  verify-erasure            pool: zero rows as a BYPASSRLS role; bridge: no schema, no role; silo: no database
 *  registry                  the registry entry `offboarded` and archived out of the registry (directory:
 *                            tenants/offboarded/<slug>.<id>.yaml, committed; database: the row archived)
 *  finalize                  control-plane status `offboarded`, the domain claims released and a
 *                            `tenant.offboarded` outbox event, with the step's record
 *
 * The audit log, the control-plane record, the hook runs and the archived entry are kept. Once
 * finalized, the slug and domains are free: a new tenant (a new id) may take them (migration 0006).
 */
export interface OffboardingContext extends StepContextBase {
  readonly services: LifecycleServices;
  readonly tenant: Tenant;
  readonly record: TenantRecord;
  registry(): Promise<Registry>;
  readonly workDir: string;
  readonly outdir: string;
}

export { OFFBOARDING_STEPS } from '../onboarding/step-names';

const isModel = (model: Tenant['model']) => (ctx: OffboardingContext) => ctx.tenant.model === model;

export function offboardingSteps(): Step<OffboardingContext>[] {
  return [
    {
      name: 'begin',
      async run(ctx) {
        return { previousStatus: ctx.record.status, model: ctx.tenant.model, reason: ctx.job.request.reason ?? null };
      },
      async commitWith(ctx, c) {
        await ctx.services.store.setTenantStatusIn(c, ctx.tenant.id, 'offboarding');
      },
    },
    {
      name: 'cancel-billing',
      async run(ctx) {
        if (!ctx.services.billing) throw new Error('billing is not configured (lib/billing: the Stripe hook)');
        return ctx.services.billing.cancel({ id: ctx.tenant.id, slug: ctx.tenant.slug }, ctx.services.controlPlane);
      },
    },
    { name: 'snapshot', when: isModel('silo'), run: (ctx) => ctx.services.deployer.snapshot(stackContext(ctx, ctx.tenant)) },
    { name: 'lift-deletion-protection', when: isModel('silo'), run: (ctx) => ctx.services.deployer.liftDeletionProtection(stackContext(ctx, ctx.tenant)) },
    {
      name: 'erase-schema',
      when: isModel('bridge'),
      async run(ctx) {
        const admin = sharedAdmin(ctx, 'bridge');
        // The role's objects in the cluster's other databases (a large object in `postgres`) go too.
        const erased = await ctx.services.databases.withClient(admin, (c) => eraseBridgeTenant(c, ctx.tenant.slug, {
          inDatabase: (database, fn) => ctx.services.databases.withClient(admin, fn, database),
        }));
        return { ...erased };
      },
    },
    {
      name: 'erase-rows',
      when: isModel('pool'),
      async run(ctx) {
        const erased = await ctx.services.databases.withClient(sharedAdmin(ctx, 'pool'), (c) => erasePoolTenant(c, ctx.tenant.id, { tenantSetting: placementSetting(ctx) }));
        return { ...erased, total: Object.values(erased.deleted).reduce((a, b) => a + b, 0) };
      },
    },
    {
      name: 'synthesize',
      when: (ctx) => ctx.services.deployer.mode === 'cdktf',
      async run(ctx) {
        // In a child process: the worker's event loop keeps renewing its locks (lib/onboarding/synthesize-in-child.ts).
        const result = await synthesizeInChild({ root: ctx.services.config.root, outdir: ctx.outdir, select: ctx.tenant.slug, registry: await ctx.registry() });
        return { outdir: result.outdir, stacks: result.stacks };
      },
    },
    {
      name: 'destroy-stack',
      async run(ctx) {
        if (ctx.services.deployer.mode === 'cdktf' && !existsSync(join(ctx.outdir, 'stacks', tenantNames(ctx.tenant.slug).stack))) {
          await synthesizeInChild({ root: ctx.services.config.root, outdir: ctx.outdir, select: ctx.tenant.slug, registry: await ctx.registry() });
        }
        return { mode: ctx.services.deployer.mode, ...(await ctx.services.deployer.destroy(stackContext(ctx, ctx.tenant))) };
      },
      async commitWith(ctx, c) {
        // No longer deployed: `tenancy fleet plan` does not list it as removed.
        await recordStackDestroyed(c, tenantNames(ctx.tenant.slug).stack, ctx.tenant.id);
      },
    },
    {
      name: 'verify-erasure',
      async run(ctx) {
        switch (ctx.tenant.model) {
          case 'pool': {
            const auditorRef = ctx.services.config.poolAuditorSecret ?? poolAuditorSecretName((await ctx.registry()).platform.name);
            const admin = sharedAdmin(ctx, 'pool');
            const remaining = await ctx.services.databases.withClient({ ...admin, secretRef: auditorRef }, (c) => countPoolTenantRows(c, ctx.tenant.id));
            const left = Object.entries(remaining).filter(([, n]) => n > 0);
            if (left.length > 0) throw new Error(`erasure incomplete: rows of ${ctx.tenant.id} remain in ${left.map(([t, n]) => `${t} (${n})`).join(', ')}`);
            return { verifiedAs: (await ctx.services.databases.credentials(auditorRef)).username, bypassRls: true, remaining };
          }
          case 'bridge': {
            const state = await ctx.services.databases.withClient(sharedAdmin(ctx, 'bridge'), (c) => verifyBridgeErased(c, ctx.tenant.slug));
            if (state.schemaExists || state.roleExists) throw new Error(`erasure incomplete: ${JSON.stringify(state)}`);
            return { ...state };
          }
          case 'silo': {
            const destroyed = ctx.results.get('destroy-stack') ?? {};
            const remaining = destroyed.remaining as { databases?: number; roles?: number } | undefined;
            if (remaining && (remaining.databases || remaining.roles)) throw new Error(`erasure incomplete: ${JSON.stringify(remaining)}`);
            return { database: ctx.services.deployer.mode === 'cdktf' ? 'destroyed with the stack (RDS instance; final snapshot kept per retention)' : 'dropped', remaining: remaining ?? null };
          }
        }
      },
    },
    {
      name: 'registry',
      async run(ctx) {
        const outcome = await ctx.services.registry.archive(ctx.tenant.slug, ctx.tenant.id, `Offboard tenant ${ctx.tenant.slug}\n\nTenant id: ${ctx.tenant.id}\nOffboarding job: ${ctx.job.id}`);
        return { source: ctx.services.registry.kind, outcome, status: 'offboarded' };
      },
    },
    {
      name: 'finalize',
      async run() {
        return { status: 'offboarded' };
      },
      async commitWith(ctx, c) {
        await ctx.services.store.setTenantStatusIn(c, ctx.tenant.id, 'offboarded');
        await ctx.services.store.releaseDomainsIn(c, ctx.tenant.id);
        await ctx.services.store.emitIn(c, {
          eventType: 'tenant.offboarded',
          tenantId: ctx.tenant.id,
          idempotencyKey: `tenant.offboarded:${ctx.tenant.id}`,
          payload: { tenantId: ctx.tenant.id, slug: ctx.tenant.slug, model: ctx.tenant.model, job: ctx.job.id },
        });
      },
    },
  ];
}

/** Default secret of the pool's erasure verifier (a BYPASSRLS, SELECT-only role), next to the pool app role's. */
export const poolAuditorSecretName = (platformName: string) => `${platformName}/pool/auditor-credentials`;

/** The master-user endpoint of the shared cluster holding the tenant (platform outputs; the database from its placement). */
function sharedAdmin(ctx: OffboardingContext, kind: 'bridge' | 'pool'): DatabaseEndpoint {
  const platform = ctx.services.platform().platforms.get(ctx.tenant.region);
  // A bridge tenant is erased on its own shard: the one the control plane recorded (the registry entry must agree).
  const shard = kind === 'bridge' ? recordedBridgeShard(ctx) : undefined;
  const cluster = shard ? bridgeShardCluster(platform, shard) : platform?.[kind];
  if (!cluster) throw new Error(`no ${kind} cluster${shard && shard !== DEFAULT_BRIDGE_SHARD ? ` of shard ${shard}` : ''} in the platform outputs of ${ctx.tenant.region}`);
  const database = typeof ctx.record.placement.database === 'string' && ctx.record.placement.database ? ctx.record.placement.database : cluster.database;
  return { host: cluster.endpoint, port: cluster.port, database, secretRef: cluster.masterSecretArn };
}

function recordedBridgeShard(ctx: OffboardingContext): string {
  const recorded = typeof ctx.record.placement.bridge_shard === 'string' && ctx.record.placement.bridge_shard ? ctx.record.placement.bridge_shard : DEFAULT_BRIDGE_SHARD;
  const entry = bridgeShardOf(ctx.tenant);
  if (recorded !== entry) throw new Error(`tenant ${ctx.tenant.slug} is on bridge shard "${recorded}" (control plane), its registry entry says "${entry}": restore placement.bridgeShard: ${recorded} in the entry before offboarding`);
  return recorded;
}

function placementSetting(ctx: OffboardingContext): string | undefined {
  const s = ctx.record.placement.tenant_setting;
  return typeof s === 'string' && s ? s : undefined;
}
