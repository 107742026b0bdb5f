// Child process of the synth benchmark for the parallel mode: synthesizeParallel() from lib/app
// with an explicit process count (registry load and validation here, the stacks in that many
// processes, merged into one atomic outdir).
// `node dist/bench/run-library-parallel.js <root> <outdir> <processes>`
import { synthesizeParallel } from '../lib/app/synthesize-parallel';
import { reportChildResult } from './child-result';

const [root, outdir, processes] = process.argv.slice(2);
if (!root || !outdir || !processes) throw new Error('usage: run-library-parallel.js <root> <outdir> <processes>');
void synthesizeParallel({ root, outdir, processes: Number(processes) }).then((r) => {
  if (r.processes !== Number(processes)) throw new Error(`synthesized in ${r.processes} processes, not ${processes}`);
  reportChildResult(r.platformStacks.length + r.tenantStacks.size);
});
