/**
 * The resident child process of synthesize-in-child.ts: loads cdktf and the constructs once, then
 * answers synthesis requests over IPC, one at a time, each tagged with its id. Exits when its
 * parent (the worker) goes away or disconnects it.
 */
import { synthesize } from '../app/synthesize';
import type { ChildMessage, ChildRequest } from './synthesize-in-child';

process.once('disconnect', () => process.exit(0));
process.on('message', (request: ChildRequest) => {
  let answer: ChildMessage;
  try {
    const r = synthesize({ root: request.root, outdir: request.outdir, select: request.select, registry: request.registry });
    answer = { id: request.id, ok: true, outdir: r.outdir, stacks: r.stacks.tenants.map((s) => s.node.id), warnings: r.warnings.length };
  } catch (e) {
    answer = { id: request.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.send!(answer);
});
