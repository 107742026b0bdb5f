import { chmodSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** What terraform leaves in a stack directory that must survive a new synth (providers, lock file). */
const KEPT_IN_STACK_DIRS = ['.terraform', '.terraform.lock.hcl'];

/** A fresh directory next to `outdir`, so the final rename stays on one filesystem. */
export function stagingDir(outdir: string): string {
  const dir = mkdtempSync(join(dirname(outdir), `.${basename(outdir)}.staging-`));
  chmodSync(dir, 0o755); // mkdtemp makes it private; the output is not secret
  return dir;
}

/**
 * Replaces `outdir` by `staged` in two renames, carrying over terraform's working files,
 * so a failed or interrupted synth never leaves a half-written output behind.
 */
export function commitStaged(staged: string, outdir: string): void {
  if (existsSync(outdir)) {
    const oldStacks = join(outdir, 'stacks');
    const newStacks = join(staged, 'stacks');
    if (existsSync(oldStacks) && existsSync(newStacks)) {
      for (const stack of readdirSync(newStacks)) {
        for (const kept of KEPT_IN_STACK_DIRS) {
          const from = join(oldStacks, stack, kept);
          if (existsSync(from)) renameSync(from, join(newStacks, stack, kept));
        }
      }
    }
    const trash = `${staged}.old`;
    renameSync(outdir, trash);
    renameSync(staged, outdir);
    rmSync(trash, { recursive: true, force: true });
  } else {
    renameSync(staged, outdir);
  }
}

export function discardStaged(staged: string): void {
  rmSync(staged, { recursive: true, force: true });
}
