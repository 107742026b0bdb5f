import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { QueueEvents, type ConnectionOptions, type Queue } from 'bullmq';
import type { Pool } from 'pg';
import type { Registry } from '../registry/load-registry';
import type { FleetConfig } from '../registry/platform-schema';
import type { FleetPlan, PlannedStack } from './plan';
import { type ArtifactStore } from './rollout-artifacts';
import { ROLLOUT_QUEUE, rolloutJobId, rolloutQueue, type RolloutJobData } from './rollout-queue';
import {
  createRollout, enqueueStack, failStackWithoutWorker, finishRollout, resetStacksToPending, restartRollout, rolloutById, rolloutLockHolder,
  rolloutStacks, stopRollout, tryLockRollout, unlockRollout, type NewRolloutStack, type Rollout, type RolloutWave,
} from './rollout-store';
import { assignWaves, describeMaxFailures, parseMaxFailures, waveFailuresExceeded, type MaxFailures } from './waves';

/**
 * The rollout coordinator (`tenancy fleet deploy` and `fleet resume`): deploys the new and changed
 * stacks of a fleet plan in waves — the platform stacks, the canary tenants, then the other tenant
 * stacks by cumulative percentage — as BullMQ jobs that any `tenancy worker` on any machine takes
 * (lib/fleet/rollout-worker.ts). The coordinator never applies anything itself: it moves rows from
 * pending to queued, at most `parallel` of the rollout queued or applying at once, and reads the
 * rows the workers move on (the control plane is the record; BullMQ events only wake it up). After
 * each wave, failures above the threshold stop the rollout: the following waves stay pending
 * until `fleet resume` (or a new `fleet deploy` after a fix). Removed stacks are listed, never
 * destroyed: offboarding destroys.
 */

/** A rollout's settings: platform.yaml `fleet` with the command's options on top. */
export interface RolloutSettings {
  /** Cumulative percentages of the non-canary tenant stacks, ascending, the last 100. */
  readonly percents: readonly number[];
  /** Stacks of the rollout queued or applying at once. */
  readonly parallel: number;
  readonly maxFailures: MaxFailures;
}

/** A bad rollout input (an option or a platform.yaml field): the message names it. */
export class RolloutInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RolloutInputError';
  }
}

export class RolloutNotFoundError extends Error {
  constructor(id: string) {
    super(`no rollout ${JSON.stringify(id)} in the control plane (tenancy fleet status lists the latest)`);
    this.name = 'RolloutNotFoundError';
  }
}

/** Another coordinator runs the rollout (it holds the rollout's lock). */
export class RolloutLockedError extends Error {
  constructor(readonly rolloutId: string, readonly holderPid: number | null) {
    super(`rollout ${rolloutId} is being run by another coordinator (control-plane session ${holderPid ?? 'unknown'}): it continues by itself; resume only a rollout whose coordinator is gone`);
    this.name = 'RolloutLockedError';
  }
}

/** The settings from platform.yaml `fleet`. */
export function settingsFromPlatform(fleet: FleetConfig): RolloutSettings {
  return { percents: fleet.waves, parallel: fleet.parallel, maxFailures: parseMaxFailures(String(fleet.maxFailures), 'platform.yaml fleet.maxFailures') };
}

// ---------------------------------------------------------------------------------------------
// Planning the waves (pure)
// ---------------------------------------------------------------------------------------------

export interface PlannedWave {
  readonly index: number;
  readonly name: string;
  readonly stacks: readonly PlannedStack[];
}

export interface RolloutPlan {
  readonly waves: readonly PlannedWave[];
  /** Applied stacks no longer synthesized: listed, never destroyed by a rollout. */
  readonly removed: readonly PlannedStack[];
  readonly unchanged: number;
}

export interface PlanRolloutOptions {
  readonly plan: FleetPlan;
  /** The registry the plan was synthesized from: canary marks, models, platform.yaml `fleet`. */
  readonly registry: Registry;
  readonly settings: RolloutSettings;
  /** Canary tenants by slug (--canary), besides the registry's and platform.yaml's. */
  readonly canary?: readonly string[];
  /** Only these stacks (--stack); unchanged ones among them are skipped. @default every new and changed stack */
  readonly stacks?: readonly string[];
}

const stableOrder = (name: string) => createHash('sha256').update(name).digest('hex');

