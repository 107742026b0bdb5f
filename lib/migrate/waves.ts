import { randomUUID } from 'node:crypto';
import { assignWaves, describeMaxFailures, waveFailuresExceeded, type MaxFailures, type WaveSpec } from '../fleet/waves';
import { FAILING_STATUSES, summarize, type MigrationRun, type TargetResult, type TargetStatus } from './result';
import { migrateTargets, type MigrateOptions } from './runner';
import { TargetError, type MigrationTarget } from './targets';

/**
 * A fleet migration in waves, as a fleet rollout (lib/fleet/waves.ts): the canary tenants first,
 * in a wave of their own, then the other targets in waves by cumulative percentage, in a stable
 * order (SHA-256 of the target's name: the same waves on every run). Each wave is a run of
 * {@link migrateTargets} (same guarantees: a transaction, lock and state check per target), and a
 * wave starts only when the one before it finished with no more failures than `maxFailures`
 * (failed, edited or still locked); otherwise the run stops there and every target of the later
 * waves is reported `not-started` (with the migrations it has pending). A rerun migrates what is
 * still pending: the targets of finished waves are up to date, settled by the state read.
 */
export interface WaveMigrateOptions extends MigrateOptions {
  /** Canary tenants by slug (each must be among the targets) and the cumulative percentages. */
  readonly waves: WaveSpec;
  /** Canary tenants by slug that need not be among the targets (e.g. the registry's marks: pool tenants have no target). */
  readonly canaryIfPresent?: readonly string[];
  /** Failures a wave tolerates before the run stops. @default { count: 0 } */
  readonly maxFailures?: MaxFailures;
  /** Called when a wave starts and when it ends (finished or stopped), and for each wave not started. */
  readonly onWave?: (wave: WaveReport) => void;
}

export interface WaveReport {
  readonly index: number;
  /** "canary", "1%", "10%", … */
  readonly name: string;
  readonly status: 'running' | 'finished' | 'stopped' | 'not-started';
  readonly targets: readonly string[];
  /** Failing results of the wave (failed, edited, skipped-locked), once it ended. */
  readonly failures: number;
}

export interface WaveRunResult {
  /** Every target's result (`not-started` for the waves after a stop), one run id. */
  readonly run: MigrationRun;
  readonly waves: readonly WaveReport[];
  /** The wave whose failures stopped the run, with the threshold, when it stopped. */
  readonly stopped?: { readonly wave: string; readonly failures: number; readonly maxFailures: string };
}

export async function migrateInWaves(options: WaveMigrateOptions): Promise<WaveRunResult> {
  const startedAt = new Date();
  const bySlug = new Map(options.targets.filter((t) => t.slug !== undefined).map((t) => [t.slug!, t]));
  const unknown = options.waves.canary.filter((slug) => !bySlug.has(slug));
  if (unknown.length) throw new TargetError(`--canary ${unknown.join(', ')}: not among the targets`);
  const canary = [...options.waves.canary, ...(options.canaryIfPresent ?? [])].flatMap((slug) => (bySlug.has(slug) ? [bySlug.get(slug)!.name] : []));
  const byName = new Map(options.targets.map((t) => [t.name, t]));
  const waves = assignWaves([...byName.keys()], { canary, percents: options.waves.percents });
  const maxFailures = options.maxFailures ?? { count: 0 };
  const runId = options.runId ?? randomUUID();

  const results = new Map<string, TargetResult>();
  const reports: WaveReport[] = [];
  let stopped: WaveRunResult['stopped'];
  for (const wave of waves) {
    const targets = wave.keys.map((k) => byName.get(k)!);
    if (stopped) {
      for (const r of await notStarted(options, targets)) {
        results.set(r.target, r);
        options.onResult?.(r);
      }
      const report: WaveReport = { index: wave.index, name: wave.name, status: 'not-started', targets: wave.keys, failures: 0 };
      reports.push(report);
      options.onWave?.(report);
      continue;
    }
    options.onWave?.({ index: wave.index, name: wave.name, status: 'running', targets: wave.keys, failures: 0 });
    const run = await migrateTargets({ ...options, targets, runId });
    for (const r of run.results) results.set(r.target, r);
    const failures = run.results.filter((r) => FAILING_STATUSES.has(r.status)).length;
    const stop = waveFailuresExceeded(failures, targets.length, maxFailures) && wave !== waves[waves.length - 1];
    const report: WaveReport = { index: wave.index, name: wave.name, status: stop ? 'stopped' : 'finished', targets: wave.keys, failures };
    reports.push(report);
    options.onWave?.(report);
    if (stop) stopped = { wave: wave.name, failures, maxFailures: describeMaxFailures(maxFailures) };
  }

  const finishedAt = new Date();
  const ordered = options.targets.map((t) => results.get(t.name)!);
  return {
    run: {
      id: runId,
      direction: options.direction ?? 'up',
      toVersion: options.toVersion,
      dryRun: Boolean(options.dryRun),
      startedAt,
      finishedAt,
      results: ordered,
      summary: summarize(ordered, finishedAt.getTime() - startedAt.getTime()),
    },
    waves: reports,
    stopped,
  };
}

/**
 * The targets of a wave that did not start, with what they have pending: a dry run (read-only:
 * one state query per database, no lock, no transaction), relabelled.
 */
async function notStarted(options: WaveMigrateOptions, targets: readonly MigrationTarget[]): Promise<TargetResult[]> {
  const dry = await migrateTargets({ ...options, targets, dryRun: true, onResult: undefined });
  const status: TargetStatus = 'not-started';
  return dry.results.map((r) => ({
    ...r,
    status,
    migrations: r.status === 'pending' ? r.migrations : [],
    error: r.status === 'pending' || r.status === 'up-to-date' ? undefined : r.error,
    attempts: 0,
    durationMs: 0,
  }));
}
