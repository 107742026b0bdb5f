/**
 * The child process of synthesize-in-child.ts: receives one synthesis request over IPC, runs it,
 * answers and exits. Exits at once when its parent (the worker) goes away.
 */
import { synthesize } from '../app/synthesize';
import type { ChildMessage, ChildSynthesisOptions } from './synthesize-in-child';

process.once('disconnect', () => process.exit(1));
process.once('message', (request: ChildSynthesisOptions) => {
  let answer: ChildMessage;
  try {
    const r = synthesize({ root: request.root, outdir: request.outdir, select: request.select, registry: request.registry });
    answer = { ok: true, outdir: r.outdir, stacks: r.stacks.tenants.map((s) => s.node.id), warnings: r.warnings.length };
  } catch (e) {
    answer = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.send!(answer, () => process.exit(answer.ok ? 0 : 1));
});
