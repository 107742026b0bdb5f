import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import { Command, CommanderError } from 'commander';
import { parse } from 'yaml';
import { registerOffboardCommand } from '../../lib/cli/offboard-command';
import { countPoolTenantRows, deletionOrder } from '../../lib/offboarding/pool-erasure';
import { submitOffboarding } from '../../lib/offboarding/submit';
import { LifecycleQueue, redisOptionsFromUrl } from '../../lib/onboarding/queue';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { localCredentialsRef } from '../../lib/onboarding/stack-deployer';
import { submitOnboarding, type SubmittedOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob, startLifecycleWorker } from '../../lib/onboarding/worker';
import { runCommand } from '../support/cli';
import { MASTERS, POOL_APP_PASSWORD, useLifecycleTestbed } from '../support/lifecycle';

/**
 * Offboarding on real PostgreSQL (bridge, pool and silo tenants onboarded locally first, with
 * data), Redis, the local Stripe server: each erasure removes every row, schema or database of
 * the tenant and nothing of any other tenant (every table of every database is counted before
 * and after), and a second run is harmless.
 */
const bed = useLifecycleTestbed({ git: true });
let services: LifecycleServices;
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const tenants: Record<string, SubmittedOnboarding> = {};
const sqlName = (slug: string) => `tenant_${slug.replace(/-/g, '_')}`;
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });

async function onboard(company: string, model: 'bridge' | 'pool' | 'silo'): Promise<SubmittedOnboarding> {
  const s = await submitOnboarding(services, noQueue, { email: `admin@${company.toLowerCase().replace(/ /g, '')}.example`, company, plan: 'pro', model, region: 'us-east-1', paymentMethod: 'pm_card_visa' });
  const r = await runLifecycleJob(services, s.job.id);
  if (r.outcome !== 'succeeded') throw new Error(`onboarding ${company}: ${r.error}`);
  return s;
}

/** Two projects with two tasks each, written by the tenant's own application role. */
async function seed(s: SubmittedOnboarding, model: 'bridge' | 'pool' | 'silo'): Promise<void> {
  const rows = async (c: import('pg').Client, withTenant: boolean) => {
    for (let p = 0; p < 2; p++) {
      const project = (await c.query(`INSERT INTO projects (${withTenant ? 'tenant_id, ' : ''}id, name) VALUES (${withTenant ? `'${s.tenantId}', ` : ''}gen_random_uuid(), 'p${p}') RETURNING id`)).rows[0].id;
      for (let t = 0; t < 2; t++) await c.query(`INSERT INTO tasks (${withTenant ? 'tenant_id, ' : ''}id, project_id, title) VALUES (${withTenant ? `'${s.tenantId}', ` : ''}gen_random_uuid(), $1, 't${t}')`, [project]);
    }
  };
  if (model === 'pool') {
    const c = await bed().pg.connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: 'pool' });
    try {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [s.tenantId]);
      await rows(c, true);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    return;
  }
  const { password } = await services.localSecrets.resolve(localCredentialsRef(s.slug));
  const c = await bed().pg.connect({ user: `${sqlName(s.slug)}_app`, password, database: model === 'bridge' ? 'tenants' : sqlName(s.slug) });
  try {
    await rows(c, false);
  } finally {
    await c.end();
  }
}

/** Every table of every database of the cluster, with its row count; pool tables per tenant. */
async function census(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const databases = (await bed().pg.query("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1")).map((r) => r.datname as string);
  for (const db of databases) {
    const tables = await bed().pg.query("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2", [], db);
    for (const t of tables) {
      const q = `"${t.schemaname}"."${t.tablename}"`;
      if (db === 'pool' && t.schemaname === 'pool') {
        for (const r of await bed().pg.query(`SELECT tenant_id::text AS tenant, count(*)::int AS n FROM ${q} GROUP BY 1`, [], db)) out[`${db}:${q}:${r.tenant}`] = r.n;
      } else {
        out[`${db}:${q}`] = (await bed().pg.query(`SELECT count(*)::int AS n FROM ${q}`, [], db))[0].n;
      }
    }
  }
  return out;
}

