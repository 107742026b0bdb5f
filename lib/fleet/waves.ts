import { createHash } from 'node:crypto';

/**
 * Waves of a rollout or a fleet migration: canary keys (stacks, tenants) first, in their own wave,
 * then the rest in waves by cumulative percentage. The order within the rest is by SHA-256 of the
 * key, so the same keys fall into the same waves on every run (a rerun or a resume does not
 * reshuffle), and no alphabetical prefix of the fleet is always first.
 */
export interface WaveSpec {
  /** Keys that go first, in a wave of their own named "canary" (keys not to deploy are ignored). */
  readonly canary: readonly string[];
  /** Cumulative percentages of the non-canary keys, ascending, the last 100: [1, 10, 50, 100]. */
  readonly percents: readonly number[];
}

export interface Wave {
  /** 0-based position among the waves that have keys. */
  readonly index: number;
  /** "canary", or the cumulative percentage it reaches: "1%", "10%", … */
  readonly name: string;
  readonly keys: readonly string[];
}

/** The wave percentages when none are configured. */
export const DEFAULT_WAVE_PERCENTS: readonly number[] = [1, 10, 50, 100];

export class WaveSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WaveSpecError';
  }
}

/**
 * Assigns `keys` to waves: the canary wave, then each percentage's share (rounded up, so 1% of 40
 * is one key and a small fleet still gets a first small wave). Waves without keys are dropped.
 */
export function assignWaves(keys: readonly string[], spec: WaveSpec): Wave[] {
  checkPercents(spec.percents, 'waves');
  const unique = [...new Set(keys)];
  const canarySet = new Set(spec.canary);
  const canary = unique.filter((k) => canarySet.has(k)).sort();
  const rest = unique.filter((k) => !canarySet.has(k)).map((k) => ({ k, h: createHash('sha256').update(k).digest('hex') }))
    .sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.k < b.k ? -1 : 1)).map((e) => e.k);
  const waves: { name: string; keys: string[] }[] = [];
  if (canary.length) waves.push({ name: 'canary', keys: canary });
  let taken = 0;
  for (const percent of spec.percents) {
    const upTo = Math.min(rest.length, Math.ceil((rest.length * percent) / 100));
    if (upTo > taken) waves.push({ name: `${percent}%`, keys: rest.slice(taken, upTo) });
    taken = Math.max(taken, upTo);
  }
  return waves.map((w, index) => ({ index, ...w }));
}

function checkPercents(percents: readonly number[], field: string): void {
  if (percents.length === 0) throw new WaveSpecError(`${field}: at least one wave is needed (e.g. 1,10,50,100)`);
  let previous = 0;
  for (const p of percents) {
    if (!Number.isFinite(p) || p <= 0 || p > 100) throw new WaveSpecError(`${field}: ${p} is not a percentage in (0, 100]`);
    if (p <= previous) throw new WaveSpecError(`${field}: the percentages are cumulative and must ascend (${percents.join(',')})`);
    previous = p;
  }
  if (previous !== 100) throw new WaveSpecError(`${field}: the last wave must reach 100 (${percents.join(',')}), or some stacks would never deploy`);
}

/** "1,10,50,100" → [1, 10, 50, 100]; a clear error naming `field` otherwise. */
export function parseWavePercents(text: string, field: string): number[] {
  const parts = text.split(',').map((s) => s.trim().replace(/%$/, ''));
  const percents = parts.map((s) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN));
  const bad = parts.find((_, i) => Number.isNaN(percents[i]));
  if (bad !== undefined) throw new WaveSpecError(`${field}: ${JSON.stringify(bad)} is not a number (expected cumulative percentages, e.g. 1,10,50,100)`);
  checkPercents(percents, field);
  return percents;
}

/** How many failures a wave tolerates before the rollout stops: a count, or a percentage of the wave. */
export interface MaxFailures {
  readonly count?: number;
  readonly percent?: number;
}

/** "0", "3" or "5%" → a {@link MaxFailures}; a clear error naming `field` otherwise. */
export function parseMaxFailures(text: string, field: string): MaxFailures {
  const t = text.trim();
  const percent = /^(\d+(\.\d+)?)%$/.exec(t);
  if (percent) {
    const p = Number(percent[1]);
    if (p > 100) throw new WaveSpecError(`${field}: ${t} is more than 100%`);
    return { percent: p };
  }
  if (/^\d+$/.test(t)) return { count: Number(t) };
  throw new WaveSpecError(`${field}: ${JSON.stringify(text)} is neither a count (e.g. 0, 3) nor a percentage (e.g. 5%)`);
}

/** Whether `failures` in a wave of `waveSize` exceed the threshold (a failure count above it stops the rollout). */
export function waveFailuresExceeded(failures: number, waveSize: number, max: MaxFailures): boolean {
  if (max.percent !== undefined) return failures > (waveSize * max.percent) / 100;
  return failures > (max.count ?? 0);
}

/** "3", "5%": how a threshold is shown. */
export function describeMaxFailures(max: MaxFailures): string {
  return max.percent !== undefined ? `${max.percent}%` : String(max.count ?? 0);
}
