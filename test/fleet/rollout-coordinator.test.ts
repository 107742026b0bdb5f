import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Pool } from 'pg';
import { parse, stringify } from 'yaml';
import { writeRegistry } from '../../bench/generate-registry';
import { synthesize } from '../../lib/app/synthesize';
import { appliedContentOf, recordAppliedStack } from '../../lib/fleet/applied-stacks';
import { planFleet } from '../../lib/fleet/plan';
import { deployFleet, planRollout, resumeRollout, RolloutLockedError, type RolloutSettings } from '../../lib/fleet/rollout';
import { artifactStore, rolloutArtifactLocation } from '../../lib/fleet/rollout-artifacts';
import { ROLLOUT_QUEUE, type RolloutJobData } from '../../lib/fleet/rollout-queue';
import { rolloutById, rolloutLockHolder, rolloutStacks, runningRollout, RolloutConflictError } from '../../lib/fleet/rollout-store';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { redisOptionsFromUrl } from '../../lib/onboarding/queue';
import { loadRegistry, type Registry } from '../../lib/registry/load-registry';
import { FixtureProject } from '../support/fixture-project';
import { LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY, useLocalAws } from '../support/moto';
import { repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';
import { useRedis } from '../support/redis';
import { CLI, until } from '../support/worker-process';

/**
 * The rollout coordinator (lib/fleet/rollout.ts) against a real control plane (migrated with 0012,
 * used by a role that is only a member of tenancy_control_plane), real Redis/BullMQ and the
 * artifacts in a moto S3 bucket, on a generated 40-tenant registry synthesized for real.
 *
 * The queue is consumed here by a stand-in worker: a BullMQ Worker whose processor makes the row
 * transitions of the rollout contract (queued → applying → applied with the content recorded, or
 * → failed) without Terraform. On purpose: this file is about the coordinator's ordering, its
 * parallel cap, thresholds, resume and locking; the real terraform worker is covered by
 * test/fleet/rollout-worker*.test.ts and the acceptance test. Failure injection = the stand-in
 * failing a chosen stack.
 */
jest.setTimeout(10 * 60_000);

const aws = useLocalAws();
const pg = usePostgres();
const redis = useRedis();
const MASTER = { user: 'rollout_master', password: 'rollout-master-pw (test only)' };
const RUNTIME = { user: 'rollout_runtime', password: 'rollout-runtime-pw (test only)' };

let master: Pool;
let pool: Pool;
let root: string;
let outdir: string;
let registry: Registry;
let awsEnv: NodeJS.ProcessEnv;
/** Live tenants by model, for canary choices. */
let live: { slug: string; model: string }[];

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createRole(RUNTIME.user, { password: RUNTIME.password });
  await pg().createDatabase('control_plane', { owner: MASTER.user });
  const run = await migrateTargets({
    targets: [controlPlaneTarget({ connection: pg().clientConfig({ ...MASTER, database: 'control_plane' }) })],
    migrations: loadMigrationSets(join(repoRoot(), 'migrations')),
  });
  const failed = run.results.filter((r) => r.error);
  if (failed.length) throw new Error(`control-plane migration failed: ${failed.map((r) => r.error).join('; ')}`);
  await pg().query(`GRANT tenancy_control_plane TO ${RUNTIME.user}`);
  master = new Pool({ ...pg().clientConfig({ ...MASTER, database: 'control_plane' }), max: 1 });
  pool = new Pool({ ...pg().clientConfig({ ...RUNTIME, database: 'control_plane' }), max: 6 });
  for (const p of [master, pool]) p.on('error', () => undefined);

  // A generated registry with S3 state in the moto bucket (the artifacts go beside it), AWS side only.
  const base = FixtureProject.empty();
  const platform = parse(readFileSync(join(base.root, 'platform.yaml'), 'utf8'));
  base.remove();
  root = mkdtempSync(join(tmpdir(), 'tenancy-rollout-'));
  const platformFile = join(root, 'platform.base.yaml');
  writeFileSync(platformFile, stringify({
    ...platform,
    kubernetes: { ...platform.kubernetes, enabled: false },
    state: { backend: 's3', bucket: aws().stateBucket, region: 'us-east-1', keyPrefix: `rollout-coordinator-${process.pid}` },
  }));
  writeRegistry(root, 40, platformFile);
  registry = loadRegistry({ root });
  live = registry.tenants.filter((t) => t.status !== 'offboarded').map((t) => ({ slug: t.slug, model: t.model }));
  outdir = join(root, 'cdktf.out');
  synthesize({ root, outdir, select: '*' });
  awsEnv = { AWS_ENDPOINT_URL: aws().endpoint, AWS_ACCESS_KEY_ID: LOCAL_AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: LOCAL_AWS_SECRET_ACCESS_KEY, AWS_REGION: 'us-east-1' };
});

