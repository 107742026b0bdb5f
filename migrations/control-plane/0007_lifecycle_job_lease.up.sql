-- A running lifecycle job's lease (issue 12): the worker running an attempt extends it while it
-- lives (every lock renewal, lib/onboarding/job-runner.ts). A job `running` whose lease lapsed has
-- lost its worker (killed, or cut off): `tenancy status` shows it `stalled`, never `running`, until
-- the queue hands it to another worker, which resumes it at its first unrecorded step.
ALTER TABLE tenancy.lifecycle_jobs ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE tenancy.lifecycle_jobs ADD COLUMN worker text;
