// The cdktf app (cdktf.json "app"): `npx cdktf synth|diff|deploy` runs this.
import { synthesize } from './lib/app/synthesize';
import { reportFailure } from './lib/app/report-failure';
import { printPolicyNotes } from './lib/policy/print';

try {
  printPolicyNotes(synthesize().stacks);
} catch (e) {
  process.exitCode = reportFailure(e);
}
