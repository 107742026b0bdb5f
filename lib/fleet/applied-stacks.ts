import type { ClientBase } from 'pg';
import type { FleetComponent } from './fleet-metadata';
import { readStackArtifact, type StackArtifact } from './stack-artifact';

/** What the control plane records of a stack's last successful apply (tenancy.applied_stacks, migration 0011). */
export interface AppliedStack {
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly tenantId: string | null;
  readonly contentHash: string;
  readonly components: Partial<Record<FleetComponent, string>>;
  readonly libraryVersion: string;
  readonly fleetTenants: number;
  readonly fileHash: string;
  readonly appliedBy: string;
  readonly appliedAt: Date;
}

type Queryable = Pick<ClientBase, 'query'>;

/** What is recorded of an applied artifact (plain JSON: a lifecycle step's result carries it to its commit). */
export type AppliedContent = Pick<StackArtifact, 'stack' | 'kind' | 'tenantId' | 'contentHash' | 'components' | 'libraryVersion' | 'fleetTenants' | 'fileHash'>;

/** The recorded part of an artifact. */
export function appliedContentOf(a: AppliedContent): AppliedContent {
  return { stack: a.stack, kind: a.kind, tenantId: a.tenantId, contentHash: a.contentHash, components: a.components, libraryVersion: a.libraryVersion, fleetTenants: a.fleetTenants, fileHash: a.fileHash };
}

const UPDATE_ON_CONFLICT = `kind = EXCLUDED.kind, tenant_id = EXCLUDED.tenant_id, content_hash = EXCLUDED.content_hash,
  components = EXCLUDED.components, library_version = EXCLUDED.library_version, fleet_tenants = EXCLUDED.fleet_tenants,
  file_hash = EXCLUDED.file_hash, applied_by = EXCLUDED.applied_by, applied_at = EXCLUDED.applied_at, destroyed_at = NULL`;

/**
 * Records a successful apply of `artifact` (the stack JSON that was applied): called by the
 * onboarding deploy step, by `tenancy post-apply` for hand-run `cdktf deploy`s, and by whatever
 * else applies stacks. A rerun with the same content only refreshes who and when.
 */
export async function recordAppliedStack(db: Queryable, artifact: AppliedContent, appliedBy: string): Promise<void> {
  await db.query(
    `INSERT INTO tenancy.applied_stacks (stack, kind, tenant_id, content_hash, components, library_version, fleet_tenants, file_hash, applied_by, applied_at, destroyed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), NULL)
     ON CONFLICT (stack) DO UPDATE SET ${UPDATE_ON_CONFLICT}`,
    [artifact.stack, artifact.kind, artifact.tenantId, artifact.contentHash, JSON.stringify(artifact.components), artifact.libraryVersion, artifact.fleetTenants, artifact.fileHash, appliedBy],
  );
}

/** {@link recordAppliedStack} for many stacks in one statement (a wave of a rollout, a fleet imported at once). */
export async function recordAppliedStacks(db: Queryable, artifacts: readonly AppliedContent[], appliedBy: string): Promise<void> {
  if (artifacts.length === 0) return;
  await db.query(
    `INSERT INTO tenancy.applied_stacks (stack, kind, tenant_id, content_hash, components, library_version, fleet_tenants, file_hash, applied_by, applied_at, destroyed_at)
     SELECT r.stack, r.kind, r."tenantId", r."contentHash", r.components, r."libraryVersion", r."fleetTenants", r."fileHash", $2, now(), NULL
       FROM jsonb_to_recordset($1::jsonb) AS r(stack text, kind text, "tenantId" uuid, "contentHash" text, components jsonb, "libraryVersion" text, "fleetTenants" integer, "fileHash" text)
     ON CONFLICT (stack) DO UPDATE SET ${UPDATE_ON_CONFLICT}`,
    [JSON.stringify(artifacts.map(appliedContentOf)), appliedBy],
  );
}

/**
 * Records that a stack was destroyed (offboarding): it is no longer deployed, so `fleet plan` does
 * not list it as removed. With `tenantId`, only that tenant's stack (a slug may since be reused).
 */
export async function recordStackDestroyed(db: Queryable, stack: string, tenantId?: string): Promise<void> {
  await db.query(
    `UPDATE tenancy.applied_stacks SET destroyed_at = now() WHERE stack = $1 AND destroyed_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2::uuid)`,
    [stack, tenantId ?? null],
  );
}

/** Every stack deployed now (applied and not destroyed), by name: one query. */
export async function deployedStacks(db: Queryable): Promise<Map<string, AppliedStack>> {
  const { rows } = await db.query(
    `SELECT stack, kind, tenant_id::text AS "tenantId", content_hash AS "contentHash", components, library_version AS "libraryVersion",
            fleet_tenants AS "fleetTenants", file_hash AS "fileHash", applied_by AS "appliedBy", applied_at AS "appliedAt"
       FROM tenancy.applied_stacks WHERE destroyed_at IS NULL`,
  );
  return new Map(rows.map((r: AppliedStack) => [r.stack, r]));
}

/** A stack a deploy reports as applied (its outputs), and its tenant's id for tenant stacks. */
export interface DeployedStack {
  readonly stack: string;
  readonly tenantId: string | null;
}

export interface RecordDeployedResult {
  readonly recorded: readonly AppliedContent[];
  /** Stacks whose synthesized JSON was missing or is not the deployed stack: not recorded. */
  readonly skipped: readonly { readonly stack: string; readonly reason: string }[];
}

/**
 * Records the stacks a hand-run `cdktf deploy` applied (`tenancy post-apply`): their content as
 * the synthesized output holds it now, so run it right after the deploy. A stack whose JSON is
 * missing, or whose tenant id differs from the deploy's outputs (an output directory from another
 * registry or synthesis), is skipped and reported, never recorded.
 */
export async function recordDeployedStacks(db: Queryable, outdir: string, stacks: readonly DeployedStack[], appliedBy: string): Promise<RecordDeployedResult> {
  const recorded: AppliedContent[] = [];
  const skipped: { stack: string; reason: string }[] = [];
  for (const deployed of stacks) {
    let artifact: StackArtifact;
    try {
      artifact = readStackArtifact(outdir, deployed.stack);
    } catch (e) {
      skipped.push({ stack: deployed.stack, reason: (e as Error).message });
      continue;
    }
    if (deployed.tenantId && artifact.tenantId && artifact.tenantId.toLowerCase() !== deployed.tenantId.toLowerCase()) {
      skipped.push({ stack: deployed.stack, reason: `${artifact.file} is tenant ${artifact.tenantId}, the deploy outputs name ${deployed.tenantId}: not the stack that was deployed` });
      continue;
    }
    const content = appliedContentOf({ ...artifact, tenantId: artifact.tenantId ?? deployed.tenantId });
    await recordAppliedStack(db, content, appliedBy);
    recorded.push(content);
  }
  return { recorded, skipped };
}
