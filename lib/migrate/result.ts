import type { Direction } from './plan';
import type { TargetKind } from './targets';

/**
 * The outcome of one target in a run.
 *
 * - `applied`: migrations were applied (up) or reverted (down) and recorded.
 * - `up-to-date`: nothing to do; no transaction was opened.
 * - `pending`: dry run only: what would be applied or reverted (`migrations`).
 * - `failed`: an error (`error`, `code`, `file`); what committed before it stays (`migrations`).
 * - `skipped-locked`: another runner held the target's lock on every attempt.
 * - `edited`: an applied migration's file changed since (`edited`); nothing was run.
 * - `not-started`: a run in waves stopped before this target's wave (lib/migrate/waves.ts);
 *   `migrations` lists what it has pending. Not recorded as the target's status in the control plane.
 */
export type TargetStatus = 'applied' | 'up-to-date' | 'pending' | 'failed' | 'skipped-locked' | 'edited' | 'not-started';
export const TARGET_STATUSES: readonly TargetStatus[] = ['applied', 'up-to-date', 'pending', 'failed', 'skipped-locked', 'edited', 'not-started'];

/** Statuses that make a run (and the CLI's exit code) fail. */
export const FAILING_STATUSES: ReadonlySet<TargetStatus> = new Set(['failed', 'skipped-locked', 'edited', 'not-started']);

export interface TargetResult {
  readonly target: string;
  readonly kind: TargetKind;
  readonly tenantId?: string;
  readonly slug?: string;
  readonly schema: string;
  /** host:port/database, without credentials. */
  readonly database: string;
  readonly status: TargetStatus;
  readonly direction: Direction;
  /** The target's version after the run (the highest applied version; 0 for none). */
  readonly version: number;
  /** Migrations applied or reverted by this run, in order (dry run: that would be). */
  readonly migrations: readonly { version: number; name: string; direction: Direction }[];
  readonly error?: string;
  /** SQLSTATE of the error when PostgreSQL raised it (e.g. 55P03 for a lock timeout). */
  readonly code?: string;
  /** The migration file that failed. */
  readonly file?: string;
  readonly edited?: readonly { version: number; name: string }[];
  /** Lock attempts (1 unless the target was skipped-locked and retried). */
  readonly attempts: number;
  readonly durationMs: number;
}

export interface RunSummary {
  readonly total: number;
  readonly counts: Readonly<Record<TargetStatus, number>>;
  /** Every target applied, up to date or (dry run) pending. */
  readonly ok: boolean;
  readonly durationMs: number;
}

export interface MigrationRun {
  readonly id: string;
  readonly direction: Direction;
  readonly toVersion?: number;
  readonly dryRun: boolean;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** In the order of the targets given. */
  readonly results: readonly TargetResult[];
  readonly summary: RunSummary;
}

export function summarize(results: readonly TargetResult[], durationMs: number): RunSummary {
  const counts = Object.fromEntries(TARGET_STATUSES.map((s) => [s, 0])) as Record<TargetStatus, number>;
  for (const r of results) counts[r.status]++;
  return { total: results.length, counts, ok: results.every((r) => !FAILING_STATUSES.has(r.status)), durationMs };
}