async function offboard(s: SubmittedOnboarding) {
  const submitted = await submitOffboarding(services, noQueue, s.slug, { reason: 'test' });
  return { submitted, result: await runLifecycleJob(services, submitted.job.id) };
}

beforeAll(async () => {
  services = bed().track(await bed().open(), (x) => x.close());
  for (const [key, company, model] of [
    ['eraseBridge', 'Erase Bridge', 'bridge'], ['keepBridge', 'Keep Bridge', 'bridge'],
    ['erasePool', 'Erase Pool', 'pool'], ['keepPool', 'Keep Pool', 'pool'],
    ['eraseSilo', 'Erase Silo', 'silo'], ['keepSilo', 'Keep Silo', 'silo'],
    ['depended', 'Depended Bridge', 'bridge'],
  ] as const) {
    tenants[key] = await onboard(company, model);
    await seed(tenants[key], model);
  }
}, 600_000);

describe('bridge', () => {
  let before: Record<string, number>;
  let result: Awaited<ReturnType<typeof offboard>>['result'];
  beforeAll(async () => {
    before = await census();
    ({ result } = await offboard(tenants.eraseBridge));
  });

  test('the steps: begin, cancel billing, drop schema and role, destroy the stack, verify, registry, finalize', () => {
    expect(result).toMatchObject({ outcome: 'succeeded', ran: ['begin', 'cancel-billing', 'erase-schema', 'destroy-stack', 'verify-erasure', 'registry', 'finalize'] });
  });

  test("the schema, its tables, its migration state and the role are gone; every other table of every database is untouched", async () => {
    const after = await census();
    const schema = sqlName(tenants.eraseBridge.slug);
    const removed = Object.keys(before).filter((k) => !(k in after));
    expect(removed.sort()).toEqual([`tenants:"${schema}"."projects"`, `tenants:"${schema}"."tasks"`]);
    expect(before[`tenants:"${schema}"."tasks"`]).toBe(4);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k] && !k.startsWith('control_plane:'));
    expect(changed).toEqual(['tenants:"tenancy"."schema_migrations"']);
    expect(await bed().pg.query('SELECT count(*)::int AS n FROM tenancy.schema_migrations WHERE target = $1', [schema], 'tenants')).toEqual([{ n: 0 }]);
    expect(await bed().pg.query('SELECT rolname FROM pg_roles WHERE rolname = $1', [`${schema}_app`])).toEqual([]);
    const keep = sqlName(tenants.keepBridge.slug);
    expect(after[`tenants:"${keep}"."tasks"`]).toBe(4);
  });

  test('the control-plane record is offboarded, the audit trail kept (and grown), the subscription canceled, the event in the outbox', async () => {
    const id = tenants.eraseBridge.tenantId;
    expect(await services.controlPlane.tenantById(id)).toMatchObject({ status: 'offboarded' });
    const actions = (await bed().pg.query('SELECT action FROM tenancy.audit_log WHERE tenant_id = $1 ORDER BY id', [id], 'control_plane')).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['tenant.registered', 'onboard.succeeded', 'offboard.requested', 'offboard.step', 'offboard.succeeded']));
    const ids = (await services.controlPlane.stripeIds(id))!;
    expect((await bed().stripeClient().subscriptions.retrieve(ids.subscriptionId!)).status).toBe('canceled');
    const kept = (await services.controlPlane.stripeIds(tenants.keepBridge.tenantId))!;
    expect((await bed().stripeClient().subscriptions.retrieve(kept.subscriptionId!)).status).toBe('active');
    expect((await services.store.outbox(id)).map((e) => e.eventType)).toEqual(['tenant.created', 'tenant.offboarded']);
  });

  test('the registry entry is offboarded and archived (committed) out of tenants/: the tenant gets no stack, its slug is free (test/onboarding/slug-reuse)', () => {
    const { slug, tenantId } = tenants.eraseBridge;
    expect(existsSync(join(bed().root, 'tenants', `${slug}.yaml`))).toBe(false);
    const archive = join(bed().root, 'tenants', 'offboarded', `${slug}.${tenantId}.yaml`);
    expect(parse(readFileSync(archive, 'utf8'))).toMatchObject({ id: tenantId, status: 'offboarded' });
    expect(git('log', '-1', '--format=%s', '--', archive).trim()).toBe(`Offboard tenant ${slug}`);
  });

  test('running it again is harmless: a no-op, nothing written', async () => {
    const audit = async () => (await bed().pg.query('SELECT count(*)::int AS n FROM tenancy.audit_log', [], 'control_plane'))[0].n;
    const n = await audit();
    const census1 = await census();
    const again = await offboard(tenants.eraseBridge);
    expect(again.submitted).toMatchObject({ created: false, queued: { state: 'succeeded' } });
    expect(again.result).toMatchObject({ outcome: 'already-succeeded', ran: [] });
    expect(await audit()).toBe(n);
    expect(await census()).toEqual(census1);
  });
});

