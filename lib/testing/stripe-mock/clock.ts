/**
 * The server's notion of "now", in Unix seconds: the real time by default, plus an offset that
 * tests move forward (trial ends, period boundaries, idempotency keys and Checkout Sessions
 * expiring after 24 hours) without waiting.
 */
export class MockClock {
  private offset = 0;
  private fixed: number | undefined;

  constructor(start?: number) {
    this.fixed = start;
  }

  now(): number {
    return (this.fixed ?? Math.floor(Date.now() / 1000)) + this.offset;
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`MockClock.advance: ${seconds} is not a non-negative number of seconds`);
    this.offset += Math.floor(seconds);
  }

  /** Freezes the clock at `time` (Unix seconds). */
  set(time: number): void {
    this.fixed = Math.floor(time);
    this.offset = 0;
  }
}
