// The line a benchmark child process prints last, and the parent's parser for it.

/** Marks the result line, so stray output of the measured code cannot be mistaken for it. */
const PREFIX = 'BENCH_RESULT ';

export interface ChildResult {
  /** Stacks synthesized. */
  readonly stacks: number;
  /** Milliseconds from process start (before module loading) to the end of synth. */
  readonly elapsedMs: number;
  /** User + system CPU time so far, in milliseconds. */
  readonly cpuMs: number;
  /** Peak resident set size of the child so far, in KiB (getrusage). */
  readonly maxRssKb: number;
}

/** Called by a child once its work is done. */
export function reportChildResult(stacks: number): void {
  const usage = process.resourceUsage();
  const result: ChildResult = { stacks, elapsedMs: performance.now(), cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssKb: usage.maxRSS };
  process.stdout.write(`${PREFIX}${JSON.stringify(result)}\n`);
}

export function parseChildResult(stdout: string): ChildResult | undefined {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith(PREFIX));
  return line ? (JSON.parse(line.slice(PREFIX.length)) as ChildResult) : undefined;
}
