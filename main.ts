// The cdktf app (cdktf.json "app"): `npx cdktf synth|diff|deploy` runs this.
import { synthesizeParallel } from './lib/app/synthesize-parallel';
import { reportFailure } from './lib/app/report-failure';
import { printPolicyNoteLines } from './lib/policy/print';

synthesizeParallel().then(
  (result) => printPolicyNoteLines(result.policyNotes),
  (e: unknown) => {
    process.exitCode = reportFailure(e);
  },
);