afterAll(async () => {
  await pool?.end();
  await master?.end();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every scenario starts from a fleet never deployed: no rollout, nothing applied (the master role owns the tables). */
beforeEach(async () => {
  await master.query('DELETE FROM tenancy.rollout_stacks; DELETE FROM tenancy.rollouts; DELETE FROM tenancy.applied_stacks');
});

let queues = 0;
const connection = () => redisOptionsFromUrl(redis().url);

interface Claim {
  readonly rolloutId: string;
  readonly stack: string;
  readonly wave: number;
  /** Rows of the rollout queued or applying when this stack was claimed (itself included). */
  readonly inFlight: number;
}

/**
 * The stand-in worker: the rollout contract's row transitions, no Terraform. `hold` keeps a
 * claimed stack from finishing until the returned promise resolves; `failing` stacks end failed.
 */
class StandInWorker {
  readonly claims: Claim[] = [];
  readonly failing = new Set<string>();
  hold?: (claim: Claim) => Promise<void> | undefined;
  private readonly db = new Pool({ ...pg().clientConfig({ ...RUNTIME, database: 'control_plane' }), max: 10 });
  readonly worker: Worker<RolloutJobData>;

  constructor(readonly queueName: string) {
    this.db.on('error', () => undefined);
    this.worker = new Worker<RolloutJobData>(queueName, (job) => this.process(job), { connection: connection(), concurrency: 8 });
    this.worker.on('error', () => undefined);
  }

  get maxInFlight(): number {
    return Math.max(0, ...this.claims.map((c) => c.inFlight));
  }

  private async process(job: Job<RolloutJobData>): Promise<void> {
    const { rolloutId, stack } = job.data;
    const round = Number(/\.(\d+)$/.exec(job.id!)![1]);
    const claimed = await this.db.query(
      `UPDATE tenancy.rollout_stacks SET status = 'applying', attempts = attempts + 1, worker = $3, started_at = now(), error = NULL
        WHERE rollout_id = $1 AND stack = $2 AND round = $4 AND status IN ('queued', 'applying') RETURNING wave`,
      [rolloutId, stack, `stand-in:${process.pid}`, round],
    );
    if (claimed.rowCount === 0) return; // applied already, or a job of an earlier round: a duplicate does nothing
    const { rows } = await this.db.query(`SELECT count(*)::int AS n FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND status IN ('queued', 'applying')`, [rolloutId]);
    const claim = { rolloutId, stack, wave: claimed.rows[0].wave, inFlight: rows[0].n };
    this.claims.push(claim);
    await this.hold?.(claim);
    if (this.failing.has(stack)) {
      await this.db.query(`UPDATE tenancy.rollout_stacks SET status = 'failed', error = 'injected failure', finished_at = now() WHERE rollout_id = $1 AND stack = $2`, [rolloutId, stack]);
      throw new UnrecoverableError('injected failure');
    }
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      const row = (await client.query(
        `UPDATE tenancy.rollout_stacks SET status = 'applied', finished_at = now() WHERE rollout_id = $1 AND stack = $2
          RETURNING stack, kind, tenant_id::text AS "tenantId", content_hash AS "contentHash", components, library_version AS "libraryVersion",
                    fleet_tenants AS "fleetTenants", file_hash AS "fileHash"`,
        [rolloutId, stack],
      )).rows[0];
      await recordAppliedStack(client, appliedContentOf(row), 'stand-in worker');
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK');
      throw e;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.db.end();
  }
}

/** A stand-in worker on a queue of its own; closed after `fn`. */
async function withWorker<T>(fn: (w: StandInWorker, queueName: string) => Promise<T>, queueName = `rollout-test-${++queues}`): Promise<T> {
  const w = new StandInWorker(queueName);
  await w.worker.waitUntilReady();
  try {
    return await fn(w, queueName);
  } finally {
    await w.close();
  }
}

const SETTINGS: RolloutSettings = { percents: [10, 50, 100], parallel: 3, maxFailures: { count: 0 } };

async function deploy(queueName: string, settings: RolloutSettings = SETTINGS, extra: { canary?: string[]; registry?: Registry } = {}) {
  const plan = await planFleet({ db: pool, root, outdir });
  const rollout = planRollout({ plan, registry: extra.registry ?? registry, settings, canary: extra.canary });
  return deployFleet({
    db: pool, connection: connection(), queueName, rollout, settings, outdir, createdBy: 'rollout-coordinator-test',
    artifactLocation: (id) => rolloutArtifactLocation(registry.platform.state, id), artifactStore: (location) => artifactStore(location, awsEnv),
  });
}

const statuses = async (rolloutId: string) => Object.fromEntries((await rolloutStacks(pool, rolloutId)).map((s) => [s.stack, s.status]));
const waveOf = async (rolloutId: string) => new Map((await rolloutStacks(pool, rolloutId)).map((s) => [s.stack, s.wave]));

test('waves in order (platform, canary, percentages), never more than `parallel` in flight, every stack applied and recorded; then nothing to deploy', async () => {
  // Canary: one marked in its registry entry, one by platform.yaml fleet.canary, one by option.
  const [marked, listed, byOption] = live.slice(0, 3).map((t) => t.slug);
  const canaryRegistry: Registry = {
    platform: { ...registry.platform, fleet: { ...registry.platform.fleet, canary: { tenants: [listed], perModel: 0 } } },
    tenants: registry.tenants.map((t) => (t.slug === marked ? { ...t, canary: true } : t)),
  };
  await withWorker(async (w, queueName) => {
    // Each claimed stack waits until the window is full (or the wave has no more to queue): the cap must be reached, never exceeded.
    w.hold = (claim) => until(async () => {
      const { rows } = await pool.query(
        `SELECT count(*) FILTER (WHERE status = 'applying')::int AS applying, count(*) FILTER (WHERE status NOT IN ('applied', 'failed'))::int AS open
           FROM tenancy.rollout_stacks WHERE rollout_id = $1 AND wave = $2`,
        [claim.rolloutId, claim.wave],
      );
      return rows[0].applying >= Math.min(SETTINGS.parallel, rows[0].open);
    }, `${claim.stack}: a full window`, 120_000, 20);
    const outcome = await deploy(queueName, SETTINGS, { canary: [byOption], registry: canaryRegistry });
    const errors = (await rolloutStacks(pool, outcome!.rolloutId)).filter((s) => s.error).map((s) => `${s.stack}: ${s.error}`);
    expect({ outcome, errors }).toMatchObject({ outcome: { status: 'finished', stopReason: null }, errors: [] });
    const rollout = (await rolloutById(pool, outcome!.rolloutId))!;
    const tenants = live.length;
    const rest = tenants - 3;
    const tenPercent = Math.ceil(rest * 0.1);
    const half = Math.ceil(rest * 0.5);
    expect(rollout.waves).toEqual([
      { index: 0, name: 'platform', size: 2 },
      { index: 1, name: 'canary', size: 3 },
      { index: 2, name: '10%', size: tenPercent },
      { index: 3, name: '50%', size: half - tenPercent },
      { index: 4, name: '100%', size: rest - half },
    ]);
    const stacks = await rolloutStacks(pool, outcome!.rolloutId);
    expect(stacks.filter((s) => s.wave === 0).map((s) => s.stack).sort()).toEqual(['platform-eu-central-1', 'platform-us-east-1']);
    expect(stacks.filter((s) => s.wave === 1).map((s) => s.stack).sort()).toEqual([marked, listed, byOption].map((s) => `tenant-${s}`).sort());
    expect(stacks.every((s) => s.status === 'applied' && s.attempts === 1)).toBe(true);

    // Claimed wave by wave: every stack of a wave after every stack of the one before ended.
    const claimed = w.claims.map((c) => c.wave);
    expect(claimed).toEqual([...claimed].sort((a, b) => a - b));
    expect(w.claims).toHaveLength(tenants + 2);
    expect(w.maxInFlight).toBe(SETTINGS.parallel);
    for (let wave = 1; wave < rollout.waves.length; wave++) {
      const started = Math.min(...stacks.filter((s) => s.wave === wave).map((s) => s.startedAt!.getTime()));
      const endedBefore = Math.max(...stacks.filter((s) => s.wave === wave - 1).map((s) => s.finishedAt!.getTime()));
      expect(started).toBeGreaterThanOrEqual(endedBefore);
    }
    // The artifact a worker fetches is the synthesized stack, verified by its hash.
    const one = stacks.find((s) => s.stack === `tenant-${marked}`)!;
    const into = mkdtempSync(join(tmpdir(), 'tenancy-rollout-fetch-'));
    try {
      await artifactStore(rollout.artifacts, awsEnv).fetch(one.artifactKey, into, one.fileHash);
      expect(readFileSync(join(into, 'cdk.tf.json'), 'utf8')).toBe(readFileSync(join(outdir, 'stacks', one.stack, 'cdk.tf.json'), 'utf8'));
    } finally {
      rmSync(into, { recursive: true, force: true });
    }
    // Recorded as applied: the fleet plan finds nothing to deploy, and a new deploy starts no rollout.
    expect((await planFleet({ db: pool, root, outdir })).summary).toMatchObject({ new: 0, changed: 0 });
    expect(await deploy(queueName)).toBeUndefined();
    expect((await pool.query('SELECT count(*)::int AS n FROM tenancy.rollouts')).rows[0].n).toBe(1);
  });
});

test('a failure in the second tenant wave stops the rollout before the third, leaving the rest pending; resume finishes it without redoing applied stacks', async () => {
  await withWorker(async (w, queueName) => {
    const settings: RolloutSettings = { percents: [5, 20, 100], parallel: 1, maxFailures: { count: 0 } };
    // Which stacks fall into which wave is stable: plan it the same way to pick the victim.
    const preview = planRollout({ plan: await planFleet({ db: pool, root, outdir }), registry, settings, canary: [live[0].slug] });
    const second = preview.waves.find((x) => x.name === '20%')!;
    expect(second.stacks.length).toBeGreaterThan(1);
    // With parallel 1 the wave's first stack (by name) goes first: once it fails, none of the others is queued.
    const victim = second.stacks.map((s) => s.stack).sort()[0];
    w.failing.add(victim);

    const outcome = await deploy(queueName, settings, { canary: [live[0].slug] });
    expect(outcome!.status).toBe('stopped');
    expect(outcome!.stopReason).toBe(`wave ${second.index} (20%): 1 of ${second.stacks.length} stacks failed, more than max-failures 0: ${victim}`);
    const id = outcome!.rolloutId;
    const rollout = (await rolloutById(pool, id))!;
    expect({ status: rollout.status, stopReason: rollout.stopReason }).toEqual({ status: 'stopped', stopReason: outcome!.stopReason });
    const waves = await waveOf(id);
    const before = await statuses(id);
    for (const [stack, status] of Object.entries(before)) {
      const wave = waves.get(stack)!;
      if (wave < second.index) expect({ stack, status }).toEqual({ stack, status: 'applied' });
      else if (stack === victim) expect(status).toBe('failed');
      else expect({ stack, status }).toEqual({ stack, status: 'pending' });
    }
    expect((await rolloutStacks(pool, id)).find((s) => s.stack === victim)).toMatchObject({ error: 'injected failure', attempts: 1 });
    expect(w.claims.filter((c) => c.wave > second.index)).toEqual([]);

    // The fix, then resume: the failed stack and the waves after it, and nothing applied before.
    w.failing.clear();
    const appliedBefore = new Set(Object.entries(before).filter(([, s]) => s === 'applied').map(([stack]) => stack));
    const claimsBefore = w.claims.length;
    const resumed = await resumeRollout(id, { db: pool, connection: connection(), queueName });
    expect(resumed).toMatchObject({ status: 'finished', resumed: true });
    const again = w.claims.slice(claimsBefore).map((c) => c.stack);
    expect(again.filter((s) => appliedBefore.has(s))).toEqual([]);
    expect(new Set(again)).toEqual(new Set(Object.keys(before).filter((s) => !appliedBefore.has(s))));
    expect(again[0]).toBe(victim);
    expect(Object.values(await statuses(id)).every((s) => s === 'applied')).toBe(true);
    expect((await rolloutStacks(pool, id)).find((s) => s.stack === victim)).toMatchObject({ status: 'applied', attempts: 2, error: null });
    expect((await rolloutById(pool, id))!.status).toBe('finished');
  });
});

test('failures within the threshold (a percentage of the wave) do not stop the waves; the rollout then stops naming them, for a resume', async () => {
  await withWorker(async (w, queueName) => {
    const settings: RolloutSettings = { percents: [25, 100], parallel: 4, maxFailures: { percent: 25 } };
    const preview = planRollout({ plan: await planFleet({ db: pool, root, outdir }), registry, settings });
    const first = preview.waves.find((x) => x.name === '25%')!;
    expect(first.stacks.length).toBeGreaterThanOrEqual(4);
    const victim = first.stacks[0].stack;
    w.failing.add(victim);
    const outcome = await deploy(queueName, settings);
    const final = await statuses(outcome!.rolloutId);
    expect(Object.entries(final).filter(([, s]) => s !== 'applied')).toEqual([[victim, 'failed']]);
    expect(outcome).toMatchObject({ status: 'stopped', stopReason: `1 stack failed within the failure threshold (max-failures 25% per wave): ${victim}; tenancy fleet resume retries it` });
  });
});

test('a second rollout is refused while one runs; resume is refused while its coordinator holds the lock', async () => {
  await withWorker(async (w, queueName) => {
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    w.hold = (claim) => (claim.stack === 'platform-us-east-1' ? released : undefined);
    const first = deploy(queueName);
    try {
      await until(async () => w.claims.some((c) => c.stack === 'platform-us-east-1'), 'the first rollout applying platform-us-east-1');
      const running = (await runningRollout(pool))!;
      expect(await rolloutLockHolder(pool, running.id)).toEqual(expect.any(Number));

      const second = await deploy(queueName).then(() => undefined, (e) => e);
      expect(second).toBeInstanceOf(RolloutConflictError);
      expect(second.message).toMatch(new RegExp(`^rollout ${running.id} is running .*tenancy fleet status ${running.id}`));
      const resumed = await resumeRollout(running.id, { db: pool, connection: connection(), queueName }).then(() => undefined, (e) => e);
      expect(resumed).toBeInstanceOf(RolloutLockedError);
      expect(resumed.message).toMatch(/being run by another coordinator/);
      expect((await pool.query('SELECT count(*)::int AS n FROM tenancy.rollouts')).rows[0].n).toBe(1);
    } finally {
      release();
    }
    expect((await first)!.status).toBe('finished');
  });
});

test('a coordinator process killed mid-rollout: the rollout stays running without a coordinator; resume continues it, no stack applied twice', async () => {
  if (!existsSync(join(repoRoot(), 'dist', 'lib', 'cli', 'fleet-rollout-command.js'))) throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json` (npm test does) before this test');
  // The CLI child adds to the default rollout queue.
  await withWorker(async (w) => {
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    // Hold every tenant stack: the coordinator is killed while the first tenant wave is in flight.
    w.hold = (claim) => (claim.wave >= 1 ? released : undefined);
    const url = `postgres://${RUNTIME.user}:${encodeURIComponent(RUNTIME.password)}@${pg().host}:${pg().port}/control_plane?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;
    const child = spawn(process.execPath, [CLI, 'fleet', 'deploy', '--root', root, '--outdir', outdir, '--waves', '50,100', '--parallel', '2', '--max-failures', '0'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...awsEnv, TENANCY_CONTROL_PLANE_URL: url, TENANCY_REDIS_URL: redis().url, TENANCY_ACTOR: 'killed-coordinator' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c) => { output += String(c); });
    child.stderr!.on('data', (c) => { output += String(c); });
    const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once('exit', (code, signal) => r(signal ?? code)));
    try {
      await until(async () => w.claims.filter((c) => c.wave >= 1).length === 2 || child.exitCode !== null, 'the coordinator queued the first tenant wave');
      expect(child.exitCode).toBeNull();
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const id = (await runningRollout(pool))?.id;
    expect({ id, output }).toEqual({ id: expect.any(String), output });
    // The dead coordinator's session ends, and with it its lock: the rollout is interrupted.
    await until(async () => (await rolloutLockHolder(pool, id!)) === null, 'the killed coordinator\'s lock released');
    expect((await rolloutById(pool, id!))!.status).toBe('running');
    const inFlight = Object.entries(await statuses(id!)).filter(([, s]) => s === 'applying').map(([s]) => s);
    expect(inFlight).toHaveLength(2);

    // Resume: the two jobs still in flight are waited for, not queued again; the rest follows.
    const resumed = resumeRollout(id!, { db: pool, connection: connection() });
    await until(async () => (await rolloutLockHolder(pool, id!)) !== null, 'the resuming coordinator holds the lock');
    release();
    expect(await resumed).toMatchObject({ status: 'finished', resumed: true });
    const stacks = w.claims.filter((c) => c.rolloutId === id).map((c) => c.stack);
    expect(stacks.length).toBe(new Set(stacks).size);
    expect(stacks.length).toBe(live.length + 2);
    expect((await rolloutStacks(pool, id!)).every((s) => s.status === 'applied' && s.round === 1)).toBe(true);
  }, ROLLOUT_QUEUE.name);
});

