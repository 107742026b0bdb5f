import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerPostApplyCommand } from '../../lib/cli/post-apply-command';
import { runCommand } from '../support/cli';
import { FixtureProject } from '../support/fixture-project';
import { usePostgres } from '../support/postgres';
import { stripeFor, testKey, useStripeMock } from '../support/stripe-mock';

/**
 * `tenancy post-apply` end to end on real PostgreSQL: the outputs of a bridge tenant, a pool tenant
 * and their platform stack, as `cdktf deploy --outputs-file` writes them, pointing at a local
 * cluster whose master users are CREATEROLE/CREATEDB owners of their databases (as on RDS).
 */
const pg = usePostgres();
const MASTERS = {
  bridge: { user: 'bridge_master', password: 'bridge-master-pw', database: 'tenants' },
  pool: { user: 'pool_master', password: 'pool-master-pw', database: 'pool' },
  controlPlane: { user: 'cp_master', password: 'cp-master-pw', database: 'control_plane' },
  silo: { user: 'initech_master', password: 'initech-master-pw', database: 'tenant_initech' },
};
const ARN = (name: string) => `arn:aws:secretsmanager:us-east-1:111122223333:secret:${name}-AbCdEf`;
const GLOBEX = { id: '6f1c2b9e-8a4d-4c1e-9f3a-2b7d5e8c1a01', password: 'globex-app-pw-1' };
const ACME = { id: '0b7e3c52-6d1f-4e8a-b2c9-7a4f1e3d5c02' };
const INITECH = { id: '2076941a-0207-46ac-9fc3-25d79442d9ff', password: 'initech-app-pw-1' };
const POOL_APP_PASSWORD = 'pool-app-pw-1';

let dir: string;
let project: FixtureProject;
let outputsFile: string;
let secretsFile: string;

function outputs(host: string, port: number) {
  return {
    'platform-us-east-1': {
      bridge_cluster_identifier: 'tenancy-bridge', bridge_endpoint: host, bridge_port: port, bridge_database: 'tenants', bridge_master_secret_arn: ARN('rds!cluster-bridge'),
      pool_cluster_identifier: 'tenancy-pool', pool_endpoint: host, pool_port: port, pool_database: 'pool', pool_master_secret_arn: ARN('rds!cluster-pool'),
      control_plane_cluster_identifier: 'tenancy-control-plane', control_plane_endpoint: host, control_plane_port: port, control_plane_database: 'control_plane', control_plane_master_secret_arn: ARN('rds!cluster-cp'),
      tenant_secrets_key_arn: 'arn:aws:kms:us-east-1:111122223333:key/1',
    },
    'tenant-globex': {
      tenant_id: GLOBEX.id, slug: 'globex', model: 'bridge', plan: 'pro', region: 'us-east-1', k8s_namespace: 'tenant-globex',
      cluster_identifier: 'tenancy-bridge', db_name: 'tenants', schema: 'tenant_globex', role: 'tenant_globex_app', credentials_secret_arn: ARN('tenancy/tenants/globex/db-credentials'),
    },
    'tenant-initech': {
      tenant_id: INITECH.id, slug: 'initech', model: 'silo', plan: 'enterprise', region: 'us-east-1', k8s_namespace: 'tenant-initech',
      db_identifier: 'tenant-initech', db_address: host, db_port: port, db_name: 'tenant_initech', db_master_secret_arn: ARN('rds!db-initech'),
      db_kms_key_arn: 'arn:aws:kms:us-east-1:111122223333:key/2', app_credentials_secret_arn: ARN('tenancy/tenants/initech/db-credentials'),
    },
    'tenant-acme': {
      tenant_id: ACME.id, slug: 'acme', model: 'pool', plan: 'starter', region: 'us-east-1', k8s_namespace: 'tenant-acme',
      cluster_identifier: 'tenancy-pool', db_name: 'pool', app_role: 'pool_app', tenant_setting: 'app.tenant_id',
    },
  };
}

async function postApply(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; lines: any[] }> {
  return postApplyWithEnv({}, ...args);
}

