import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from '../../lib/app/synthesize';
import { registerPostApplyCommand } from '../../lib/cli/post-apply-command';
import { recordDeployedStacks } from '../../lib/fleet/applied-stacks';
import { planFleet } from '../../lib/fleet/plan';
import { readStackArtifact } from '../../lib/fleet/stack-artifact';
import { submitOffboarding } from '../../lib/offboarding/submit';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { runCommand } from '../support/cli';
import { useLifecycleTestbed } from '../support/lifecycle';

/**
 * Where the fleet's record of applied stacks comes from: the onboarding deploy step (the real
 * step, local deploy mode, on the lifecycle testbed), `tenancy post-apply` after a hand-run
 * `cdktf deploy` (reading the synthesized output), and offboarding's destroy.
 */
const bed = useLifecycleTestbed({ git: true });
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
let services: LifecycleServices;
let tenant: { id: string; slug: string; jobId: string };
let scratch: string;

beforeAll(async () => {
  services = bed().track(await bed().open(), (s) => s.close());
  scratch = mkdtempSync(join(tmpdir(), 'tenancy-fleet-record-'));
  const submitted = await submitOnboarding(services, noQueue, { email: 'ops@recorded.example', company: 'Recorded Co', slug: 'recorded', plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });
  const run = await runLifecycleJob(services, submitted.job.id);
  if (run.outcome !== 'succeeded') throw new Error(`onboarding: ${run.error}`);
  tenant = { id: submitted.tenantId, slug: submitted.slug, jobId: submitted.job.id };
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const appliedRow = async (stack: string) =>
  (await cp('SELECT kind, tenant_id::text AS "tenantId", content_hash AS "contentHash", library_version AS "libraryVersion", applied_by AS "appliedBy", destroyed_at AS "destroyedAt" FROM tenancy.applied_stacks WHERE stack = $1', [stack]))[0];

test('the onboarding deploy step records the applied stack\'s content hash: a plan of the same registry finds it unchanged', async () => {
  const row = await appliedRow('tenant-recorded');
  expect(row).toMatchObject({ kind: 'tenant', tenantId: tenant.id, contentHash: expect.stringMatching(/^[0-9a-f]{64}$/), destroyedAt: null });
  expect(row.appliedBy).toContain(`onboarding job ${tenant.jobId}`);
  // The same stack synthesized independently, with the whole fleet: the same content.
  const outdir = join(scratch, 'full.out');
  synthesize({ root: bed().root, outdir, select: '*' });
  expect(readStackArtifact(outdir, 'tenant-recorded').contentHash).toBe(row.contentHash);
  const plan = await planFleet({ db: services.pool, outdir });
  expect(plan.stacks.map((s) => [s.stack, s.change])).toEqual([['platform-us-east-1', 'new'], ['tenant-recorded', 'unchanged']]);
});

test('tenancy post-apply records the stacks a hand-run deploy applied, read from the synthesized output', async () => {
  const outdir = join(bed().root, 'cdktf.out');
  synthesize({ root: bed().root, outdir, select: '*' });
  const deployed = (await services.store.steps(tenant.jobId)).find((s) => s.step === 'deploy')!.result.outputs;
  const outputsFile = join(scratch, 'tenant-outputs.json');
  writeFileSync(outputsFile, JSON.stringify({ 'tenant-recorded': deployed }));
  const run = await runCommand(registerPostApplyCommand, [
    'post-apply', '--json', '--outputs', outputsFile, '--outputs', bed().platformOutputsFile, '--registry', bed().root,
    '--control-plane-url', bed().controlPlaneUrl, '--secrets-file', bed().secretsFile, '--ssl-ca', bed().pg.tls!.caFile,
  ], { env: bed().childEnv({ TENANCY_ACTOR: 'hand-run-pipeline' }) });
  const lines = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  expect(run.stderr).toBe('');
  expect(lines.filter((l) => l.type === 'applied-stack').map((l) => l.stack).sort()).toEqual(['platform-us-east-1', 'tenant-recorded']);
  expect(await appliedRow('platform-us-east-1')).toMatchObject({ kind: 'platform', tenantId: null, appliedBy: 'hand-run-pipeline', contentHash: readStackArtifact(outdir, 'platform-us-east-1').contentHash });
  expect(run.code).toBe(0);
  const plan = await planFleet({ db: services.pool, outdir });
  expect(plan.summary).toEqual({ new: 0, changed: 0, unchanged: 2, removed: 0 });
});

test('a synthesized stack of another tenant than the deploy\'s outputs is not recorded, and said so', async () => {
  const before = await appliedRow('tenant-recorded');
  const result = await recordDeployedStacks(services.pool, join(bed().root, 'cdktf.out'), [{ stack: 'tenant-recorded', tenantId: '00000000-0000-4000-8000-00000000abcd' }, { stack: 'tenant-nowhere', tenantId: '00000000-0000-4000-8000-00000000abce' }], 'test');
  expect(result.recorded).toEqual([]);
  expect(result.skipped.map((s) => s.stack)).toEqual(['tenant-recorded', 'tenant-nowhere']);
  expect(result.skipped[0].reason).toMatch(/not the stack that was deployed/);
  expect(result.skipped[1].reason).toMatch(/tenant-nowhere.*does not exist/);
  expect(await appliedRow('tenant-recorded')).toEqual(before);
});

test('offboarding marks the destroyed stack: it is not listed as removed', async () => {
  const submitted = await submitOffboarding(services, noQueue, 'recorded', { reason: 'test' });
  const run = await runLifecycleJob(services, submitted.job.id);
  expect(run.outcome).toBe('succeeded');
  expect((await appliedRow('tenant-recorded')).destroyedAt).toBeInstanceOf(Date);
  const outdir = join(scratch, 'after.out');
  synthesize({ root: bed().root, outdir, select: '*' });
  const plan = await planFleet({ db: services.pool, outdir });
  expect(plan.stacks.map((s) => [s.stack, s.change])).toEqual([['platform-us-east-1', 'unchanged']]);
});