test('the canary rule: perModel picks that many tenants of each model, the same ones on every run', () => {
  const settings: RolloutSettings = { percents: [100], parallel: 1, maxFailures: { count: 0 } };
  const ruled: Registry = { ...registry, platform: { ...registry.platform, fleet: { ...registry.platform.fleet, canary: { tenants: [], perModel: 1 } } } };
  const plan = { stacks: [], summary: { new: 0, changed: 0, unchanged: 0, removed: 0 }, outdir } as const;
  const fleetPlan = { ...plan, stacks: registry.tenants.filter((t) => t.status !== 'offboarded').map((t) => ({
    stack: `tenant-${t.slug}`, kind: 'tenant' as const, change: 'new' as const, reasons: [], tenantId: t.id, slug: t.slug, contentHash: 'a'.repeat(64), appliedHash: null, libraryVersion: '1', appliedLibraryVersion: null,
  })) };
  const once = planRollout({ plan: fleetPlan, registry: ruled, settings });
  const canary = once.waves.find((x) => x.name === 'canary')!.stacks.map((s) => s.slug);
  expect(canary.map((slug) => live.find((t) => t.slug === slug)!.model).sort()).toEqual(['bridge', 'pool', 'silo']);
  expect(planRollout({ plan: fleetPlan, registry: ruled, settings }).waves.find((x) => x.name === 'canary')!.stacks.map((s) => s.slug)).toEqual(canary);
});
