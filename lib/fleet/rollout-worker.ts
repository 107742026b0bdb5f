import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Pool, type PoolConfig } from 'pg';
import type { ControlPlane } from '../control-plane/control-plane';
import { builtinHooks } from '../hooks/builtin-hooks';
import type { DatabaseConnector } from '../hooks/database-connector';
import { applyDatabaseHostMap, type DatabaseHostMapEntry } from '../hooks/database-host-map';
import { parseDeployOutputs, type PlatformOutputs } from '../hooks/deploy-outputs';
import { runPostApply } from '../hooks/post-apply';
import type { PostApplyHook } from '../hooks/post-apply-hook';
import type { MigrationSets } from '../migrate/migration-set';
import { MAX_STALLED_COUNT } from '../onboarding/worker';
import { recordAppliedStack } from './applied-stacks';
import type { FleetComponent } from './fleet-metadata';
import { artifactStore, RolloutArtifactError, type ArtifactStore } from './rollout-artifacts';
import { ROLLOUT_QUEUE, type RolloutJobData } from './rollout-queue';

/**
 * The rollout worker: takes one stack of a rollout from the rollout queue (lib/fleet/rollout-queue.ts),
 * applies it with Terraform and runs its post-apply hooks, and records the result in the stack's
 * row (tenancy.rollout_stacks, migration 0012) and, once applied, its content in
 * tenancy.applied_stacks. It needs no registry and no synthesis: the stack comes as the rollout's
 * artifact (lib/fleet/rollout-artifacts.ts), checked against the hash in its row.
 *
 * Any number of these run in `tenancy worker` processes on any number of machines. Two never
 * apply one stack at once: BullMQ hands a job to one worker at a time, and where that is not
 * enough (a worker killed mid-apply leaves its terraform running while the job is handed to
 * another), Terraform's S3 state lock is: the retry waits for it (-lock-timeout), then applies
 * what is left, usually nothing.
 */

/** What the post-apply hooks of a tenant stack need (as `tenancy post-apply` has them). */
export interface RolloutHookServices {
  readonly controlPlane: ControlPlane;
  readonly databases: DatabaseConnector;
  readonly migrations: MigrationSets;
  /** The platform stacks' outputs by region (the shared clusters a bridge or pool tenant lives on). */
  readonly platforms: () => ReadonlyMap<string, PlatformOutputs>;
  /** Hosts to connect to instead of those the outputs name (TENANCY_DATABASE_HOST_MAP; local AWS APIs only). @default none */
  readonly databaseHostMap?: readonly DatabaseHostMapEntry[];
  /** Hooks run after the built-in ones (e.g. billing). @default none */
  readonly extraHooks?: readonly PostApplyHook[];
}

export interface RolloutWorkerOptions {
  readonly connection: ConnectionOptions;
  /** The control plane: a pool (shared with the caller, not closed here) or its configuration. */
  readonly controlPlane: Pool | PoolConfig;
  /** Scratch space: artifacts are fetched and applied in `<workDir>/<rollout id>/<stack>/attempt-<n>/`. */
  readonly workDir: string;
  /** Environment of terraform and of the artifact store (AWS settings, TF_CLI_CONFIG_FILE, …). */
  readonly env: NodeJS.ProcessEnv;
  /** Stacks applied at once by this worker. */
  readonly concurrency: number;
  /** BullMQ lock of an active job: a dead worker's job is handed to another after it. @default 30000 */
  readonly lockDurationMs?: number;
  readonly hooks: RolloutHookServices;
  /** Terraform's -lock-timeout: how long an apply waits for a state lock held elsewhere. @default env TENANCY_ROLLOUT_LOCK_TIMEOUT or 10m */
  readonly lockTimeout?: string;
  /** Recorded as who applied the stacks (tenancy.applied_stacks.applied_by). @default tenancy-rollout@<host> */
  readonly actor?: string;
  /** @default ROLLOUT_QUEUE.name */
  readonly queueName?: string;
  /** Longest one terraform command may run. @default 2 h */
  readonly commandTimeoutMs?: number;
  readonly onResult?: (result: RolloutStackResult) => void;
  /** A lost Redis connection (BullMQ reconnects by itself). */
  readonly onError?: (error: Error) => void;
}

