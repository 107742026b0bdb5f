/**
 * Phase lines for long commands (`npm start`; scripts/phase.sh does the same for `npm test`):
 * "npm start: synth …" when a phase begins, "npm start: synth done in 3.2 s" when it ends, and
 * while it runs its progress with the elapsed time. They go to stderr, so that stdout stays the
 * command's result, which pipelines and tests parse.
 *
 * On a terminal the progress line is redrawn in place; anywhere else (a pipe, a log file, CI) each
 * update is a plain line of its own, at most one per {@link PhaseReporterOptions.plainIntervalMs}:
 * no carriage returns in logs.
 */
export interface PhaseReporterOptions {
  /** Text before each line, e.g. "npm start". */
  readonly prefix: string;
  /**
   * Where the lines go.
   * @default process.stderr
   */
  readonly stream?: Pick<NodeJS.WriteStream, 'write'> & { readonly isTTY?: boolean };
  /**
   * Redraw one line in place (\r) instead of printing a line per update.
   * @default the stream is a terminal and $CI is not set
   */
  readonly animate?: boolean;
  /**
   * Without animation: the least time between two progress lines of one phase (the first update
   * and the end are always printed).
   * @default 5000
   */
  readonly plainIntervalMs?: number;
  /**
   * The clock, in milliseconds.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** True where progress may be animated: a terminal outside CI. */
export function isInteractive(stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  return stream.isTTY === true && !ci;
}

/** Seconds with one decimal, truncated as scripts/phase.sh does: "3.2 s". */
export const formatElapsed = (ms: number): string => `${(Math.floor(Math.max(0, ms) / 100) / 10).toFixed(1)} s`;

/** Prints the phases of one command. */
export class PhaseReporter {
  private readonly prefix: string;
  private readonly stream: Pick<NodeJS.WriteStream, 'write'>;
  private readonly animate: boolean;
  private readonly plainIntervalMs: number;
  private readonly now: () => number;

  constructor(options: PhaseReporterOptions) {
    const stream = options.stream ?? process.stderr;
    this.prefix = options.prefix;
    this.stream = stream;
    this.animate = options.animate ?? isInteractive(stream);
    this.plainIntervalMs = options.plainIntervalMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  /** Begins a phase: prints "<prefix>: <name> …". */
  begin(name: string): Phase {
    return new Phase(name, this.prefix, this.stream, this.animate, this.plainIntervalMs, this.now);
  }

  /** Runs `work` as a phase: its end (or failure) is printed with the elapsed time. */
  async run<T>(name: string, work: (phase: Phase) => Promise<T> | T): Promise<T> {
    const phase = this.begin(name);
    try {
      const result = await work(phase);
      phase.end();
      return result;
    } catch (e) {
      phase.fail();
      throw e;
    }
  }
}

/** One phase under way. */
export class Phase {
  private readonly started: number;
  private lastPlain = Number.NEGATIVE_INFINITY;
  private status = '';
  private drawn = false;
  private ended = false;
  private readonly ticker?: NodeJS.Timeout;

  constructor(
    readonly name: string,
    private readonly prefix: string,
    private readonly stream: Pick<NodeJS.WriteStream, 'write'>,
    private readonly animate: boolean,
    private readonly plainIntervalMs: number,
    private readonly now: () => number,
  ) {
    this.started = now();
    this.stream.write(`${prefix}: ${name} …\n`);
    // On a terminal the elapsed time ticks while the event loop is free; unref'd: never keeps the process alive.
    if (animate) {
      this.ticker = setInterval(() => this.draw(), 1000);
      this.ticker.unref();
    }
  }

  /** Milliseconds since the phase began. */
  get elapsedMs(): number {
    return this.now() - this.started;
  }

  /** Reports progress within the phase, e.g. "3/16 slices". */
  progress(status: string): void {
    if (this.ended) return;
    this.status = status;
    if (this.animate) {
      this.draw();
      return;
    }
    const now = this.now();
    if (now - this.lastPlain < this.plainIntervalMs) return;
    this.lastPlain = now;
    this.stream.write(`${this.line()}\n`);
  }

  /** Ends the phase: "<prefix>: <name> done in 3.2 s" (with `detail` after it). */
  end(detail?: string): void {
    this.finish(`done in ${formatElapsed(this.elapsedMs)}${detail ? ` (${detail})` : ''}`);
  }

  /** Ends the phase as failed: "<prefix>: <name> failed after 3.2 s". */
  fail(): void {
    this.finish(`failed after ${formatElapsed(this.elapsedMs)}`);
  }

  private finish(what: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.ticker) clearInterval(this.ticker);
    this.clear();
    this.stream.write(`${this.prefix}: ${this.name} ${what}\n`);
  }

  private line(): string {
    return `${this.prefix}: ${this.name} ${this.status ? `${this.status}, ` : ''}${formatElapsed(this.elapsedMs)}`;
  }

  private draw(): void {
    if (this.ended) return;
    this.stream.write(`\r\x1b[K${this.line()}`);
    this.drawn = true;
  }

  private clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