describe('pool', () => {
  let before: Record<string, number>;
  let run: { code: number; stdout: string; stderr: string };
  let worker: Worker;
  beforeAll(async () => {
    before = await census();
    // Through the CLI and the queue this time: `tenancy offboard <slug> --yes --wait`.
    worker = startLifecycleWorker(services);
    run = await cli('offboard', tenants.erasePool.slug, '--yes', '--wait', '--reason', 'contract ended');
  });
  afterAll(async () => {
    await worker.close();
  });

  test('tenancy offboard --wait prints the erasure report and exits 0', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`Erasure report: ${tenants.erasePool.slug} \\(${tenants.erasePool.tenantId}, pool\\): offboarded`));
    expect(run.stdout).toMatch(/6 rows deleted \(tasks: 4, projects: 2\)/);
    expect(run.stdout).toMatch(/0 rows left in projects, tasks, counted as pool_auditor \(bypasses RLS\)/);
  });

  test("the tenant's rows are gone from every tenant table (children first, one transaction), verified as a role that bypasses RLS; nobody else's row changed", async () => {
    const after = await census();
    const erased = Object.keys(before).filter((k) => k.endsWith(`:${tenants.erasePool.tenantId}`));
    expect(erased.sort()).toEqual([`pool:"pool"."projects":${tenants.erasePool.tenantId}`, `pool:"pool"."tasks":${tenants.erasePool.tenantId}`]);
    for (const k of erased) expect(after[k]).toBeUndefined();
    const changed = Object.keys({ ...before, ...after }).filter((k) => after[k] !== before[k] && !k.startsWith('control_plane:'));
    expect(changed.sort()).toEqual(erased.sort());
    expect(after[`pool:"pool"."tasks":${tenants.keepPool.tenantId}`]).toBe(4);
    const step = (await services.store.steps((await services.store.job(tenants.erasePool.tenantId, 'offboard'))!.id)).find((s) => s.step === 'erase-rows')!;
    expect(step.result).toMatchObject({ order: ['tasks', 'projects'], deleted: { tasks: 4, projects: 2 }, total: 6 });
  });

  test('the verification refuses a role that does not bypass RLS (it could not see every row)', async () => {
    const c = await bed().pg.connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: 'pool' });
    try {
      await expect(countPoolTenantRows(c, tenants.keepPool.tenantId)).rejects.toThrow(/does not bypass row-level security/);
    } finally {
      await c.end();
    }
  });

  test('running the command again prints the same report and exits 0', async () => {
    const again = await cli('offboard', tenants.erasePool.slug, '--yes', '--wait');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/6 rows deleted \(tasks: 4, projects: 2\)/);
  });

  test('without --yes nothing happens (exit 2); an unknown tenant is exit 2', async () => {
    expect((await cli('offboard', tenants.keepPool.slug)).code).toBe(2);
    expect(await services.store.job(tenants.keepPool.tenantId, 'offboard')).toBeUndefined();
    expect((await cli('offboard', 'no-such-tenant', '--yes')).code).toBe(2);
  });
});

