// Runs one measured child process: wall time seen by the parent, CPU time and peak RSS of the child.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseChildResult } from './child-result';

/** GNU time measures the child's peak RSS and CPU time from outside, up to its exit. */
const TIME_BIN = '/usr/bin/time';
export const USAGE_SOURCE = existsSync(TIME_BIN) ? `GNU time (${TIME_BIN} -f '%M %U %S')` : 'process.resourceUsage() reported by the child';

/** Settings that would change what synthesize() does; the measured children must not inherit them. */
const SCRUBBED_ENV = ['TENANCY_SELECT', 'CDKTF_CONTEXT_JSON', 'CDKTF_OUTDIR', 'NODE_OPTIONS', 'TENANCY_SYNTH_PROCESSES'];

export interface Measurement {
  /** Spawn to exit, as seen by the parent: node start-up and module loading included. */
  readonly wallMs: number;
  /** User + system CPU time of the child; less sensitive than wall time to other load on the machine. */
  readonly cpuMs: number;
  readonly maxRssKb: number;
  readonly stacks: number;
}

/** Runs `node <script> ...args` once and measures it; throws with the child's stderr if it fails. */
export function measureNode(script: string, args: readonly string[]): Measurement {
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1' };
  for (const key of SCRUBBED_ENV) delete env[key];
  const timeDir = mkdtempSync(join(tmpdir(), 'tenancy-bench-time-'));
  const timeFile = join(timeDir, 'usage');
  const useTime = existsSync(TIME_BIN);
  const [cmd, argv] = useTime
    ? [TIME_BIN, ['-f', '%M %U %S', '-o', timeFile, process.execPath, script, ...args]]
    : [process.execPath, [script, ...args]];
  try {
    const start = process.hrtime.bigint();
    const child = spawnSync(cmd, argv, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
    const result = parseChildResult(child.stdout ?? '');
    if (child.error || child.status !== 0 || !result) {
      throw new Error(`${script} ${args.join(' ')} failed (status ${child.status}${child.signal ? `, signal ${child.signal}` : ''}):\n${child.stderr ?? child.error?.message ?? ''}`);
    }
    // GNU time's last line is the format; earlier lines would be "Command exited with non-zero status".
    const [rss, user, sys] = useTime ? readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) : [];
    return useTime && rss > 0
      ? { wallMs, cpuMs: (user + sys) * 1000, maxRssKb: rss, stacks: result.stacks }
      : { wallMs, cpuMs: result.cpuMs, maxRssKb: result.maxRssKb, stacks: result.stacks };
  } finally {
    rmSync(timeDir, { recursive: true, force: true });
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Flushes dirty pages (the outputs just deleted or written) so their writeback does not land in
 * the next measured run. A no-op cost on tmpfs.
 */
export function settle(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/** A positive integer from the environment (BENCH_* knobs), or the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a positive integer`);
  return Number(raw);
}

/** The load averages (1, 5, 15 min), for the machine line of a benchmark report. */
export const loadAverages = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
