import type { Migration, MigrationScript, MigrationSet } from './migration-set';
import type { AppliedMigration } from './state';

/**
 * What to do with one target, from the migration set and the target's state: a pure function,
 * computed once from the state read for the whole database and again once the target's lock is held.
 */
export type Direction = 'up' | 'down';

export interface PlanOptions {
  readonly direction: Direction;
  /** up: apply only versions ≤ to; down: revert every applied version > to (required for down). */
  readonly toVersion?: number;
}

/** One migration to apply (up) or revert (down). */
export interface Step {
  readonly migration: Migration;
  readonly direction: Direction;
  readonly script: MigrationScript;
}

export type TargetPlan =
  | { readonly action: 'none'; readonly version: number }
  | { readonly action: 'edited'; readonly version: number; readonly edited: readonly { version: number; name: string }[] }
  | { readonly action: 'refuse'; readonly version: number; readonly error: string }
  | { readonly action: 'migrate'; readonly version: number; readonly steps: readonly Step[] };

export function planTarget(set: MigrationSet, applied: readonly AppliedMigration[], options: PlanOptions): TargetPlan {
  const byVersion = new Map(set.migrations.map((m) => [m.version, m]));
  const version = applied.reduce((max, a) => Math.max(max, a.version), 0);
  const unknown = applied.filter((a) => !byVersion.has(a.version));
  if (unknown.length) {
    return {
      action: 'refuse',
      version,
      error: `applied migration${unknown.length > 1 ? 's' : ''} ${unknown.map((a) => `${a.version} (${a.name})`).join(', ')} not in ${set.dir}: deleted or renumbered, or this runner is older than the one that applied ${unknown.length > 1 ? 'them' : 'it'}`,
    };
  }
  const edited = applied.filter((a) => byVersion.get(a.version)!.checksum !== a.checksum).map((a) => ({ version: a.version, name: a.name }));
  if (edited.length) return { action: 'edited', version, edited };

  if (options.direction === 'up') {
    const done = new Set(applied.map((a) => a.version));
    const steps = set.migrations
      .filter((m) => !done.has(m.version) && (options.toVersion === undefined || m.version <= options.toVersion))
      .map((m): Step => ({ migration: m, direction: 'up', script: m.up }));
    return steps.length ? { action: 'migrate', version, steps } : { action: 'none', version };
  }

  if (options.toVersion === undefined) throw new Error('down migrations need a target version (--to)');
  const toRevert = applied.filter((a) => a.version > options.toVersion!).sort((a, b) => b.version - a.version);
  const steps: Step[] = [];
  for (const a of toRevert) {
    const m = byVersion.get(a.version)!;
    if (!m.down) {
      return { action: 'refuse', version, error: `cannot revert ${a.version} (${m.name}): ${m.up.file.replace(/\.up\.sql$/, '.down.sql')} does not exist` };
    }
    steps.push({ migration: m, direction: 'down', script: m.down });
  }
  return steps.length ? { action: 'migrate', version, steps } : { action: 'none', version };
}

/**
 * Consecutive transactional steps run in one transaction; a no-transaction step runs alone.
 */
export function chunkSteps(steps: readonly Step[]): Step[][] {
  const chunks: Step[][] = [];
  for (const step of steps) {
    const last = chunks.at(-1);
    if (step.script.transactional && last && last[0].script.transactional) last.push(step);
    else chunks.push([step]);
  }
  return chunks;
}

/** The version a target is at after `steps` ran from `version`. */
export function versionAfter(applied: readonly number[], steps: readonly Step[]): number {
  const set = new Set(applied);
  for (const s of steps) {
    if (s.direction === 'up') set.add(s.migration.version);
    else set.delete(s.migration.version);
  }
  return Math.max(0, ...set);
}
