import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { PolicyViolationError } from '../policy/policy-gate';
import { policyNoteLines } from '../policy/print';
import type { PolicyFinding } from '../policy/policy-rule';
import { loadRegistry, type Registry } from '../registry/load-registry';
import { selectStacks, type Selection } from '../../stacks/select-tenants';
import { commitStaged, discardStaged, stagingDir } from './atomic-outdir';
import { SliceOutputs } from './slice-outputs';
import { leaveOrphansToCli, outdirOf, selectorOf, synthesize, type SynthesizeOptions } from './synthesize';

/**
 * Synthesis on every core: the tenant stacks are cut into slices, synthesized by several
 * processes, each slice into its own directory, and merged into one output identical byte for
 * byte to what synthesize() writes in one process (lib/app/slice-outputs.ts). The output is
 * swapped in only when every slice succeeded, as synthesize() does: a failed slice, a process that
 * dies or a policy error leaves the previous output untouched, and no staging directory.
 *
 * - The registry is loaded and validated once, here, and sent to each process over IPC (V8
 *   serialization: ~30 ms for 10,000 tenants, where loading it again would cost each process
 *   seconds). The processes are started before the registry loads, so that their own start-up
 *   (Node, cdktf, the provider bindings) overlaps it.
 * - Slices are handed out from a queue, two ahead per process, so a process slowed by other load
 *   on the machine takes fewer of them. The platform stacks are in the first slice, once.
 * - A policy error in one slice does not stop the others: as in one process, the error lists
 *   every finding of every stack, in the same order. Any other failure stops everything; the
 *   error names the stack that fails (tried alone) or the slice's stacks.
 * - Small registries and selections (one tenant: the onboarding pipeline) stay in this process,
 *   where starting processes would cost more than it saves. So does a run from the TypeScript
 *   sources (ts-jest), where there is no compiled synthesize-slice-child.js to start.
 */
export interface ParallelSynthesizeOptions extends SynthesizeOptions {
  /**
   * Processes to synthesize in; 1 synthesizes in this process (as synthesize()). An explicit
   * count (here or in $TENANCY_SYNTH_PROCESSES) is used for any selection of two stacks or more;
   * the automatic one only from {@link PARALLEL_MIN_TENANTS} tenant stacks.
   * @default $TENANCY_SYNTH_PROCESSES, else os.availableParallelism()
   */
  readonly processes?: number;
  /** Told when the registry is loaded and as slices finish, for a progress display (lib/app/progress.ts). */
  readonly onProgress?: (progress: SynthesisProgress) => void;
}

/** How far a synthesis is. */
export type SynthesisProgress =
  | { readonly kind: 'registry'; readonly tenants: number; readonly selectedTenants: number; readonly processes: number }
  | { readonly kind: 'slices'; readonly done: number; readonly total: number };

export interface SynthesisOutcome {
  readonly registry: Registry;
  readonly selection: Selection;
  readonly outdir: string;
  /** Ids of the platform stacks written. */
  readonly platformStacks: readonly string[];
  /** Stack id of each tenant stack written, by slug. */
  readonly tenantStacks: ReadonlyMap<string, string>;
  /** Policy warnings (errors fail the synth instead). */
  readonly warnings: readonly PolicyFinding[];
  /** Policy warnings and suppressed findings, one line each, in stack order (printPolicyNoteLines). */
  readonly policyNotes: readonly string[];
  /** Processes the stacks were synthesized in (1: this process). */
  readonly processes: number;
}

/** Environment variable with the number of synthesis processes (1: one process, as before). */
export const SYNTH_PROCESSES_ENV = 'TENANCY_SYNTH_PROCESSES';
/**
 * Fewer tenant stacks than this stay in one process unless a process count is given: below it,
 * starting the processes (each loads cdktf and warms up its own JIT) costs what they save.
 * Measured on 2 cores, quiet machine, one process vs two: 200 tenants 3.2 vs 3.5 s, 400 tenants
 * 5.3 vs 5.3 s, 1,000 tenants 10.4 vs 8.5 s (docs/BENCHMARKS.md, "Synth").
 */
export const PARALLEL_MIN_TENANTS = 500;
/** Slices per process: enough for a process slowed by other load on the machine to take fewer. */
const SLICES_PER_PROCESS = 8;
/** Tenants per slice at most (the size of a slice bounds a process's memory, not its speed). */
const MAX_SLICE = 250;
/** Slices sent to a process ahead of the one it works on, so it never waits for the next. */
const IN_FLIGHT_PER_PROCESS = 2;

const CHILD = join(__dirname, 'synthesize-slice-child.js');

