import { RegistryError } from '../registry/registry-error';

/** Prints why synthesis failed, without a stack trace for the errors users cause; returns the exit code. */
export function reportFailure(e: unknown): number {
  if (e instanceof RegistryError) {
    console.error(e.message);
    return 2;
  }
  const message = e instanceof Error ? e.message : String(e);
  console.error(`Synthesis failed; nothing was written.\n${message}`);
  if (process.env.TENANCY_DEBUG && e instanceof Error) console.error(e.stack);
  return 1;
}