/** Which stacks deploy in which wave: platform stacks, canary tenants, then the percentages. */
export function planRollout(options: PlanRolloutOptions): RolloutPlan {
  const { plan, registry } = options;
  const byName = new Map(plan.stacks.map((s) => [s.stack, s]));
  for (const name of options.stacks ?? []) {
    if (!byName.has(name) || byName.get(name)!.change === 'removed') throw new RolloutInputError(`--stack: no stack ${JSON.stringify(name)} in ${plan.outdir}`);
  }
  const only = options.stacks?.length ? new Set(options.stacks) : undefined;
  const toDeploy = plan.stacks.filter((s) => (s.change === 'new' || s.change === 'changed') && (!only || only.has(s.stack)));

  const slugs = new Map(registry.tenants.map((t) => [t.slug, t]));
  const canarySlugs = new Set(registry.tenants.filter((t) => t.canary === true).map((t) => t.slug));
  const fleet = registry.platform.fleet;
  for (const slug of fleet.canary.tenants) {
    if (!slugs.has(slug)) throw new RolloutInputError(`platform.yaml fleet.canary.tenants: no tenant ${JSON.stringify(slug)} in the registry`);
    canarySlugs.add(slug);
  }
  for (const slug of options.canary ?? []) {
    if (!slugs.has(slug)) throw new RolloutInputError(`--canary: no tenant ${JSON.stringify(slug)} in the registry`);
    canarySlugs.add(slug);
  }
  const tenantStacks = toDeploy.filter((s) => s.kind === 'tenant');
  const canary = new Set(tenantStacks.filter((s) => s.slug && canarySlugs.has(s.slug)).map((s) => s.stack));
  if (fleet.canary.perModel > 0) {
    // The rule: the first n of each model in a stable order (the same tenants on every run).
    const taken = new Map<string, number>();
    for (const s of [...tenantStacks].sort((a, b) => (stableOrder(a.stack) < stableOrder(b.stack) ? -1 : 1))) {
      const model = s.slug ? slugs.get(s.slug)?.model : undefined;
      if (!model || canary.has(s.stack)) continue;
      if ((taken.get(model) ?? 0) >= fleet.canary.perModel) continue;
      taken.set(model, (taken.get(model) ?? 0) + 1);
      canary.add(s.stack);
    }
  }

  const waves: PlannedWave[] = [];
  const platform = toDeploy.filter((s) => s.kind === 'platform');
  if (platform.length) waves.push({ index: 0, name: 'platform', stacks: platform });
  const tenantByName = new Map(tenantStacks.map((s) => [s.stack, s]));
  for (const wave of assignWaves(tenantStacks.map((s) => s.stack), { canary: [...canary], percents: options.settings.percents })) {
    waves.push({ index: waves.length, name: wave.name, stacks: wave.keys.map((k) => tenantByName.get(k)!) });
  }
  return { waves, removed: plan.stacks.filter((s) => s.change === 'removed'), unchanged: plan.summary.unchanged };
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** What the coordinator reports while it runs (the CLI prints it). */
export type RolloutEvent =
  | { readonly type: 'created'; readonly rolloutId: string; readonly waves: readonly RolloutWave[]; readonly artifacts: string }
  | { readonly type: 'wave'; readonly rolloutId: string; readonly wave: number; readonly name: string; readonly size: number; readonly applied: number; readonly failed: number; readonly inProgress: number }
  | { readonly type: 'stack'; readonly rolloutId: string; readonly stack: string; readonly wave: number; readonly status: 'applied' | 'failed'; readonly error: string | null }
  | { readonly type: 'queue-error'; readonly message: string };

export interface RolloutOutcome {
  readonly rolloutId: string;
  readonly status: 'finished' | 'stopped';
  readonly stopReason: string | null;
}

export interface CoordinatorOptions {
  /** The control plane (the runtime role). One connection is held for the coordinator's lock. */
  readonly db: Pool;
  /** Redis of the rollout queue (BullMQ connection options). */
  readonly connection: ConnectionOptions;
  /** @default ROLLOUT_QUEUE.name */
  readonly queueName?: string;
  /**
   * How often the rows are read again without a queue event (a lost event, a worker that died): a
   * safety net, progress is driven by the queue's events. @default 5000 ms
   */
  readonly pollMs?: number;
  readonly onEvent?: (event: RolloutEvent) => void;
}

export interface DeployFleetOptions extends CoordinatorOptions {
  readonly rollout: RolloutPlan;
  readonly settings: RolloutSettings;
  readonly outdir: string;
  /** Where the artifacts go, from the new rollout's id (rolloutArtifactLocation). */
  readonly artifactLocation: (rolloutId: string) => string;
  readonly artifactStore: (location: string) => ArtifactStore;
  readonly createdBy: string;
  /** Uploads at once. @default 8 */
  readonly uploadConcurrency?: number;
}

/**
 * Creates the rollout of `options.rollout` (refused with RolloutConflictError while another
 * runs), uploads its artifacts, and runs it to the end or to a stop. Resolves undefined when there
 * is nothing to deploy.
 */
export async function deployFleet(options: DeployFleetOptions): Promise<RolloutOutcome | undefined> {
  const stacks = options.rollout.waves.flatMap((w) => w.stacks.map((s) => ({ s, wave: w.index })));
  if (stacks.length === 0) return undefined;
  const id = randomUUID();
  const location = options.artifactLocation(id);
  const store = options.artifactStore(location);
  const waves: RolloutWave[] = options.rollout.waves.map((w) => ({ index: w.index, name: w.name, size: w.stacks.length }));
  const session = await options.db.connect();
  try {
    if (!(await tryLockRollout(session, id))) throw new RolloutLockedError(id, await rolloutLockHolder(options.db, id));
    await createRollout(session, {
      id, waves, parallel: options.settings.parallel, maxFailures: describeMaxFailures(options.settings.maxFailures), artifacts: store.location,
      outdir: options.outdir, libraryVersion: stacks[0].s.libraryVersion ?? 'unknown', createdBy: options.createdBy,
    }, async () => {
      const rows: NewRolloutStack[] = new Array(stacks.length);
      let next = 0;
      const upload = async () => {
        for (let i = next++; i < stacks.length; i = next++) {
          const { s, wave } = stacks[i];
          const artifact = s.artifact!;
          const artifactKey = await store.put(s.stack, dirname(artifact.file));
          rows[i] = {
            stack: s.stack, kind: s.kind, tenantId: s.tenantId, wave, change: s.change as 'new' | 'changed', reasons: s.reasons,
            contentHash: artifact.contentHash, fileHash: artifact.fileHash, components: artifact.components as Record<string, string>,
            libraryVersion: artifact.libraryVersion, fleetTenants: artifact.fleetTenants, artifactKey,
          };
        }
      };
      await Promise.all(Array.from({ length: Math.min(options.uploadConcurrency ?? 8, stacks.length) }, upload));
      return rows;
    });
    options.onEvent?.({ type: 'created', rolloutId: id, waves, artifacts: store.location });
    return await runWaves(id, options);
  } finally {
    store.close(); // its S3 client's sockets, or the process would not exit
    await unlockRollout(session, id).catch(() => undefined);
    session.release();
  }
}

/**
 * Continues a stopped or interrupted rollout (its coordinator died: nobody holds its lock) without
 * redoing applied stacks: failed stacks, and queued or applying ones whose job is no longer live,
 * go back to pending; a live job (waiting, delayed for a retry, or active on a worker) is waited
 * for, never queued a second time. A finished rollout resolves as it is.
 */
export async function resumeRollout(rolloutId: string, options: CoordinatorOptions): Promise<RolloutOutcome & { resumed: boolean }> {
  const rollout = await rolloutById(options.db, rolloutId);
  if (!rollout) throw new RolloutNotFoundError(rolloutId);
  if (rollout.status === 'finished') return { rolloutId: rollout.id, status: 'finished', stopReason: null, resumed: false };
  const session = await options.db.connect();
  try {
    if (!(await tryLockRollout(session, rollout.id))) throw new RolloutLockedError(rollout.id, await rolloutLockHolder(options.db, rollout.id));
    if (rollout.status === 'stopped') await restartRollout(options.db, rollout.id);
    const queue = rolloutQueue(options.connection, undefined, options.queueName ?? ROLLOUT_QUEUE.name);
    try {
      const back: string[] = [];
      for (const row of await rolloutStacks(options.db, rollout.id)) {
        if (row.status === 'failed') back.push(row.stack);
        else if ((row.status === 'queued' || row.status === 'applying') && !(await jobIsLive(queue, rollout.id, row.stack, row.round))) back.push(row.stack);
      }
      await resetStacksToPending(options.db, rollout.id, back);
    } finally {
      await queue.close();
    }
    return { ...(await runWaves(rollout.id, options)), resumed: true };
  } finally {
    await unlockRollout(session, rollout.id).catch(() => undefined);
    session.release();
  }
}

const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

async function jobIsLive(queue: Queue<RolloutJobData>, rolloutId: string, stack: string, round: number): Promise<boolean> {
  const job = await queue.getJob(rolloutJobId(rolloutId, stack, round));
  return job ? LIVE_STATES.has(await job.getState()) : false;
}

interface WaveCounts {
  pending: number;
  inProgress: number;
  applied: number;
  failed: number;
  total: number;
}

/** The waves of a rollout, in order, from the first that is not done; `session` holds the rollout's lock. */
async function runWaves(rolloutId: string, options: CoordinatorOptions): Promise<RolloutOutcome> {
  const { db } = options;
  const rollout = (await rolloutById(db, rolloutId)) as Rollout;
  const max = parseMaxFailures(rollout.maxFailures, 'max_failures');
  const name = options.queueName ?? ROLLOUT_QUEUE.name;
  const queue = rolloutQueue(options.connection, (e) => options.onEvent?.({ type: 'queue-error', message: e.message }), name);
  const events = new QueueEvents(name, { connection: options.connection });
  events.on('error', (e) => options.onEvent?.({ type: 'queue-error', message: e.message }));
  const prefix = `rollout.${rolloutId}.`;
  // A wake-up: any end of one of this rollout's jobs (the worker wrote the row before it), or the poll.
  let dirty = true;
  let byTimer = false;
  let wake: (() => void) | undefined;
  const endedJobs = new Set<string>();
  const onJobEvent = (args: { jobId: string }) => {
    if (!args.jobId.startsWith(prefix)) return;
    endedJobs.add(args.jobId);
    dirty = true;
    wake?.();
  };
  events.on('completed', onJobEvent);
  events.on('failed', onJobEvent);
  const pollMs = options.pollMs ?? 5_000;
  const seen = new Map<string, string>();
  try {
    await events.waitUntilReady();
    for (const wave of rollout.waves) {
      let last = '';
      for (let tick = 0; ; tick++) {
        dirty = false;
        // Every row in flight at the first look and after a quiet poll interval; else the jobs the events named.
        await reconcileInFlight(db, queue, rolloutId, tick === 0 || byTimer ? undefined : new Set(endedJobs), prefix);
        endedJobs.clear();
        byTimer = false;
        const counts = await waveCounts(db, rolloutId, wave.index);
        await reportStacks(db, rolloutId, wave.index, seen, options);
        const key = JSON.stringify(counts);
        if (key !== last) {
          last = key;
          options.onEvent?.({ type: 'wave', rolloutId, wave: wave.index, name: wave.name, size: counts.total, applied: counts.applied, failed: counts.failed, inProgress: counts.inProgress });
        }
        const exceeded = waveFailuresExceeded(counts.failed, counts.total, max);
        if (!exceeded && counts.pending > 0) {
          const inFlight = await rolloutInFlight(db, rolloutId);
          const room = rollout.parallel - inFlight;
          if (room > 0) {
            for (const stack of await pendingStacks(db, rolloutId, wave.index, room)) {
              await enqueueStack(db, rolloutId, stack, async (round) => {
                await queue.add(stack, { rolloutId, stack }, { jobId: rolloutJobId(rolloutId, stack, round) });
              });
            }
            continue;
          }
        }
        if (counts.inProgress === 0 && (exceeded || counts.pending === 0)) {
          if (exceeded) {
            const failed = (await rolloutStacks(db, rolloutId)).filter((s) => s.wave === wave.index && s.status === 'failed').map((s) => s.stack);
            const reason = `wave ${wave.index} (${wave.name}): ${counts.failed} of ${counts.total} stacks failed, more than max-failures ${describeMaxFailures(max)}: ${listStacks(failed)}`;
            await stopRollout(db, rolloutId, reason);
            return { rolloutId, status: 'stopped', stopReason: reason };
          }
          break;
        }
        if (!dirty) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              byTimer = true;
              resolve();
            }, pollMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    }
    // Failures each wave tolerated: the rollout is not finished (every stack applied) until a resume retries them.
    const failed = (await rolloutStacks(db, rolloutId)).filter((s) => s.status === 'failed').map((s) => s.stack);
    if (failed.length > 0) {
      const reason = `${failed.length} stack${failed.length === 1 ? '' : 's'} failed within the failure threshold (max-failures ${describeMaxFailures(max)} per wave): ${listStacks(failed)}; tenancy fleet resume retries ${failed.length === 1 ? 'it' : 'them'}`;
      await stopRollout(db, rolloutId, reason);
      return { rolloutId, status: 'stopped', stopReason: reason };
    }
    await finishRollout(db, rolloutId);
    return { rolloutId, status: 'finished', stopReason: null };
  } finally {
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

const listStacks = (stacks: readonly string[]) => stacks.slice(0, 10).join(', ') + (stacks.length > 10 ? `, … (${stacks.length - 10} more)` : '');

async function waveCounts(db: Pool, rolloutId: string, wave: number): Promise<WaveCounts> {
  const { rows } = await db.query(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status IN ('queued', 'applying'))::int AS "inProgress",
            count(*) FILTER (WHERE status = 'applied')::int AS applied, count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*)::int AS total
       FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND wave = $2`,
    [rolloutId, wave],
  );
  return rows[0];
}

async function rolloutInFlight(db: Pool, rolloutId: string): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND status IN ('queued', 'applying')`, [rolloutId]);
  return rows[0].n;
}

async function pendingStacks(db: Pool, rolloutId: string, wave: number, limit: number): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT stack FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND wave = $2 AND status = 'pending' ORDER BY stack LIMIT $3`,
    [rolloutId, wave, limit],
  );
  return rows.map((r: { stack: string }) => r.stack);
}

/** Reports each stack of the wave that reached applied or failed since the last look. */
async function reportStacks(db: Pool, rolloutId: string, wave: number, seen: Map<string, string>, options: CoordinatorOptions): Promise<void> {
  if (!options.onEvent) return;
  const { rows } = await db.query(
    `SELECT stack, status, error FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND wave = $2 AND status IN ('applied', 'failed')`,
    [rolloutId, wave],
  );
  for (const r of rows as { stack: string; status: 'applied' | 'failed'; error: string | null }[]) {
    if (seen.get(r.stack) === r.status) continue;
    seen.set(r.stack, r.status);
    options.onEvent({ type: 'stack', rolloutId, stack: r.stack, wave, status: r.status, error: r.error });
  }
}

/**
 * Rows still queued or applying whose job has ended without the worker recording it (it used up
 * its attempts before it could claim or record the row) → failed; a job the queue lost → pending
 * again (queued anew with the next round). `only`: the jobs an event named; undefined: every row
 * in flight (the periodic look).
 */
async function reconcileInFlight(db: Pool, queue: Queue<RolloutJobData>, rolloutId: string, only: ReadonlySet<string> | undefined, prefix: string): Promise<void> {
  if (only && only.size === 0) return;
  const { rows } = await db.query(
    `SELECT stack, round FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND status IN ('queued', 'applying')`,
    [rolloutId],
  );
  for (const { stack, round } of rows as { stack: string; round: number }[]) {
    const jobId = rolloutJobId(rolloutId, stack, round);
    if (only && !only.has(jobId)) continue;
    if (!jobId.startsWith(prefix)) continue;
    const job = await queue.getJob(jobId);
    const state = job ? await job.getState() : 'unknown';
    if (state === 'failed') {
      await failStackWithoutWorker(db, rolloutId, stack, round, `its job failed after ${job!.attemptsMade} attempts without the worker recording the stack: ${job!.failedReason ?? 'no reason given'}`);
    } else if (state === 'completed') {
      await failStackWithoutWorker(db, rolloutId, stack, round, 'its job completed without the worker recording the stack applied');
    } else if (state === 'unknown') {
      await db.query(
        `UPDATE tenancy.rollout_stacks SET status = 'pending', error = 'the queue lost its job: queued again' WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status IN ('queued', 'applying')`,
        [rolloutId, stack, round],
      );
    }
  }
}