// Messages between this process and synthesize-slice-child.ts.
export interface SliceRequest {
  readonly type: 'slice';
  readonly index: number;
  readonly outdir: string;
  readonly platformRegions: readonly string[];
  readonly slugs: readonly string[];
}
export type ToSliceChild = { readonly type: 'registry'; readonly registry: Registry } | SliceRequest;
export interface SliceResult {
  readonly type: 'done';
  readonly index: number;
  readonly platformStacks: string[];
  readonly tenantStacks: [slug: string, stack: string][];
  readonly warnings: PolicyFinding[];
  readonly notes: string[];
}
export interface SliceFailure {
  readonly type: 'failed';
  readonly index: number;
  readonly message: string;
  /** A policy error's findings. */
  readonly findings?: PolicyFinding[];
  /** The stack that fails on its own, when one does. */
  readonly culprit?: string;
}

/**
 * Synthesizes like synthesize(), in several processes when the selection is large enough (see
 * {@link ParallelSynthesizeOptions.processes}).
 */
export async function synthesizeParallel(options: ParallelSynthesizeOptions = {}): Promise<SynthesisOutcome> {
  const root = resolve(options.root ?? process.cwd());
  const selector = selectorOf(options);
  const requested = requestedProcesses(options.processes);
  const fullSelection = (selector ?? '').trim() === '' || selector!.trim() === '*';

  // Start the processes before the registry loads when it will most likely be needed: a full
  // synth of a registry with enough tenant files.
  let pool: SlicePool | undefined;
  const early = !options.registry && fullSelection && existsSync(CHILD) ? processesFor(tenantFileCount(root), requested) : 1;
  if (early > 1) pool = new SlicePool(early);
  let registry: Registry;
  let selection: Selection;
  try {
    registry = options.registry ?? loadRegistry({ root });
    selection = selectStacks(registry, selector);
  } catch (e) {
    await pool?.stop();
    throw e;
  }

  const processes = existsSync(CHILD) ? processesFor(selection.tenants.length, requested) : 1;
  options.onProgress?.({ kind: 'registry', tenants: registry.tenants.length, selectedTenants: selection.tenants.length, processes });
  if (processes <= 1) {
    await pool?.stop();
    const r = synthesize({ ...options, root, registry });
    return {
      registry, selection, outdir: r.outdir,
      platformStacks: r.stacks.platform.map((s) => s.node.id),
      tenantStacks: new Map(r.stacks.tenants.map((s) => [s.tenant.slug, s.node.id])),
      warnings: r.warnings, policyNotes: policyNoteLines(r.stacks), processes: 1,
    };
  }
  pool ??= new SlicePool(processes);
  const outdir = outdirOf(root, options);
  return pool.synthesize(registry, selection, outdir, leaveOrphansToCli(options), options.onProgress);
}

function requestedProcesses(option: number | undefined): { count: number; explicit: boolean } {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 1) throw new Error(`processes must be a positive integer, got ${option}`);
    return { count: option, explicit: true };
  }
  const raw = process.env[SYNTH_PROCESSES_ENV];
  if (raw !== undefined && raw !== '') {
    if (!/^[1-9][0-9]*$/.test(raw)) throw new Error(`${SYNTH_PROCESSES_ENV} must be a positive integer, got ${JSON.stringify(raw)}`);
    return { count: Number(raw), explicit: true };
  }
  return { count: availableParallelism(), explicit: false };
}

/** The processes to use for `tenants` tenant stacks. */
function processesFor(tenants: number, requested: { count: number; explicit: boolean }): number {
  if (requested.count <= 1 || tenants < 2) return 1;
  if (!requested.explicit && tenants < PARALLEL_MIN_TENANTS) return 1;
  return Math.min(requested.count, tenants);
}

/** Tenant files in <root>/tenants: what the registry will hold, before it is loaded. */
function tenantFileCount(root: string): number {
  try {
    return readdirSync(join(root, 'tenants')).filter((n) => n.endsWith('.yaml') && !n.endsWith('.values.yaml')).length;
  } catch {
    return 0;
  }
}

/** Contiguous slices of the selection, in stack order; the platform stacks go with the first. */
function slicesOf(selection: Selection, processes: number): { platformRegions: readonly string[]; slugs: string[] }[] {
  const size = Math.min(MAX_SLICE, Math.ceil(selection.tenants.length / (processes * SLICES_PER_PROCESS)));
  const slices: { platformRegions: readonly string[]; slugs: string[] }[] = [];
  for (let i = 0; i < selection.tenants.length; i += size) {
    slices.push({ platformRegions: i === 0 ? selection.platformRegions : [], slugs: selection.tenants.slice(i, i + size).map((t) => t.slug) });
  }
  return slices;
}

const describeSlice = (slugs: readonly string[], platformRegions: readonly string[]) =>
  [platformRegions.length ? `the platform stacks of ${platformRegions.join(', ')}` : '', slugs.length ? `tenants ${slugs[0]} to ${slugs[slugs.length - 1]} (${slugs.length})` : '']
    .filter(Boolean)
    .join(' and ');

interface SliceProcess {
  readonly child: ChildProcess;
  /** Slices sent and not answered, oldest first. */
  readonly inFlight: number[];
  readonly exited: Promise<void>;
  /** The last output, for the error when it dies. */
  tail: string;
  /** Why a message to it could not be sent, if one could not: told with its exit. */
  unreachable?: string;
}

