import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import type { Pool } from 'pg';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { guardedPool } from '../db/lost-connections';
import { FleetPlanError, planFleet } from '../fleet/plan';
import {
  deployFleet, planRollout, resumeRollout, RolloutInputError, RolloutLockedError, RolloutNotFoundError, settingsFromPlatform,
  type RolloutEvent, type RolloutOutcome, type RolloutSettings,
} from '../fleet/rollout';
import { artifactStore, RolloutArtifactError, rolloutArtifactLocation } from '../fleet/rollout-artifacts';
import {
  latestRollout, rolloutById, rolloutLockHolder, rolloutStacks, RolloutConflictError, UUID, type Rollout, type RolloutStack,
} from '../fleet/rollout-store';
import { parseMaxFailures, parseWavePercents, WaveSpecError } from '../fleet/waves';
import { redisOptionsFromUrl } from '../onboarding/queue';
import { bridgeShardMoves } from '../onboarding/bridge-placement';
import { loadRegistry } from '../registry/load-registry';
import { RegistryError } from '../registry/registry-error';
import { SLUG_PATTERN } from '../registry/tenant-schema';
import { fleetCommand } from './fleet-command';
import { defaultIo } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy fleet deploy | status | resume`: rollouts of the fleet's new and changed stacks in waves
 * (lib/fleet/rollout.ts), applied by `tenancy worker` processes on any number of machines.
 *
 * Exit codes: 0 the rollout finished (or there was nothing to deploy, or to resume), 1 it stopped
 * (a wave's failures exceeded the threshold), was refused (another rollout runs, another
 * coordinator runs this one) or could not run (control plane, Redis, artifacts), 2 bad usage (an
 * option, the registry or platform.yaml, an unknown rollout id, no control plane).
 */
interface ConnectionCliOptions {
  controlPlaneUrl?: string;
  insecureNoTls?: boolean;
  redisUrl?: string;
  json?: boolean;
}

interface DeployCliOptions extends ConnectionCliOptions {
  outdir?: string;
  synth?: boolean;
  root?: string;
  waves?: string;
  canary?: string[];
  parallel?: string;
  maxFailures?: string;
  stack?: string[];
  artifacts?: string;
  actor?: string;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function connectionOptions(command: Command, redis: boolean): Command {
  command
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--insecure-no-tls', 'connect without TLS, local development only (env TENANCY_INSECURE_NO_TLS=1)');
  if (redis) command.option('--redis-url <url>', 'Redis of the rollout queue, the one the workers use (env TENANCY_REDIS_URL; default redis://127.0.0.1:6379)');
  return command.option('--json', 'JSON (lines while a rollout runs) instead of text');
}

export function registerFleetRolloutCommand(program: Command, io: MigrateCommandIo = defaultIo()): Command {
  const fleet = fleetCommand(program);
  connectionOptions(
    fleet
      .command('deploy')
      .description('Deploy the new and changed stacks in waves (platform stacks, canary tenants, then percentages of the rest), as jobs for `tenancy worker`; stop when a wave\'s failures exceed the threshold.')
      .option('--outdir <dir>', 'synthesized output to deploy (default: <root>/cdktf.out)')
      .option('--synth', 'synthesize every stack into the output directory first')
      .option('--root <dir>', 'project root with platform.yaml and tenants/ (env TENANCY_ROOT; default: the working directory)')
      .option('--waves <percents>', 'cumulative percentages of the non-canary tenant stacks, e.g. 1,10,50,100 (default: platform.yaml fleet.waves)')
      .option('--canary <slug>', 'a canary tenant, deployed first (repeatable; besides `canary: true` entries and platform.yaml fleet.canary)', collect)
      .option('--parallel <n>', 'stacks queued or applying at once, over all workers (default: platform.yaml fleet.parallel)')
      .option('--max-failures <n|p%>', 'failed stacks a wave tolerates before the rollout stops (default: platform.yaml fleet.maxFailures)')
      .option('--stack <name>', 'deploy only this stack if it is new or changed (repeatable)', collect)
      .option('--artifacts <location>', 'where the stacks\' artifacts go: s3://bucket/prefix or an absolute directory (workers on this machine only); default: the state bucket')
      .option('--actor <name>', 'who runs the rollout, recorded with it (default: $TENANCY_ACTOR or $USER)'),
    true,
  )
    .addHelpText('after', '\nExit codes: 0 finished or nothing to deploy, 1 stopped, refused or failed, 2 bad usage.')
    .action(async (options: DeployCliOptions) => {
      process.exitCode = await runDeploy(options, io);
    });

  connectionOptions(
    fleet
      .command('status [rollout]')
      .description('A rollout\'s progress per wave and per stack (status, attempts, worker, error); default: the latest rollout.'),
    false,
  ).action(async (id: string | undefined, options: ConnectionCliOptions) => {
    process.exitCode = await runStatus(id, options, io);
  });

  connectionOptions(
    fleet
      .command('resume [rollout]')
      .description('Continue a stopped or interrupted rollout (its coordinator gone) without redoing applied stacks; default: the latest rollout.'),
    true,
  ).action(async (id: string | undefined, options: ConnectionCliOptions) => {
    process.exitCode = await runResume(id, options, io);
  });
  return fleet;
}

type Fail = (message: string, code?: 1 | 2) => number;

function failer(name: string, io: MigrateCommandIo): Fail {
  return (message, code = 1) => {
    io.stderr.write(`tenancy fleet ${name}: ${message}\n`);
    if (code === 2) throw new CommanderError(2, 'tenancy.usage', message);
    return 1;
  };
}

/** The control-plane pool, or a usage error. */
function controlPlanePool(options: ConnectionCliOptions, io: MigrateCommandIo, fail: Fail, application: string): Pool {
  const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
  if (!url) {
    fail('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL', 2);
  }
  try {
    const pool = guardedPool({ ...controlPlaneConnection(url!, { env: io.env, insecureNoTls: options.insecureNoTls || undefined, applicationName: application }), max: 4 });
    pool.on('error', () => undefined);
    return pool;
  } catch (e) {
    if (e instanceof ControlPlaneTlsError) fail(e.message, 2);
    throw e;
  }
}

function redisConnection(options: ConnectionCliOptions, io: MigrateCommandIo, fail: Fail) {
  try {
    return redisOptionsFromUrl(options.redisUrl ?? io.env.TENANCY_REDIS_URL ?? 'redis://127.0.0.1:6379');
  } catch (e) {
    fail(`--redis-url: ${(e as Error).message}`, 2);
    throw e;
  }
}

const missingTables = (e: unknown) => (e as { code?: string }).code === '42P01'
  ? 'the control plane has no rollout tables: migrate it (tenancy migrate --control-plane, migration 0012)'
  : undefined;

/** The settings: platform.yaml `fleet`, each option on top; a bad option is a usage error naming it. */
function rolloutSettings(options: DeployCliOptions, base: RolloutSettings, fail: Fail): RolloutSettings {
  try {
    const percents = options.waves !== undefined ? parseWavePercents(options.waves, '--waves') : base.percents;
    const maxFailures = options.maxFailures !== undefined ? parseMaxFailures(options.maxFailures, '--max-failures') : base.maxFailures;
    let parallel = base.parallel;
    if (options.parallel !== undefined) {
      parallel = /^\d+$/.test(options.parallel.trim()) ? Number(options.parallel) : NaN;
      if (!(parallel >= 1 && parallel <= 10_000)) fail(`--parallel: ${JSON.stringify(options.parallel)} is not a whole number from 1 to 10000`, 2);
    }
    return { percents, maxFailures, parallel };
  } catch (e) {
    if (e instanceof WaveSpecError) fail(e.message, 2);
    throw e;
  }
}

async function runDeploy(options: DeployCliOptions, io: MigrateCommandIo): Promise<number> {
  const fail = failer('deploy', io);
  // Options first: a bad one is reported before anything connects.
  if (options.waves !== undefined || options.maxFailures !== undefined || options.parallel !== undefined) {
    rolloutSettings(options, { percents: [100], parallel: 1, maxFailures: { count: 0 } }, fail);
  }
  const canary = options.canary ?? [];
  const only = options.stack ?? [];
  for (const slug of canary) if (!SLUG_PATTERN.test(slug)) fail(`--canary: ${JSON.stringify(slug)} is not a tenant slug`, 2);
  for (const stack of only) if (!/^[a-z0-9][a-z0-9-]{0,127}$/.test(stack)) fail(`--stack: ${JSON.stringify(stack)} is not a stack name`, 2);
  if (options.artifacts !== undefined && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(options.artifacts) && !options.artifacts.startsWith('/')) {
    fail(`--artifacts: ${JSON.stringify(options.artifacts)} is neither s3://bucket/prefix nor an absolute directory`, 2);
  }
  const root = resolve(options.root ?? io.env.TENANCY_ROOT ?? process.cwd());
  const pool = controlPlanePool(options, io, fail, 'tenancy-fleet-deploy');
  const connection = redisConnection(options, io, fail);
  const print = printer(io, options.json);
  try {
    let registry;
    try {
      registry = loadRegistry({ root });
    } catch (e) {
      if (e instanceof RegistryError) return fail(e.message, 2);
      throw e;
    }
    const settings = rolloutSettings(options, settingsFromPlatform(registry.platform.fleet), fail);
    const artifactLocation = (id: string) => options.artifacts
      ? `${options.artifacts.replace(/\/+$/, '')}/rollouts/${id}/`
      : rolloutArtifactLocation(registry.platform.state, id);
    try {
      artifactLocation('00000000-0000-4000-8000-000000000000');
    } catch (e) {
      if (e instanceof RolloutArtifactError) return fail(`${e.message}, or give --artifacts`, 2);
      throw e;
    }
    // A bridge tenant whose registry entry moved it to another shard would be applied against an
    // empty schema there, its data left behind: refused before anything is planned or uploaded.
    const moves = await bridgeShardMoves(pool, registry.tenants);
    if (moves.length) return fail(`refusing to deploy: ${moves.length === 1 ? 'a bridge tenant was' : `${moves.length} bridge tenants were`} moved by a registry edit:\n  ${moves.join('\n  ')}`, 2);
    const plan = await planFleet({ db: pool, root, outdir: options.outdir ? resolve(options.outdir) : undefined, synth: options.synth });
    const rollout = planRollout({ plan, registry, settings, canary, stacks: only.length ? only : undefined });
    if (rollout.removed.length) print.line({ type: 'removed', stacks: rollout.removed.map((s) => s.stack) }, `Removed stacks (not destroyed by a rollout; offboarding destroys): ${rollout.removed.map((s) => s.stack).join(', ')}`);
    const outcome = await deployFleet({
      db: pool, connection, rollout, settings, outdir: plan.outdir, artifactLocation, artifactStore: (location) => artifactStore(location, io.env),
      createdBy: options.actor ?? io.env.TENANCY_ACTOR ?? io.env.USER ?? 'tenancy', onEvent: print.event,
    });
    if (!outcome) {
      print.line({ type: 'outcome', status: 'nothing', unchanged: rollout.unchanged }, `Nothing to deploy: every stack is as last applied (${rollout.unchanged} unchanged).`);
      return 0;
    }
    return print.outcome(outcome);
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    if (e instanceof RolloutInputError) return fail(e.message, 2);
    if (e instanceof RolloutConflictError || e instanceof FleetPlanError || e instanceof RolloutArtifactError) return fail(e.message);
    return fail(missingTables(e) ?? (e as Error).message);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

async function runResume(id: string | undefined, options: ConnectionCliOptions, io: MigrateCommandIo): Promise<number> {
  const fail = failer('resume', io);
  if (id !== undefined && !UUID.test(id)) fail(`${JSON.stringify(id)} is not a rollout id (a UUID; tenancy fleet status shows the latest)`, 2);
  const pool = controlPlanePool(options, io, fail, 'tenancy-fleet-resume');
  const connection = redisConnection(options, io, fail);
  const print = printer(io, options.json);
  try {
    const rollout = id ? await rolloutById(pool, id) : await latestRollout(pool);
    if (!rollout) return id ? fail(new RolloutNotFoundError(id).message, 2) : fail('no rollout in the control plane: nothing to resume', 2);
    const outcome = await resumeRollout(rollout.id, { db: pool, connection, onEvent: print.event });
    if (!outcome.resumed) {
      print.line({ type: 'outcome', rolloutId: rollout.id, status: 'finished', resumed: false }, `Rollout ${rollout.id} is finished: nothing to resume.`);
      return 0;
    }
    return print.outcome(outcome);
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    if (e instanceof RolloutNotFoundError) return fail(e.message, 2);
    if (e instanceof RolloutLockedError || e instanceof RolloutConflictError) return fail(e.message);
    return fail(missingTables(e) ?? (e as Error).message);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

export interface WaveStatus {
  readonly index: number;
  readonly name: string;
  readonly total: number;
  readonly applied: number;
  readonly failed: number;
  readonly inProgress: number;
  readonly pending: number;
}

async function runStatus(id: string | undefined, options: ConnectionCliOptions, io: MigrateCommandIo): Promise<number> {
  const fail = failer('status', io);
  if (id !== undefined && !UUID.test(id)) fail(`${JSON.stringify(id)} is not a rollout id (a UUID; without one, the latest rollout)`, 2);
  const pool = controlPlanePool(options, io, fail, 'tenancy-fleet-status');
  try {
    const rollout = id ? await rolloutById(pool, id) : await latestRollout(pool);
    if (!rollout) {
      if (id) return fail(new RolloutNotFoundError(id).message, 2);
      io.stdout.write(options.json ? `${JSON.stringify({ rollout: null })}\n` : 'No rollout yet (tenancy fleet deploy starts one).\n');
      return 0;
    }
    const stacks = await rolloutStacks(pool, rollout.id);
    const coordinator = rollout.status === 'running' ? await rolloutLockHolder(pool, rollout.id) : null;
    const waves: WaveStatus[] = rollout.waves.map((w) => {
      const of = stacks.filter((s) => s.wave === w.index);
      const count = (...st: string[]) => of.filter((s) => st.includes(s.status)).length;
      return { index: w.index, name: w.name, total: of.length, applied: count('applied'), failed: count('failed'), inProgress: count('queued', 'applying'), pending: count('pending') };
    });
    if (options.json) {
      io.stdout.write(`${JSON.stringify({
        rollout: { ...rollout, coordinator, interrupted: rollout.status === 'running' && coordinator === null },
        waves,
        stacks: stacks.map((s) => ({ stack: s.stack, kind: s.kind, wave: s.wave, change: s.change, reasons: s.reasons, status: s.status, round: s.round, attempts: s.attempts, worker: s.worker, error: s.error, startedAt: s.startedAt, finishedAt: s.finishedAt })),
      })}\n`);
    } else {
      io.stdout.write(renderStatus(rollout, waves, stacks, coordinator));
    }
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    return fail(missingTables(e) ?? (e as Error).message);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `  ${r.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`.trimEnd());
}

function renderStatus(rollout: Rollout, waves: readonly WaveStatus[], stacks: readonly RolloutStack[], coordinator: number | null): string {
  const state = rollout.status === 'running'
    ? coordinator === null ? `running, interrupted: its coordinator is gone (tenancy fleet resume ${rollout.id})` : `running (coordinator: control-plane session ${coordinator})`
    : rollout.status;
  const lines = [
    `Rollout ${rollout.id}: ${state}`,
    ...(rollout.stopReason ? [`  stopped: ${rollout.stopReason}`] : []),
    `  created ${rollout.createdAt.toISOString()} by ${rollout.createdBy}; parallel ${rollout.parallel}; max failures per wave ${rollout.maxFailures}`,
    `  artifacts ${rollout.artifacts}`,
    'Waves:',
    ...table([['#', 'wave', 'applied', 'failed', 'in progress', 'pending', 'total'], ...waves.map((w) => [String(w.index), w.name, String(w.applied), String(w.failed), String(w.inProgress), String(w.pending), String(w.total)])], new Set([0, 2, 3, 4, 5, 6])),
    'Stacks:',
    ...table([['stack', 'wave', 'status', 'attempts', 'worker', 'error'], ...stacks.map((s) => [s.stack, String(s.wave), s.status, String(s.attempts), s.worker ?? '-', oneLine(s.error)])], new Set([1, 3])),
  ];
  return `${lines.join('\n')}\n`;
}

const oneLine = (error: string | null) => (error ? error.replace(/\s+/g, ' ').slice(0, 200) : '');

// ---------------------------------------------------------------------------------------------
// Progress output
// ---------------------------------------------------------------------------------------------

function printer(io: MigrateCommandIo, json: boolean | undefined) {
  const line = (object: Record<string, unknown>, text: string) => io.stdout.write(json ? `${JSON.stringify(object)}\n` : `${text}\n`);
  return {
    line,
    event: (e: RolloutEvent) => {
      if (e.type === 'queue-error') {
        io.stderr.write(`tenancy fleet: the rollout queue's Redis: ${e.message}\n`);
        return;
      }
      if (json) {
        line(e, '');
        return;
      }
      if (e.type === 'created') {
        line(e, `Rollout ${e.rolloutId}: ${e.waves.reduce((n, w) => n + w.size, 0)} stacks in ${e.waves.length} waves (${e.waves.map((w) => `${w.name} ${w.size}`).join(', ')}); artifacts ${e.artifacts}`);
      } else if (e.type === 'wave') {
        line(e, `wave ${e.wave} (${e.name}): ${e.applied} applied, ${e.failed} failed, ${e.inProgress} in progress of ${e.size}`);
      } else {
        line(e, `  ${e.status.padEnd(7)} ${e.stack}${e.error ? `: ${oneLine(e.error)}` : ''}`);
      }
    },
    outcome: (o: RolloutOutcome): number => {
      if (o.status === 'finished') {
        line({ type: 'outcome', ...o }, `Rollout ${o.rolloutId} finished: every stack applied.`);
        return 0;
      }
      line({ type: 'outcome', ...o }, `Rollout ${o.rolloutId} stopped: ${o.stopReason}\nFix the cause, then: tenancy fleet resume ${o.rolloutId} (or a new tenancy fleet deploy after a change to the stacks).`);
      return 1;
    },
  };
}
