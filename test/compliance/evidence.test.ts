/// <reference lib="dom" />
// The live evidence of `tenancy compliance report` against a real PostgreSQL 15: a control plane
// migrated by the runner (tenants registered and their hook runs recorded through ControlPlane, so
// audited), a provisioned and migrated pool; read as a plain login role over verified TLS, as an
// auditor would. Then one gap of each kind shows up as a problem and fails the report.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { runComplianceReport } from '../../lib/cli/compliance-command';
import type { StackReport } from '../../lib/compliance/report';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget, poolTarget } from '../../lib/migrate/targets';
import { provisionPool } from '../../lib/pool/provision';
import { loadRegistry } from '../../lib/registry/load-registry';
import { repoSets } from '../migrate/helpers';
import { POOL_APP_PASSWORD } from '../support/pool-db';
import { launchChromium } from '../support/chromium';
import { usePostgres } from '../support/postgres';
import { FixtureProject } from '../support/fixture-project';

const pg = usePostgres();
const AUDITOR = { user: 'auditor', password: 'auditor password (test only)' };
let project: FixtureProject;
let cpUrl: string;
let poolUrl: string;
let out: string;

const url = (database: string) =>
  `postgresql://${AUDITOR.user}:${encodeURIComponent(AUDITOR.password)}@${pg().host}:${pg().port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;

beforeAll(async () => {
  project = FixtureProject.fromSample();
  out = mkdtempSync(join(tmpdir(), 'compliance-evidence-'));
  const registry = loadRegistry({ root: project.root });
  const tenant = (slug: string) => registry.tenants.find((t) => t.slug === slug)!;

  // The control plane as the post-apply hooks leave it (its own migrations).
  await pg().createDatabase('control_plane');
  await pg().createDatabase('pool');
  await pg().withAdmin((c) => provisionPool(c, { appPassword: POOL_APP_PASSWORD }), 'pool');
  const run = await migrateTargets({
    targets: [controlPlaneTarget({ connection: pg().adminConfig('control_plane') }), poolTarget({ connection: pg().adminConfig('pool') })],
    migrations: repoSets(),
  });
  expect(run.summary.ok).toBe(true);

  const pool = new Pool(pg().adminConfig('control_plane'));
  try {
    const cp = new ControlPlane(pool, 'post-apply@test');
    for (const slug of ['acme', 'mediwell', 'globex']) {
      const t = tenant(slug);
      await cp.upsertTenant({ id: t.id, slug: t.slug, model: t.model, plan: t.plan, status: 'active', region: t.region, placement: { host: 'db.internal', port: 5432 } });
      for (const hook of ['register', 'provision', 'migrate']) {
        await cp.recordHookRun(t.id, { hook, inputHash: `${hook}-1`, status: 'succeeded', result: {}, error: null, startedAt: new Date() });
      }
    }
    await pool.query(
      `INSERT INTO tenancy.tenant_migrations (target, tenant_id, kind, version, status) VALUES ('tenant_mediwell', $1, 'silo', 2, 'applied'), ('tenant_globex', $2, 'bridge', 1, 'failed'), ('pool', NULL, 'pool', 1, 'applied')`,
      [tenant('mediwell').id, tenant('globex').id],
    );
    // A hook run written straight into the table, past ControlPlane: no audit-log entry for it.
    await pool.query(`INSERT INTO tenancy.hook_runs (tenant_id, hook, input_hash, status, started_at) VALUES ($1, 'migrate', 'x', 'succeeded', now())`, [tenant('acme').id]);
  } finally {
    await pool.end();
  }

  await pg().createRole(AUDITOR.user, { password: AUDITOR.password });
  for (const db of ['control_plane', 'pool']) {
    await pg().query(`GRANT USAGE ON SCHEMA tenancy TO ${AUDITOR.user}; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO ${AUDITOR.user}`, [], db);
  }
  cpUrl = url('control_plane');
  poolUrl = url('pool');
});

afterAll(() => {
  project?.remove();
  if (out) rmSync(out, { recursive: true, force: true });
});

let code: number;
let stdout = '';
const report = (slug: string) => JSON.parse(readFileSync(join(out, 'tenants', `${slug}.json`), 'utf8')) as StackReport;

beforeAll(async () => {
  code = await runComplianceReport(
    { root: project.root, out, tenant: ['acme', 'mediwell', 'globex', 'tinyco'], controlPlaneUrl: cpUrl, poolUrl: [`us-east-1=${poolUrl}`] },
    { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stdout += t) } },
  );
});

test('a registered silo tenant with audited hook runs and applied migrations: clean evidence', () => {
  const r = report('mediwell');
  expect(r.status).toBe('pass');
  expect(r.evidence).toMatchObject({
    collected: true,
    problems: [],
    errors: [],
    controlPlane: {
      registered: true,
      record: { model: 'silo', plan: 'pro', status: 'active', region: 'us-east-1' },
      migrations: [{ target: 'tenant_mediwell', kind: 'silo', version: 2, status: 'applied' }],
      hooks: [{ hook: 'migrate', status: 'succeeded' }, { hook: 'provision', status: 'succeeded' }, { hook: 'register', status: 'succeeded' }],
      auditLog: { entries: 4, hookRuns: 3, hookRunsAudited: 3, appendOnly: true, actions: { 'tenant.registered': 1, 'hook.succeeded': 3 } },
    },
  });
  expect(r.evidence.pool).toBeUndefined();
  const md = readFileSync(join(out, 'tenants', 'mediwell.md'), 'utf8');
  expect(md).toContain('- Registered: yes (silo, pro, us-east-1, status active)');
  expect(md).toMatch(/append-only enforced \(ownership, privileges, hash chain\): yes; chain head \d+:[0-9a-f]{64}; hook runs audited: 3 of 3/);
  expect(md).toContain('| `tenant_mediwell` | silo | 2 | applied |');
});

test('a pool tenant: the RLS audit, the pool migration state and the erasure path from the pool database', () => {
  const r = report('acme');
  expect(r.evidence.pool).toMatchObject({
    database: 'pool',
    rls: { ok: true, appRole: 'pool_app', tables: ['pool.projects', 'pool.tasks'], problems: [] },
    migrations: { stateTable: true, version: 1, applied: [{ version: 1, name: 'projects_tasks' }] },
    erasure: { statements: ['DELETE FROM pool.projects WHERE tenant_id = $1', 'DELETE FROM pool.tasks WHERE tenant_id = $1'] },
  });
  // The pool's own migration state in the control plane is part of every pool tenant's evidence.
  expect(r.evidence.controlPlane!.migrations).toEqual([expect.objectContaining({ target: 'pool', kind: 'pool', version: 1, status: 'applied' })]);
});

test('gaps are problems that fail the report: a hook run without audit entry, a failed migration, an unregistered tenant', () => {
  expect(report('acme').evidence.problems).toEqual(['1 of 4 hook runs have no audit-log entry']);
  expect(report('acme').status).toBe('fail');
  expect(report('globex').evidence.problems).toEqual(['migration target tenant_globex is failed']);
  expect(report('tinyco').evidence.problems).toEqual(['tenant tinyco is not registered in the control plane (tenancy.tenants): its post-apply hooks have not run']);
  expect(code).toBe(1);
  expect(stdout).toMatch(/^PASS\s+tenant-mediwell .*evidence: ok$/m);
  expect(stdout).toMatch(/^FAIL\s+tenant-acme .*evidence: problems$/m);
});

test('the summary page counts live-evidence failures in its cards and its chart (headless Chromium)', async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`file://${join(out, 'index.html')}`, { waitUntil: 'load' });
    const card = (name: string) => page.$eval(`[data-total="${name}"]`, (b) => b.textContent);
    // acme, globex and tinyco fail on evidence alone (no rule fails): three failing stacks, three evidence failures.
    expect(await card('fail')).toBe('0');
    expect(await card('evidence-problems')).toBe('3');
    expect(await card('failing')).toBe('3');
    const chart = await page.$$eval('#pack-chart g.evidence', (gs) => gs.map((g) => ({
      stack: g.getAttribute('data-stack'), problems: g.getAttribute('data-problems'), marked: g.querySelectorAll('rect.fail').length, text: g.textContent,
    })));
    expect(chart).toEqual([
      { stack: 'tenant-acme', problems: '1', marked: 1, text: '1 problem' },
      { stack: 'tenant-mediwell', problems: '0', marked: 0, text: 'ok' },
      { stack: 'tenant-globex', problems: '1', marked: 1, text: '1 problem' },
      { stack: 'tenant-tinyco', problems: '1', marked: 1, text: '1 problem' },
    ]);
    expect(await page.$$eval('#pack-chart text.row.failing', (ts) => ts.map((t) => t.textContent))).toEqual(['acme', 'globex', 'tinyco']);
    // The stack's own page lists the problem.
    await page.goto(`file://${join(out, 'tenants', 'globex.html')}`, { waitUntil: 'load' });
    expect(await page.$$eval('#evidence-problems li', (lis) => lis.map((li) => li.textContent))).toEqual(['migration target tenant_globex is failed']);
  } finally {
    await browser.close();
  }
});

test('the report names its sources without passwords', () => {
  const fleet = JSON.parse(readFileSync(join(out, 'fleet.json'), 'utf8'));
  expect(fleet.evidence.controlPlane).toContain('auditor:***@');
  expect(fleet.evidence.pools[0]).toMatch(/^us-east-1=postgresql:\/\/auditor:\*\*\*@/);
  expect(readFileSync(join(out, 'fleet.json'), 'utf8')).not.toContain(encodeURIComponent(AUDITOR.password));
});

test('an unreachable control plane makes the evidence incomplete, not a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'compliance-unreachable-'));
  try {
    let text = '';
    const exit = await runComplianceReport(
      { root: project.root, out: dir, tenant: ['mediwell'], controlPlaneUrl: `postgresql://nobody:x@127.0.0.1:1/control_plane` },
      { stdout: { write: (t: string) => (text += t) }, stderr: { write: (t: string) => (text += t) } },
    );
    expect(exit).toBe(1);
    const r = JSON.parse(readFileSync(join(dir, 'tenants', 'mediwell.json'), 'utf8')) as StackReport;
    expect(r.status).toBe('incomplete');
    expect(r.evidence.errors).toEqual([expect.stringMatching(/^control plane: /)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
