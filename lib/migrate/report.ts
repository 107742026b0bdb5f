import { basename } from 'node:path';
import type { SingleBar } from 'cli-progress';
import type TableType from 'cli-table3';
import { TARGET_STATUSES, type MigrationRun, type TargetResult } from './result';

/**
 * How a run is shown: tables (cli-table3) for people, JSON lines for machines (one line per
 * target result, then one summary line), a progress bar (cli-progress) on a terminal. The table
 * and progress modules are loaded only when used (JSON lines need neither).
 */
const Table = (): typeof TableType => require('cli-table3') as typeof TableType;

/** One JSON line of a target's result: `{"type":"target",…}`. */
export const targetJsonLine = (result: TargetResult): string => JSON.stringify({ type: 'target', ...result });

/** The last JSON line of a run: `{"type":"summary",…}`. */
export function summaryJsonLine(run: MigrationRun, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: 'summary',
    runId: run.id,
    direction: run.direction,
    toVersion: run.toVersion ?? null,
    dryRun: run.dryRun,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt.toISOString(),
    ...run.summary,
    ...extra,
  });
}

const describeMigrations = (r: TargetResult): string =>
  r.migrations.length === 0 ? '' : r.migrations.map((m) => `${m.direction === 'down' ? '↓' : '↑'}${m.version}`).join(' ');

const problemOf = (r: TargetResult): string => {
  if (r.error) return r.error;
  if (r.edited) return `edited since applied: ${r.edited.map((e) => `${e.version} (${e.name})`).join(', ')}`;
  if (r.status === 'skipped-locked') return `locked by another runner (${r.attempts} attempts)`;
  return '';
};

/**
 * The run as text tables: counts per status, then every target that is not up to date (at most
 * `limit` rows; the JSON lines have them all).
 */
export function renderRunTables(run: MigrationRun, options: { limit?: number } = {}): string {
  const limit = options.limit ?? 50;
  const what = run.dryRun ? 'dry run' : run.direction === 'down' ? `down to ${run.toVersion}` : 'up';
  const counts = new (Table())({ head: ['status', 'targets'], style: { head: [], border: [] } });
  for (const status of TARGET_STATUSES) if (run.summary.counts[status]) counts.push([status, String(run.summary.counts[status])]);
  counts.push(['total', String(run.summary.total)]);
  const interesting = run.results.filter((r) => r.status !== 'up-to-date');
  let text = `Migration run ${run.id} (${what}): ${run.summary.total} targets in ${(run.summary.durationMs / 1000).toFixed(2)} s\n${counts.toString()}\n`;
  if (interesting.length) {
    const details = new (Table())({
      head: ['target', 'kind', 'status', 'version', run.dryRun ? 'would run' : 'ran', 'problem'],
      style: { head: [], border: [] },
      colWidths: [null, null, null, null, null, 60],
      wordWrap: true,
    });
    for (const r of interesting.slice(0, limit)) {
      details.push([r.target, r.kind, r.status, String(r.version), describeMigrations(r), truncate(problemOf(r) + (r.file && !r.error?.startsWith(basename(r.file)) ? ` [${basename(r.file)}]` : ''), 300)]);
    }
    text += `${details.toString()}\n`;
    if (interesting.length > limit) text += `… and ${interesting.length - limit} more (--json lists every target)\n`;
  }
  return text;
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A progress bar on `stream` counting finished targets, with the failures so far. */
export function startProgress(stream: NodeJS.WritableStream, total: number): { tick(result: TargetResult): void; stop(): void } {
  const { SingleBar: Bar } = require('cli-progress') as { SingleBar: typeof SingleBar };
  const bar = new Bar({
    stream,
    format: 'migrating [{bar}] {value}/{total} targets | {applied} applied, {failed} not ok | {duration_formatted}',
    barsize: 30,
    hideCursor: null,
    clearOnComplete: false,
    fps: 10,
  });
  let applied = 0;
  let failed = 0;
  bar.start(total, 0, { applied, failed });
  return {
    tick(result) {
      if (result.status === 'applied') applied++;
      if (result.status === 'failed' || result.status === 'edited' || result.status === 'skipped-locked') failed++;
      bar.increment(1, { applied, failed });
    },
    stop() {
      bar.stop();
    },
  };
}
