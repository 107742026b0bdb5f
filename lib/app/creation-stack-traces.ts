/**
 * cdktf records a full stack trace (unbounded depth, formatted to strings) for every token, lazy
 * value and complex attribute it creates, only to decorate the message of a token that fails to
 * resolve. At 10,000 tenant stacks that is ~40% of synth time and most of the memory
 * (docs/BENCHMARKS.md), so synthesis runs without them.
 *
 * Set TENANCY_TOKEN_TRACES=1 to keep them when a resolution error needs its creation stack.
 * The switch replaces the one function cdktf calls for this (every call site reads it from the
 * module's exports); if a cdktf version moves it, nothing is replaced and synthesis is just slower.
 */
export const TOKEN_TRACES_ENV = 'TENANCY_TOKEN_TRACES';

type StackTraceModule = { captureStackTrace: (below?: unknown) => string[] };

function stackTraceModule(): StackTraceModule | undefined {
  try {
    const mod = require('cdktf/lib/tokens/private/stack-trace') as Partial<StackTraceModule>;
    return typeof mod.captureStackTrace === 'function' ? (mod as StackTraceModule) : undefined;
  } catch {
    return undefined;
  }
}

const NO_TRACE = (): string[] => [];

/** Turns cdktf's creation stack traces off until the returned function is called (unless TENANCY_TOKEN_TRACES=1). */
export function withoutCreationStackTraces(): () => void {
  const mod = stackTraceModule();
  if (!mod || process.env[TOKEN_TRACES_ENV] === '1' || mod.captureStackTrace === NO_TRACE) return () => {};
  const original = mod.captureStackTrace;
  mod.captureStackTrace = NO_TRACE;
  return () => {
    mod.captureStackTrace = original;
  };
}