async function postApplyWithEnv(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string; lines: any[] }> {
  // No synthesized output here (recording the stacks' content: test/fleet/post-apply-records.test.ts).
  // The billing hook takes each tenant's adminEmail and company from --registry: the sample project's copy.
  const run = await runCommand(registerPostApplyCommand, ['post-apply', ...args, '--json', '--no-record-stacks', '--ssl-ca', pg().tls!.caFile, '--registry', project.root], { env: { TENANCY_ACTOR: 'test-pipeline', ...env } });
  return { ...run, lines: run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

const cpQuery = (sql: string) => pg().query(sql, [], 'control_plane');

beforeAll(async () => {
  for (const m of Object.values(MASTERS)) {
    await pg().createRole(m.user, { password: m.password, attributes: ['CREATEROLE', 'CREATEDB'] });
    await pg().createDatabase(m.database, { owner: m.user });
  }
  dir = mkdtempSync(join(tmpdir(), 'tenancy-post-apply-'));
  project = FixtureProject.fromSample();
  outputsFile = join(dir, 'outputs.json');
  secretsFile = join(dir, 'secrets.json');
  writeFileSync(outputsFile, JSON.stringify(outputs(pg().host, pg().port)));
  writeFileSync(secretsFile, JSON.stringify({
    [ARN('rds!cluster-bridge')]: { username: MASTERS.bridge.user, password: MASTERS.bridge.password },
    [ARN('rds!cluster-pool')]: { username: MASTERS.pool.user, password: MASTERS.pool.password },
    [ARN('rds!cluster-cp')]: { username: MASTERS.controlPlane.user, password: MASTERS.controlPlane.password },
    [ARN('tenancy/tenants/globex/db-credentials')]: { username: 'tenant_globex_app', password: GLOBEX.password },
    'tenancy/pool/app-credentials': { username: 'pool_app', password: POOL_APP_PASSWORD },
    [ARN('rds!db-initech')]: { username: MASTERS.silo.user, password: MASTERS.silo.password },
    [ARN('tenancy/tenants/initech/db-credentials')]: { username: 'tenant_initech_app', password: INITECH.password },
  }), { mode: 0o600 });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  project?.remove();
});

describe('tenancy post-apply', () => {
  let first: Awaited<ReturnType<typeof postApply>>;
  beforeAll(async () => {
    first = await postApply('--outputs', outputsFile, '--secrets-file', secretsFile);
  });

  test('the first run registers, provisions, migrates and activates every tenant', () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const hooks = first.lines.filter((l) => l.type === 'hook').map((l) => `${l.tenant}:${l.hook}:${l.status}`);
    expect(hooks).toEqual([
      'globex:register:succeeded', 'globex:provision:succeeded', 'globex:migrate:succeeded', 'globex:activate:succeeded', 'globex:billing:succeeded',
      'initech:register:succeeded', 'initech:provision:succeeded', 'initech:migrate:succeeded', 'initech:activate:succeeded', 'initech:billing:succeeded',
      'acme:register:succeeded', 'acme:provision:succeeded', 'acme:migrate:succeeded', 'acme:activate:succeeded', 'acme:billing:succeeded',
    ]);
  });

  test('without a Stripe key the billing hook says it was skipped (never silently)', () => {
    const billing = first.lines.filter((l) => l.type === 'hook' && l.hook === 'billing');
    expect(billing.map((l) => l.result)).toEqual(Array(3).fill(expect.objectContaining({ skipped: 'no Stripe key configured' })));
  });

  test('the control plane has both tenants, active, with placements that hold secret references only', async () => {
    const rows = await cpQuery('SELECT slug, model, status, placement FROM tenancy.tenants ORDER BY slug');
    expect(rows.map((r) => [r.slug, r.model, r.status])).toEqual([['acme', 'pool', 'active'], ['globex', 'bridge', 'active'], ['initech', 'silo', 'active']]);
    const globex = rows.find((r) => r.slug === 'globex')!.placement;
    expect(globex).toMatchObject({ database: 'tenants', schema: 'tenant_globex', role: 'tenant_globex_app', secret_ref: ARN('tenancy/tenants/globex/db-credentials') });
    expect(JSON.stringify(rows)).not.toContain(GLOBEX.password);
    expect(JSON.stringify(rows)).not.toContain(POOL_APP_PASSWORD);
  });

  test('every hook run and every change is recorded; the audit log names the actor', async () => {
    const runs = await cpQuery("SELECT t.slug, h.hook, h.status FROM tenancy.hook_runs h JOIN tenancy.tenants t ON t.id = h.tenant_id ORDER BY h.id");
    expect(runs).toHaveLength(15);
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    const audit = await cpQuery('SELECT actor, action FROM tenancy.audit_log ORDER BY id');
    expect(new Set(audit.map((a) => a.actor))).toEqual(new Set(['test-pipeline']));
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['tenant.registered', 'hook.succeeded', 'tenant.status']));
  });

  test('the bridge tenant is migrated in its own schema, and its login role works', async () => {
    const applied = await pg().query("SELECT target, version FROM tenancy.schema_migrations ORDER BY target, version", [], 'tenants');
    expect(applied).toEqual([{ target: 'tenant_globex', version: 1 }, { target: 'tenant_globex', version: 2 }]);
    const c = await pg().connect({ user: 'tenant_globex_app', password: GLOBEX.password, database: 'tenants' });
    try {
      await c.query("INSERT INTO projects (id, name) VALUES ('6f1c2b9e-8a4d-4c1e-9f3a-2b7d5e8c1aff', 'first')");
      expect((await c.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n).toBe(0);
    } finally {
      await c.end();
    }
  });

  test('the silo database has the tenant schema, migrated, and its least-privilege app role (not the master) works', async () => {
    const applied = await pg().query('SELECT target, version FROM tenancy.schema_migrations ORDER BY version', [], 'tenant_initech');
    expect(applied).toEqual([{ target: 'tenant_initech', version: 1 }, { target: 'tenant_initech', version: 2 }]);
    const c = await pg().connect({ user: 'tenant_initech_app', password: INITECH.password, database: 'tenant_initech' });
    try {
      expect((await c.query('SHOW search_path')).rows[0].search_path).toBe('tenant_initech');
      expect((await c.query('SELECT count(*)::int AS n FROM projects')).rows[0].n).toBe(0);
      await expect(c.query('CREATE TABLE x (i int)')).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
    const placement = (await cpQuery("SELECT placement FROM tenancy.tenants WHERE slug = 'initech'"))[0].placement;
    expect(placement.secret_ref).toBe(ARN('tenancy/tenants/initech/db-credentials'));
  });

  test('the pool is migrated and row-level security is enabled and forced on its tenant tables', async () => {
    const applied = await pg().query('SELECT target, version FROM tenancy.schema_migrations', [], 'pool');
    expect(applied).toEqual([{ target: 'pool', version: 1 }]);
    const tables = await pg().query("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'pool'::regnamespace AND relkind = 'r' ORDER BY relname", [], 'pool');
    expect(tables).toEqual([
      { relname: 'projects', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'tasks', relrowsecurity: true, relforcerowsecurity: true },
    ]);
    const c = await pg().connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: 'pool' });
    try {
      // No tenant set: nothing visible, nothing writable.
      await expect(c.query(`INSERT INTO projects (tenant_id, id, name) VALUES ('${ACME.id}', '6f1c2b9e-8a4d-4c1e-9f3a-2b7d5e8c1a10', 'x')`)).rejects.toThrow(/row-level security/);
    } finally {
      await c.end();
    }
  });

  test('running it again changes nothing: every hook is unchanged, nothing new is recorded', async () => {
    const before = await cpQuery('SELECT (SELECT count(*) FROM tenancy.hook_runs) AS runs, (SELECT count(*) FROM tenancy.audit_log) AS audit, (SELECT max(updated_at) FROM tenancy.tenants) AS updated');
    const migrationsBefore = await pg().query('SELECT target, version, applied_at FROM tenancy.schema_migrations ORDER BY 1, 2', [], 'tenants');
    const again = await postApply('--outputs', outputsFile, '--secrets-file', secretsFile);
    expect(again.code).toBe(0);
    expect(again.lines.filter((l) => l.type === 'hook').map((l) => l.status)).toEqual(Array(15).fill('unchanged'));
    expect(await cpQuery('SELECT (SELECT count(*) FROM tenancy.hook_runs) AS runs, (SELECT count(*) FROM tenancy.audit_log) AS audit, (SELECT max(updated_at) FROM tenancy.tenants) AS updated')).toEqual(before);
    expect(await pg().query('SELECT target, version, applied_at FROM tenancy.schema_migrations ORDER BY 1, 2', [], 'tenants')).toEqual(migrationsBefore);
  });

  test('--force runs every hook again, and they still change nothing', async () => {
    const again = await postApply('--outputs', outputsFile, '--secrets-file', secretsFile, '--force', '--tenant', 'globex');
    expect(again.code).toBe(0);
    expect(again.lines.filter((l) => l.type === 'hook').map((l) => `${l.hook}:${l.status}:${l.result?.status ?? ''}`)).toEqual([
      'register:succeeded:', 'provision:succeeded:', 'migrate:succeeded:up-to-date', 'activate:succeeded:active', 'billing:succeeded:',
    ]);
    expect(await cpQuery("SELECT registered FROM (SELECT result->>'registered' AS registered FROM tenancy.hook_runs WHERE hook = 'register' ORDER BY id DESC LIMIT 1) r")).toEqual([{ registered: 'unchanged' }]);
  });
});

