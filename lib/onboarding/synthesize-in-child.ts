import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { synthesize } from '../app/synthesize';
import type { Registry } from '../registry/load-registry';

/**
 * Synthesis of one tenant's stack for a lifecycle job, in a child process.
 *
 * Synthesis is CPU-bound and synchronous (seconds for a silo stack, longer on a busy machine). Run
 * on the worker's event loop it blocked the timers that renew the job's BullMQ lock and tenant
 * lock: on a loaded machine the locks lapsed and BullMQ failed the job as stalled. In a child the
 * event loop stays free; the child gets the already loaded registry (any registry source) over
 * IPC, synthesizes, reports the stacks and exits; it exits too when its parent goes away.
 *
 * The child is the compiled synthesize-child.js next to this file. Run from the TypeScript
 * sources (ts-jest, where no .js exists to fork), synthesis runs in-process instead (`isolated`
 * false in the result).
 */
export interface ChildSynthesisOptions {
  readonly root: string;
  readonly outdir: string;
  /** The stack selector (the tenant's slug). */
  readonly select: string;
  readonly registry: Registry;
}

export interface ChildSynthesisResult {
  readonly outdir: string;
  /** Ids of the tenant stacks synthesized. */
  readonly stacks: string[];
  readonly warnings: number;
  /** Whether it ran in a child process. */
  readonly isolated: boolean;
}

export type ChildMessage = { ok: true; outdir: string; stacks: string[]; warnings: number } | { ok: false; error: string };

const CHILD = join(__dirname, 'synthesize-child.js');

export function synthesizeInChild(options: ChildSynthesisOptions): Promise<ChildSynthesisResult> {
  if (!existsSync(CHILD)) {
    const r = synthesize({ root: options.root, outdir: options.outdir, select: options.select, registry: options.registry });
    return Promise.resolve({ outdir: r.outdir, stacks: r.stacks.tenants.map((s) => s.node.id), warnings: r.warnings.length, isolated: false });
  }
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
    let tail = '';
    const keep = (c: Buffer) => {
      tail = (tail + String(c)).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let answer: ChildMessage | undefined;
    child.once('message', (m) => {
      answer = m as ChildMessage;
    });
    child.once('error', (e) => reject(new Error(`synthesis of ${options.select}: cannot start its child process: ${e.message}`)));
    child.once('exit', (code, signal) => {
      if (answer?.ok) resolve({ outdir: answer.outdir, stacks: answer.stacks, warnings: answer.warnings, isolated: true });
      else if (answer) reject(new Error(answer.error));
      else reject(new Error(`synthesis of ${options.select}: its child process ended (${code ?? signal}) without a result${tail.trim() ? `:\n${tail.trim()}` : ''}`));
    });
    child.send({ root: options.root, outdir: options.outdir, select: options.select, registry: options.registry });
  });
}