export interface RolloutStackResult {
  readonly rolloutId: string;
  readonly stack: string;
  /**
   * applied: this attempt applied it; already-applied / stale: nothing to do (a duplicate job, or
   * the job of an earlier round); retrying / failed: the attempt failed (more attempts left / none).
   */
  readonly outcome: 'applied' | 'already-applied' | 'stale' | 'retrying' | 'failed' | 'early';
  readonly attempt?: number;
  readonly error?: string;
}

/** A stack's row as the worker reads it. */
interface StackRow {
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly tenantId: string | null;
  readonly contentHash: string;
  readonly fileHash: string;
  readonly components: Partial<Record<FleetComponent, string>>;
  readonly libraryVersion: string;
  readonly fleetTenants: number;
  readonly artifactKey: string;
  readonly status: string;
  readonly round: number;
  readonly attempts: number;
  readonly artifacts: string;
}

/** The longest error text kept in a row (the end of Terraform's output holds the provider's error). */
const MAX_ERROR_CHARS = 4000;

const WORKER_ID = `${hostname()}:${process.pid}`;

/**
 * A job of a round its row has not reached: the coordinator added it but did not commit the row
 * (it died in between; its next attempt, or a resume, commits that round and adds the same job id,
 * which BullMQ ignores). The job waits for it, this long at a time, at most EARLY_WAIT_MS in all.
 */
const EARLY_RETRY_MS = 2_000;
const EARLY_WAIT_MS = 24 * 3600_000;