describe('tenancy post-apply failures', () => {
  test('a tenant whose secret cannot be resolved fails alone; its later hooks are not run; exit 1', async () => {
    const broken = outputs(pg().host, pg().port) as Record<string, any>;
    broken['tenant-initrode'] = { ...broken['tenant-globex'], tenant_id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03', slug: 'initrode', schema: 'tenant_initrode', role: 'tenant_initrode_app', credentials_secret_arn: ARN('missing') };
    const file = join(dir, 'broken.json');
    writeFileSync(file, JSON.stringify(broken));
    const run = await postApply('--outputs', file, '--secrets-file', secretsFile);
    expect(run.code).toBe(1);
    const initrode = run.lines.filter((l) => l.tenant === 'initrode').map((l) => `${l.hook}:${l.status}`);
    expect(initrode).toEqual(['register:succeeded', 'provision:failed', 'migrate:not-run', 'activate:not-run', 'billing:not-run']);
    expect(run.lines.find((l) => l.tenant === 'initrode' && l.hook === 'provision').error).toMatch(/missing-AbCdEf.*not found/);
    expect(run.lines.filter((l) => l.tenant !== 'initrode' && l.type === 'hook').every((l) => l.status === 'unchanged')).toBe(true);
    expect(await cpQuery("SELECT status FROM tenancy.tenants WHERE slug = 'initrode'")).toEqual([{ status: 'provisioning' }]);
    expect(await pg().query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_initrode'", [], 'tenants')).toEqual([]);
  });

  test.each<[string, (o: Record<string, any>) => void, RegExp]>([
    ['a slug that is not the stack name', (o) => { o['tenant-globex'].slug = 'other'; }, /tenant-globex\.slug: other does not match the stack name/],
    ['an injected schema name', (o) => { o['tenant-globex'].schema = 'x; DROP TABLE y'; }, /tenant-globex\.schema: must be a lowercase SQL name/],
    ['an unknown model', (o) => { o['tenant-acme'].model = 'hybrid'; }, /tenant-acme\.model/],
    ['another tenant\'s schema', (o) => { o['tenant-globex'].schema = 'tenant_acme'; }, /tenant-globex\.schema: tenant_acme is not tenant_globex/],
    ['a tenant id that is not a UUID', (o) => { o['tenant-acme'].tenant_id = "1' OR '1'='1"; }, /tenant-acme\.tenant_id: must be a lowercase UUID/],
  ])('bad outputs (%s): exit 2, a message naming the stack and output, nothing written', async (_name, change, message) => {
    const o = outputs(pg().host, pg().port) as Record<string, any>;
    change(o);
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(o));
    const before = await cpQuery('SELECT count(*)::int AS n FROM tenancy.audit_log');
    const run = await postApply('--outputs', file, '--secrets-file', secretsFile);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(await cpQuery('SELECT count(*)::int AS n FROM tenancy.audit_log')).toEqual(before);
  });

  test('an unknown --tenant is bad usage', async () => {
    const run = await postApply('--outputs', outputsFile, '--secrets-file', secretsFile, '--tenant', 'nobody');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--tenant nobody: no such tenant stack/);
  });
});