describe('silo', () => {
  let before: Record<string, number>;
  let result: Awaited<ReturnType<typeof offboard>>['result'];
  beforeAll(async () => {
    before = await census();
    ({ result } = await offboard(tenants.eraseSilo));
  });

  test('final snapshot, deletion protection lifted as its own audited step, then the database and role dropped', async () => {
    expect(result).toMatchObject({ outcome: 'succeeded', ran: ['begin', 'cancel-billing', 'snapshot', 'lift-deletion-protection', 'destroy-stack', 'verify-erasure', 'registry', 'finalize'] });
    const steps = await services.store.steps(result.jobId);
    const snapshot = steps.find((s) => s.step === 'snapshot')!.result;
    expect(existsSync(String(snapshot.snapshot))).toBe(true);
    expect(Number(snapshot.bytes)).toBeGreaterThan(0);
    const audit = await bed().pg.query("SELECT details->>'step' AS step FROM tenancy.audit_log WHERE tenant_id = $1 AND action = 'offboard.step' ORDER BY id", [tenants.eraseSilo.tenantId], 'control_plane');
    expect(audit.map((a) => a.step)).toContain('lift-deletion-protection');
    const db = sqlName(tenants.eraseSilo.slug);
    expect(await bed().pg.query('SELECT datname FROM pg_database WHERE datname = $1', [db])).toEqual([]);
    expect(await bed().pg.query('SELECT rolname FROM pg_roles WHERE rolname = $1', [`${db}_app`])).toEqual([]);
  });

  test("only the tenant's database is gone", async () => {
    const after = await census();
    const db = sqlName(tenants.eraseSilo.slug);
    const removed = Object.keys(before).filter((k) => !(k in after));
    expect(removed.length).toBeGreaterThan(0);
    expect(removed.every((k) => k.startsWith(`${db}:`))).toBe(true);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k] && !k.startsWith('control_plane:'));
    expect(changed).toEqual([]);
    expect(after[`${sqlName(tenants.keepSilo.slug)}:"${sqlName(tenants.keepSilo.slug)}"."tasks"`]).toBe(4);
  });
});

describe('a bridge schema something outside depends on', () => {
  test('is not dropped: the step fails naming the dependent, nothing is erased; after it is removed, the retry completes', async () => {
    const schema = sqlName(tenants.depended.slug);
    await bed().pg.query(`CREATE VIEW public.cross_tenant_report AS SELECT count(*) AS n FROM "${schema}".tasks`, [], 'tenants');
    const before = await census();
    const first = await offboard(tenants.depended);
    expect(first.result.outcome).toBe('failed');
    expect(first.result.error).toMatch(new RegExp(`refusing to drop schema ${schema}: 1 object\\(s\\) outside it depend on it \\(rule _RETURN on view cross_tenant_report → table ${schema}\\.tasks\\)`));
    const after = await census();
    expect(after[`tenants:"${schema}"."tasks"`]).toBe(4);
    expect(Object.keys(after).filter((k) => after[k] !== before[k] && !k.startsWith('control_plane:'))).toEqual([]);
    expect(await services.controlPlane.tenantById(tenants.depended.tenantId)).toMatchObject({ status: 'offboarding' });
    await bed().pg.query('DROP VIEW public.cross_tenant_report', [], 'tenants');
    const retry = await runLifecycleJob(services, first.submitted.job.id);
    expect(retry).toMatchObject({ outcome: 'succeeded', resumed: ['begin', 'cancel-billing'] });
    expect(await bed().pg.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema], 'tenants')).toEqual([]);
  });
});

test('deletion order: a table before the tables it references', () => {
  expect(deletionOrder([{ table: 'projects', references: [] }, { table: 'tasks', references: ['projects'] }, { table: 'comments', references: ['tasks', 'projects'] }])).toEqual(['comments', 'tasks', 'projects']);
  expect(() => deletionOrder([{ table: 'a', references: ['b'] }, { table: 'b', references: ['a'] }])).toThrow(/cycle/);
});

test('the masters used are the platform\'s, never a superuser', async () => {
  const rows = await bed().pg.query('SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1', [[MASTERS.bridge.user, MASTERS.pool.user, MASTERS.silo.user]]);
  expect(rows.every((r) => r.rolsuper === false)).toBe(true);
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // A terminal: the human report, not JSON.
  return runCommand(registerOffboardCommand, args, { env: bed().childEnv(), tty: true });
}