/** The round in a job id `rollout.<id>.<stack>.<round>` (lib/fleet/rollout-queue.ts rolloutJobId). */
function roundOfJob(job: Job<RolloutJobData>): number | undefined {
  const match = /^rollout\.[0-9a-f-]{36}\.[a-z0-9-]+\.([0-9]+)$/.exec(job.id ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Starts a BullMQ worker on the rollout queue. Close it with `worker.close()` (the pool it was given stays open). */
export function startRolloutWorker(options: RolloutWorkerOptions): Worker<RolloutJobData, RolloutStackResult> {
  const ownsPool = !(options.controlPlane instanceof Pool);
  const pool = options.controlPlane instanceof Pool ? options.controlPlane : new Pool({ ...options.controlPlane, max: Math.max(2, options.concurrency + 1) });
  if (ownsPool) pool.on('error', (e) => options.onError?.(e));
  const stores = new Map<string, ArtifactStore>();
  const storeAt = (location: string) => {
    if (!stores.has(location)) stores.set(location, artifactStore(location, options.env));
    return stores.get(location)!;
  };
  const lockDuration = options.lockDurationMs ?? 30_000;
  const worker = new Worker<RolloutJobData, RolloutStackResult>(
    options.queueName ?? ROLLOUT_QUEUE.name,
    async (job, token) => {
      const result = await processStack(job, pool, storeAt, options);
      if (result.outcome === 'early') {
        await job.moveToDelayed(Date.now() + EARLY_RETRY_MS, token);
        throw new DelayedError();
      }
      options.onResult?.(result);
      if (result.outcome === 'retrying') throw new Error(result.error);
      // No retry: the last attempt, or an artifact that can never be applied (refused by its checks).
      if (result.outcome === 'failed') throw new UnrecoverableError(result.error);
      return result;
    },
    {
      connection: options.connection,
      concurrency: options.concurrency,
      lockDuration,
      // How often workers look for jobs whose worker died (their BullMQ lock expired).
      stalledInterval: Math.min(30_000, lockDuration),
      // A worker that died mid-apply never fails the stack: the job is handed on (as lifecycle jobs are).
      maxStalledCount: MAX_STALLED_COUNT,
    },
  );
  worker.on('error', (e) => options.onError?.(e));
  worker.on('closed', () => {
    for (const store of stores.values()) store.close();
    stores.clear();
    if (ownsPool) void pool.end();
  });
  return worker;
}

async function processStack(job: Job<RolloutJobData>, pool: Pool, storeAt: (location: string) => ArtifactStore, options: RolloutWorkerOptions): Promise<RolloutStackResult> {
  const { rolloutId, stack } = job.data;
  const base = { rolloutId, stack };
  const row = await readRow(pool, rolloutId, stack);
  if (!row) return { ...base, outcome: 'stale', error: 'no such stack in the rollout' };
  if (row.status === 'applied') return { ...base, outcome: 'already-applied' };
  const round = roundOfJob(job) ?? row.round;
  if (round > row.round && Date.now() - job.timestamp < EARLY_WAIT_MS) return { ...base, outcome: 'early' };
  // A job of an earlier round (the stack was put back and queued again since), or a stack no
  // longer queued (a resume set it pending): the current round's job does the work.
  if (round !== row.round || (row.status !== 'queued' && row.status !== 'applying')) return { ...base, outcome: 'stale' };

  const claimed = await pool.query<{ attempts: number }>(
    `UPDATE tenancy.rollout_stacks SET status = 'applying', attempts = attempts + 1, worker = $4, started_at = now(), error = NULL, finished_at = NULL
      WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status IN ('queued', 'applying') RETURNING attempts`,
    [rolloutId, stack, round, WORKER_ID],
  );
  if (claimed.rowCount === 0) return { ...base, outcome: 'stale' };
  const attempt = claimed.rows[0].attempts;
  const stackWork = join(options.workDir, rolloutId, stack);
  const dir = join(stackWork, `attempt-${attempt}`);
  try {
    await applyStack(row, { dir, log: join(stackWork, `attempt-${attempt}.log`), outputs: join(stackWork, `attempt-${attempt}.outputs.json`) }, storeAt, options);
  } catch (e) {
    const error = (e instanceof Error ? e.message : String(e)).slice(-MAX_ERROR_CHARS);
    // BullMQ retries a failed attempt while attempts are left: the stack is then queued again, not
    // failed. A refused artifact (tampered, stale, malformed) fails at once: a retry reads the same.
    const willRetry = !(e instanceof RolloutArtifactError) && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
    await pool.query(
      `UPDATE tenancy.rollout_stacks SET status = $4, error = $5, finished_at = CASE WHEN $4 = 'failed' THEN now() END
        WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status = 'applying'`,
      [rolloutId, stack, round, willRetry ? 'queued' : 'failed', error],
    );
    return { ...base, outcome: willRetry ? 'retrying' : 'failed', attempt, error };
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const done = await client.query(
      `UPDATE tenancy.rollout_stacks SET status = 'applied', finished_at = now(), error = NULL
        WHERE rollout_id = $1 AND stack = $2 AND round = $3 AND status = 'applying'`,
      [rolloutId, stack, round],
    );
    if (done.rowCount === 1) await recordAppliedStack(client, row, options.actor ?? `tenancy-rollout@${WORKER_ID}`);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
  // The log stays beside it (what was applied, for an operator); the working directory goes.
  rmSync(dir, { recursive: true, force: true });
  return { ...base, outcome: 'applied', attempt };
}

async function readRow(pool: Pool, rolloutId: string, stack: string): Promise<StackRow | undefined> {
  const { rows } = await pool.query<StackRow>(
    `SELECT s.stack, s.kind, s.tenant_id::text AS "tenantId", s.content_hash AS "contentHash", s.file_hash AS "fileHash", s.components,
            s.library_version AS "libraryVersion", s.fleet_tenants AS "fleetTenants", s.artifact_key AS "artifactKey", s.status, s.round, s.attempts,
            r.artifacts
       FROM tenancy.rollout_stacks s JOIN tenancy.rollouts r ON r.id = s.rollout_id
      WHERE s.rollout_id = $1 AND s.stack = $2
      -- Waits for a coordinator's transaction that is queueing this stack (it adds the job before
      -- it commits the row): read after it, the row is queued in the job's round.
        FOR UPDATE OF s`,
    [rolloutId, stack],
  );
  return rows[0];
}

/** Fetches the artifact, applies it, and runs the post-apply hooks of a tenant stack; throws with the reason. */
async function applyStack(row: StackRow, paths: { dir: string; log: string; outputs: string }, storeAt: (location: string) => ArtifactStore, options: RolloutWorkerOptions): Promise<void> {
  const { dir, log } = paths;
  rmSync(dir, { recursive: true, force: true });
  await storeAt(row.artifacts).fetch(row.artifactKey, dir, row.fileHash);
  const lockTimeout = options.lockTimeout ?? options.env.TENANCY_ROLLOUT_LOCK_TIMEOUT ?? '10m';
  if (!/^[0-9]+[smh]$/.test(lockTimeout)) throw new Error(`TENANCY_ROLLOUT_LOCK_TIMEOUT ${JSON.stringify(lockTimeout)} is not a duration such as 10m`);
  const run = (args: readonly string[], stdoutFile?: string) => terraform(args, { cwd: dir, env: options.env, log, stdoutFile, timeoutMs: options.commandTimeoutMs });
  await run(['init', '-input=false', '-no-color']);
  await run(['apply', '-input=false', '-auto-approve', '-no-color', `-lock-timeout=${lockTimeout}`]);
  if (row.kind !== 'tenant') return;
  const outputsFile = paths.outputs;
  await run(['output', '-json', '-no-color'], outputsFile);
  const raw = JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, { value: unknown }>;
  rmSync(outputsFile, { force: true }); // holds sensitive outputs
  const values = Object.fromEntries(Object.entries(raw).map(([name, o]) => [name, o.value]));
  const parsed = parseDeployOutputs({ [row.stack]: values }, `terraform output of ${row.stack}`);
  const tenant = parsed.tenants[0];
  if (!tenant || tenant.tenant_id !== row.tenantId) throw new Error(`terraform output of ${row.stack}: tenant_id ${tenant?.tenant_id ?? '(none)'} is not the rollout's tenant ${row.tenantId}`);
  const outputs = applyDatabaseHostMap({ tenants: [tenant], platforms: options.hooks.platforms() }, options.hooks.databaseHostMap ?? []);
  const outcomes = await runPostApply({
    outputs,
    hooks: [...builtinHooks(options.hooks.migrations), ...(options.hooks.extraHooks ?? [])],
    controlPlane: options.hooks.controlPlane,
    databases: options.hooks.databases,
  });
  const failed = outcomes.filter((o) => o.status === 'failed' || o.status === 'not-run');
  if (failed.length > 0) throw new Error(`post-apply hooks of ${row.stack} failed: ${failed.map((o) => `${o.hook}: ${o.error ?? o.status}`).join('; ')}`);
}

/** Terraform commands running now, by process group (see stopTerraformOnExit). */
const running = new Set<number>();

/**
 * Runs terraform in its own process group with its output in files, not pipes: a worker killed
 * mid-apply (SIGKILL, OOM) leaves the apply running to its end, which then releases the state
 * lock. With pipes, its next write would find no reader and end it by SIGPIPE with the lock held.
 */
function terraform(args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; log: string; stdoutFile?: string; timeoutMs?: number }): Promise<void> {
  mkdirSync(options.cwd, { recursive: true });
  const logFd = openSync(options.log, 'a');
  const outFd = options.stdoutFile ? openSync(options.stdoutFile, 'w', 0o600) : logFd;
  let child: ChildProcess;
  try {
    child = spawn('terraform', [...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', outFd, logFd], detached: true, timeout: options.timeoutMs ?? 2 * 3600_000 });
  } finally {
    closeSync(logFd);
    if (outFd !== logFd) closeSync(outFd);
  }
  const pid = child.pid;
  if (pid !== undefined) {
    if (running.size === 0) process.once('exit', stopTerraformOnExit);
    running.add(pid);
  }
  return new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`terraform: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (pid !== undefined) {
        running.delete(pid);
        if (running.size === 0) process.removeListener('exit', stopTerraformOnExit);
      }
      if (code === 0) return resolve();
      let tail = '';
      try {
        tail = readFileSync(options.log, 'utf8').slice(-MAX_ERROR_CHARS + 200);
      } catch {
        // no log
      }
      reject(new Error(`terraform ${args[0]} failed (${code ?? signal}); log ${options.log}:\n${tail.trim()}`));
    });
  });
}

/** A worker that exits (its stop bound expired) tells its running terraform to stop: it stops gracefully and releases the state lock. */
function stopTerraformOnExit(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