describe('tenancy post-apply with Stripe (the local Stripe-compatible server)', () => {
  const stripe = useStripeMock();

  test('a free pool tenant gets exactly one Stripe customer, tagged with its id and recorded; a rerun creates nothing', async () => {
    const key = testKey();
    const o = outputs(pg().host, pg().port) as Record<string, any>;
    const free = { ...o['tenant-acme'], tenant_id: 'c3d4e5f6-0718-4293-a4b5-c6d7e8f90a04', slug: 'freebie', plan: 'free' };
    const file = join(dir, 'free.json');
    writeFileSync(file, JSON.stringify({ 'platform-us-east-1': o['platform-us-east-1'], 'tenant-freebie': free }));
    const env = { STRIPE_SECRET_KEY: key, TENANCY_STRIPE_API_URL: stripe().url };
    const run = await postApplyWithEnv(env, '--outputs', file, '--secrets-file', secretsFile);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.lines.find((l) => l.hook === 'billing').status).toBe('succeeded');
    const customers = await stripeFor(stripe(), key).customers.list();
    expect(customers.data).toHaveLength(1);
    expect(customers.data[0].metadata).toMatchObject({ tenant_id: free.tenant_id });
    const [row] = await cpQuery(`SELECT stripe_customer_id, stripe_subscription_id FROM tenancy.tenants WHERE slug = 'freebie'`);
    expect(row).toEqual({ stripe_customer_id: customers.data[0].id, stripe_subscription_id: null });

    const again = await postApplyWithEnv(env, '--outputs', file, '--secrets-file', secretsFile, '--force');
    expect(again.code).toBe(0);
    expect((await stripeFor(stripe(), key).customers.list()).data).toHaveLength(1);
  });
});
