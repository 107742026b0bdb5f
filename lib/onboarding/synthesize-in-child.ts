import { fork, type ChildProcess } from 'node:child_process';
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
 * IPC, synthesizes and reports the stacks.
 *
 * The children are resident, like BullMQ's sandboxed processors: starting Node and loading cdktf
 * and the provider bindings costs more than synthesizing one tenant, so a child that answered is
 * kept (idle, not keeping the worker alive) for the next request, up to {@link MAX_IDLE_CHILDREN}
 * of them, and replaced after {@link MAX_REQUESTS_PER_CHILD} requests (memory stays bounded).
 * A child that dies fails only its request; the next request gets a new child. Children exit
 * when the worker exits.
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
  /** The child's process id (children are reused). */
  readonly pid?: number;
}

export type ChildRequest = ChildSynthesisOptions & { readonly id: number };
export type ChildMessage = { id: number; ok: true; outdir: string; stacks: string[]; warnings: number } | { id: number; ok: false; error: string };

const CHILD = join(__dirname, 'synthesize-child.js');
/** Idle children kept for the next requests (a worker's concurrency rarely needs more). */
export const MAX_IDLE_CHILDREN = 2;
/** Requests a child serves before it is replaced. */
export const MAX_REQUESTS_PER_CHILD = 200;

interface ResidentChild {
  readonly process: ChildProcess;
  served: number;
  /** The last output, for the error when it dies. */
  tail: string;
}

const idle: ResidentChild[] = [];
let nextId = 1;

const alive = (c: ResidentChild) => c.process.connected && c.process.exitCode === null && c.process.signalCode === null;

function forkChild(): ResidentChild {
  const child = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
  const resident: ResidentChild = { process: child, served: 0, tail: '' };
  const keep = (c: Buffer) => {
    resident.tail = (resident.tail + String(c)).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // An idle child that dies is dropped; a busy one's death is reported to its request below.
  child.on('error', () => undefined);
  child.once('exit', () => {
    const i = idle.indexOf(resident);
    if (i >= 0) idle.splice(i, 1);
  });
  return resident;
}

/** An idle child does not keep the worker's process alive. */
function park(resident: ResidentChild): void {
  resident.process.unref();
  (resident.process.channel as { unref?: () => void } | undefined)?.unref?.();
  (resident.process.stdout as { unref?: () => void } | null)?.unref?.();
  (resident.process.stderr as { unref?: () => void } | null)?.unref?.();
  idle.push(resident);
}

function take(): ResidentChild {
  let resident: ResidentChild | undefined;
  while ((resident = idle.pop()) && !alive(resident));
  resident ??= forkChild();
  resident.process.ref();
  (resident.process.channel as { ref?: () => void } | undefined)?.ref?.();
  (resident.process.stdout as { ref?: () => void } | null)?.ref?.();
  (resident.process.stderr as { ref?: () => void } | null)?.ref?.();
  return resident;
}

/** Process ids of the idle children (for tests and diagnostics). */
export function idleSynthesisChildren(): number[] {
  return idle.filter(alive).map((c) => c.process.pid!);
}

/** Starts an idle child ahead of the first request (a worker calls this when it starts). */
export function prewarmSynthesisChild(): void {
  if (!existsSync(CHILD) || idle.some(alive)) return;
  park(forkChild());
}

export function synthesizeInChild(options: ChildSynthesisOptions): Promise<ChildSynthesisResult> {
  if (!existsSync(CHILD)) {
    const r = synthesize({ root: options.root, outdir: options.outdir, select: options.select, registry: options.registry });
    return Promise.resolve({ outdir: r.outdir, stacks: r.stacks.tenants.map((s) => s.node.id), warnings: r.warnings.length, isolated: false });
  }
  const resident = take();
  const child = resident.process;
  const id = nextId++;
  return new Promise<ChildSynthesisResult>((resolve, reject) => {
    const onMessage = (m: ChildMessage) => {
      if (m.id !== id) return;
      done();
      resident.served++;
      if (resident.served < MAX_REQUESTS_PER_CHILD && idle.length < MAX_IDLE_CHILDREN && alive(resident)) park(resident);
      else child.disconnect();
      if (m.ok) resolve({ outdir: m.outdir, stacks: m.stacks, warnings: m.warnings, isolated: true, pid: child.pid });
      else reject(new Error(m.error));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      const tail = resident.tail.trim();
      reject(new Error(`synthesis of ${options.select}: its child process ended (${code ?? signal}) without a result${tail ? `:\n${tail}` : ''}`));
    };
    const onError = (e: Error) => {
      done();
      child.kill('SIGKILL');
      reject(new Error(`synthesis of ${options.select}: cannot use its child process: ${e.message}`));
    };
    const done = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
    const request: ChildRequest = { id, root: options.root, outdir: options.outdir, select: options.select, registry: options.registry };
    child.send(request, (e) => {
      if (e) onError(e);
    });
  });
}
