// Child process of the synth benchmark for the library: the real path, synthesize() from
// lib/app (registry load + validation + stacks + policy aspects + synth + atomic outdir).
// `node dist/bench/run-library.js <root> <outdir> [select]`
import { synthesize } from '../lib/app/synthesize';
import { reportChildResult } from './child-result';

const [root, outdir, select] = process.argv.slice(2);
if (!root || !outdir) throw new Error('usage: run-library.js <root> <outdir> [select]');
const { stacks } = synthesize({ root, outdir, select });
reportChildResult(stacks.platform.length + stacks.tenants.length);