/** The synthesis processes of one parallel synthesis. */
class SlicePool {
  private readonly processes: SliceProcess[] = [];
  private stopping = false;

  constructor(count: number) {
    for (let i = 0; i < count; i++) this.processes.push(this.start());
  }

  private start(): SliceProcess {
    const child = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const p: SliceProcess = { child, inFlight: [], exited, tail: '' };
    // Their output is the synthesis's output (cdktf warnings); kept too, for the error when one dies.
    const forward = (to: NodeJS.WriteStream) => (c: Buffer) => {
      to.write(c);
      p.tail = (p.tail + String(c)).slice(-4000);
    };
    child.stdout!.on('data', forward(process.stdout));
    child.stderr!.on('data', forward(process.stderr));
    child.on('error', () => undefined); // reported through 'exit' or a failed send
    return p;
  }

  /** Ends the processes and waits until they have exited (none writes into the output any more). */
  async stop(kill = false): Promise<void> {
    this.stopping = true;
    for (const { child } of this.processes) {
      if (kill) child.kill('SIGKILL');
      else if (child.connected) child.disconnect();
    }
    await Promise.all(this.processes.map((p) => p.exited));
  }

  async synthesize(
    registry: Registry, selection: Selection, outdir: string, leaveOrphans: boolean, onProgress?: (progress: SynthesisProgress) => void,
  ): Promise<SynthesisOutcome> {
    const slices = slicesOf(selection, this.processes.length);
    const staged = stagingDir(outdir);
    const merged = new SliceOutputs(staged);
    const results: SliceResult[] = [];
    const policyFindings: PolicyFinding[][] = [];
    let next = 0;
    let pending = slices.length;

    try {
      await new Promise<void>((resolveAll, rejectAll) => {
        let failed = false;
        const fail = (e: Error) => {
          if (failed) return;
          failed = true;
          rejectAll(e);
        };
        const sliceDir = (index: number) => join(staged, `.slice-${index}`);
        // A send fails when the process is dying (EPIPE): its exit, which follows, is the report that
        // names the slices it held and how it ended. Ending it makes sure that exit comes.
        const unreachable = (p: SliceProcess, e: Error) => {
          p.unreachable ??= e.message;
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        };
        const send = (p: SliceProcess) => {
          while (!failed && p.inFlight.length < IN_FLIGHT_PER_PROCESS && next < slices.length) {
            const index = next++;
            try {
              mkdirSync(sliceDir(index));
            } catch (e) {
              fail(e as Error);
              return;
            }
            p.inFlight.push(index);
            const request: SliceRequest = { type: 'slice', index, outdir: sliceDir(index), ...slices[index] };
            p.child.send(request, (e) => e && unreachable(p, e));
          }
        };
        for (const p of this.processes) {
          p.child.on('message', (m: SliceResult | SliceFailure) => {
            if (failed) return;
            p.inFlight.splice(p.inFlight.indexOf(m.index), 1);
            const { slugs, platformRegions } = slices[m.index];
            if (m.type === 'done') {
              try {
                merged.absorb(sliceDir(m.index));
              } catch (e) {
                fail(e as Error);
                return;
              }
              results[m.index] = m;
            } else if (m.findings) {
              policyFindings[m.index] = m.findings;
            } else {
              const where = m.culprit ?? describeSlice(slugs, platformRegions);
              fail(new Error(`synthesis of ${where} failed: ${m.message}`));
              return;
            }
            onProgress?.({ kind: 'slices', done: slices.length - pending + 1, total: slices.length });
            if (--pending === 0) resolveAll();
            else send(p);
          });
          p.child.once('exit', (code, signal) => {
            if (this.stopping || failed) return;
            const held = p.inFlight.map((i) => describeSlice(slices[i].slugs, slices[i].platformRegions));
            const tail = p.tail.trim();
            fail(new Error(
              `synthesis ${held.length ? `of ${held.join('; ')} ` : ''}failed: its process ${p.child.pid} ended (${signal ?? `exit code ${code}`}) without a result` +
                (p.unreachable ? ` (it could not be reached: ${p.unreachable})` : '') +
                (tail ? `:\n${tail}` : ''),
            ));
          });
          p.child.send({ type: 'registry', registry } satisfies ToSliceChild, (e) => e && unreachable(p, e));
          send(p);
        }
      });
      if (policyFindings.some(Boolean)) throw new PolicyViolationError(policyFindings.flat());
      merged.finish();
      commitStaged(staged, outdir, leaveOrphans);
    } catch (e) {
      await this.stop(true);
      discardStaged(staged);
      throw e;
    }
    await this.stop();
    return {
      registry, selection, outdir,
      platformStacks: results.flatMap((r) => r.platformStacks),
      tenantStacks: new Map(results.flatMap((r) => r.tenantStacks)),
      warnings: results.flatMap((r) => r.warnings),
      policyNotes: results.flatMap((r) => r.notes),
      processes: this.processes.length,
    };
  }
}
