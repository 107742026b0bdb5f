import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
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
 *
 * `leaveOrphansToCli`: the cdktf CLI lists the stack directories before running the app and
 * deletes the ones the app no longer synthesizes afterwards, failing if they are gone; so under
 * the CLI an empty placeholder stands in for each of them until the CLI removes it.
 */
export function commitStaged(staged: string, outdir: string, leaveOrphansToCli = false): void {
  if (existsSync(outdir)) {
    const oldStacks = join(outdir, 'stacks');
    const newStacks = join(staged, 'stacks');
    if (existsSync(oldStacks) && existsSync(newStacks)) {
      const fresh = new Set(readdirSync(newStacks));
      for (const stack of readdirSync(oldStacks)) {
        if (!fresh.has(stack)) {
          if (leaveOrphansToCli) mkdirSync(join(newStacks, stack));
          continue;
        }
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
