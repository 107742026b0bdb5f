import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Manifest, type StackManifest } from 'cdktf/lib/manifest';

/**
 * Merges the outputs of the slices of a parallel synthesis (each a cdktf outdir of some of the
 * stacks) into one outdir that holds exactly what a single-process synth writes:
 *
 *  stacks/<id>/   moved (renamed: same filesystem, no copy) from the slice that synthesized it
 *  manifest.json  the union of the slices' manifests, written by cdktf's own Manifest writer
 *                 (sorted keys, same layout), so it is byte-identical to a single app's
 *  anything else  shared output (assets): must be byte-identical in every slice that has it
 *
 * A stack in two slices, two cdktf versions or a shared file that differs is an error: the
 * merged output would not be what one process writes.
 */
export class SliceOutputs {
  private readonly stacks: Record<string, StackManifest> = {};
  private version: string | undefined;

  constructor(private readonly outdir: string) {
    mkdirSync(join(outdir, Manifest.stacksFolder), { recursive: true });
  }

  /** Moves a finished slice's output in and removes its directory. */
  absorb(sliceDir: string): void {
    const manifest = JSON.parse(readFileSync(join(sliceDir, Manifest.fileName), 'utf8')) as { version: string; stacks: Record<string, StackManifest> };
    if (this.version !== undefined && manifest.version !== this.version) {
      throw new Error(`parallel synthesis: slices written by cdktf ${this.version} and ${manifest.version}`);
    }
    this.version = manifest.version;
    for (const [name, stack] of Object.entries(manifest.stacks)) {
      if (this.stacks[name]) throw new Error(`parallel synthesis: stack ${name} was synthesized by two slices`);
      this.stacks[name] = stack;
    }
    for (const name of readdirSync(sliceDir)) {
      if (name === Manifest.fileName) continue;
      if (name === Manifest.stacksFolder) {
        for (const stack of readdirSync(join(sliceDir, name))) renameSync(join(sliceDir, name, stack), join(this.outdir, name, stack));
      } else {
        mergeShared(join(sliceDir, name), join(this.outdir, name));
      }
    }
    rmSync(sliceDir, { recursive: true, force: true });
  }

  /** Writes manifest.json once every slice is absorbed. */
  finish(): void {
    if (this.version === undefined) throw new Error('parallel synthesis: no slice was absorbed');
    const manifest = new Manifest(this.version, this.outdir, false);
    Object.assign(manifest.stacks, this.stacks);
    manifest.writeToFile();
  }
}

/** Moves `from` to `to`, or, where `to` exists, checks that both hold the same bytes. */
function mergeShared(from: string, to: string): void {
  if (!existsSync(to)) {
    renameSync(from, to);
    return;
  }
  const [a, b] = [lstatSync(from), lstatSync(to)];
  if (a.isDirectory() && b.isDirectory()) {
    for (const name of readdirSync(from)) mergeShared(join(from, name), join(to, name));
    return;
  }
  if (a.isFile() && b.isFile() && readFileSync(from).equals(readFileSync(to))) return;
  throw new Error(`parallel synthesis: slices wrote different contents to ${to}`);
}
