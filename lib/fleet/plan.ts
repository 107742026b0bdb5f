import type { ClientBase } from 'pg';
import { synthesize } from '../app/synthesize';
import { deployedStacks, type AppliedStack } from './applied-stacks';
import { COMPONENT_REASONS, FLEET_COMPONENTS } from './fleet-metadata';
import { readStackArtifacts, StackArtifactError, type StackArtifact } from './stack-artifact';

/**
 * new        synthesized, never applied (or destroyed since)
 * changed    applied with other content: a deploy is due
 * unchanged  applied with this content
 * removed    applied, not destroyed, and no longer synthesized (its tenant left the registry
 *            without offboarding, or a region lost its last tenant): a destroy is due
 */
export type StackChange = 'new' | 'changed' | 'unchanged' | 'removed';
export const STACK_CHANGES: readonly StackChange[] = ['new', 'changed', 'unchanged', 'removed'];

/** Why a changed stack changed (several at once possible); `unknown` when no recorded component differs. */
export type ChangeReason = 'registry entry' | 'chart' | 'platform.yaml' | 'construct code' | 'unknown';

export interface PlannedStack {
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly change: StackChange;
  /** Changed stacks only. */
  readonly reasons: readonly ChangeReason[];
  readonly tenantId: string | null;
  readonly slug: string | null;
  /** The synthesized content (absent for removed stacks). */
  readonly contentHash: string | null;
  /** The last applied content (absent for new stacks). */
  readonly appliedHash: string | null;
  readonly libraryVersion: string | null;
  readonly appliedLibraryVersion: string | null;
  /** The synthesized artifact, for whatever deploys it next (absent for removed stacks). */
  readonly artifact?: StackArtifact;
}

export interface FleetPlan {
  /** Every stack, in name order. */
  readonly stacks: readonly PlannedStack[];
  readonly summary: Readonly<Record<StackChange, number>>;
  /** The synthesized output the plan read. */
  readonly outdir: string;
}

export class FleetPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FleetPlanError';
  }
}

export interface PlanFleetOptions {
  /** The control plane (a pool or a client): one query reads what is deployed. */
  readonly db: Pick<ClientBase, 'query'>;
  /** Synthesized output to read. @default <root>/cdktf.out */
  readonly outdir?: string;
  /** Synthesize the whole registry into `outdir` first (lib/app/synthesize.ts). @default false */
  readonly synth?: boolean;
  /** Project root (platform.yaml, tenants/) for `synth`. @default process.cwd() */
  readonly root?: string;
}

/**
 * What a deploy of the fleet would change, without Terraform: the synthesized stacks' content
 * hashes against the control plane's record of the last applies. Read by `tenancy fleet plan` and
 * by rollouts, which deploy the new and changed stacks.
 */
export async function planFleet(options: PlanFleetOptions): Promise<FleetPlan> {
  let outdir = options.outdir;
  if (options.synth) outdir = synthesize({ root: options.root, outdir, select: '*' }).outdir;
  outdir ??= `${options.root ?? process.cwd()}/cdktf.out`;
  const deployed = await deployedStacks(options.db);
  let artifacts: StackArtifact[];
  try {
    // Byte-identical files are taken as last applied, without parsing: nothing changed is fast.
    artifacts = readStackArtifacts(outdir, deployed);
  } catch (e) {
    if (e instanceof StackArtifactError) throw new FleetPlanError(e.message);
    throw e;
  }
  assertWholeFleet(artifacts, outdir);
  const stacks = classifyStacks(artifacts, deployed);
  const summary = { new: 0, changed: 0, unchanged: 0, removed: 0 };
  for (const s of stacks) summary[s.change]++;
  return { stacks, summary, outdir };
}

/**
 * A plan needs every stack: in an output synthesized for a selection (TENANCY_SELECT), the stacks
 * left out would look removed.
 */
function assertWholeFleet(artifacts: readonly StackArtifact[], outdir: string): void {
  const tenants = artifacts.filter((a) => a.kind === 'tenant').length;
  const expected = Math.max(0, ...artifacts.map((a) => a.fleetTenants));
  if (tenants < expected) {
    throw new FleetPlanError(`${outdir} holds ${tenants} of the registry's ${expected} tenant stacks (synthesized for a selection, TENANCY_SELECT?): synthesize every stack (cdktf synth without a selection, or --synth)`);
  }
  if (artifacts.length > 0 && !artifacts.some((a) => a.kind === 'platform')) {
    throw new FleetPlanError(`${outdir} holds no platform stack (synthesized for a selection, TENANCY_SELECT?): synthesize every stack (cdktf synth without a selection, or --synth)`);
  }
}

/** Classifies synthesized stacks against the deployed ones; pure (tests and rollouts call it directly). */
export function classifyStacks(artifacts: readonly StackArtifact[], deployed: ReadonlyMap<string, AppliedStack>): PlannedStack[] {
  const planned: PlannedStack[] = [];
  const seen = new Set<string>();
  for (const artifact of artifacts) {
    seen.add(artifact.stack);
    const applied = deployed.get(artifact.stack);
    const change: StackChange = !applied ? 'new' : applied.contentHash === artifact.contentHash ? 'unchanged' : 'changed';
    planned.push({
      stack: artifact.stack,
      kind: artifact.kind,
      change,
      reasons: change === 'changed' ? reasonsFor(artifact, applied!) : [],
      tenantId: artifact.tenantId,
      slug: artifact.slug,
      contentHash: artifact.contentHash,
      appliedHash: applied?.contentHash ?? null,
      libraryVersion: artifact.libraryVersion,
      appliedLibraryVersion: applied?.libraryVersion ?? null,
      artifact,
    });
  }
  for (const applied of deployed.values()) {
    if (seen.has(applied.stack)) continue;
    planned.push({
      stack: applied.stack, kind: applied.kind, change: 'removed', reasons: [], tenantId: applied.tenantId,
      slug: applied.kind === 'tenant' ? applied.stack.replace(/^tenant-/, '') : null,
      contentHash: null, appliedHash: applied.contentHash, libraryVersion: null, appliedLibraryVersion: applied.libraryVersion,
    });
  }
  return planned.sort((a, b) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0));
}

/** The components whose hash differs from the last apply's; a tenant id change counts as the registry entry. */
function reasonsFor(artifact: StackArtifact, applied: AppliedStack): ChangeReason[] {
  const reasons = new Set<ChangeReason>();
  if (artifact.tenantId && applied.tenantId && artifact.tenantId !== applied.tenantId) reasons.add('registry entry');
  for (const component of FLEET_COMPONENTS) {
    const now = artifact.components[component];
    const then = applied.components[component];
    if (now !== undefined && now !== then) reasons.add(COMPONENT_REASONS[component] as ChangeReason);
  }
  if (artifact.libraryVersion !== applied.libraryVersion) reasons.add('construct code');
  return reasons.size > 0 ? [...reasons] : ['unknown'];
}
