/**
 * The RLS audit (`tenancy audit rls`) against a real PostgreSQL 15: a provisioned pool passes
 * (exit 0); each defect is reported and exits 1; bad usage exits 2. Runs as a plain login role
 * over TLS, as an auditor would: the audit only reads the catalogs.
 */
import type { Client } from 'pg';
import { main } from '../../bin/tenancy';
import { runRlsAudit } from '../../lib/cli/audit-command';
import { enforcePoolRls, provisionPool } from '../../lib/pool/provision';
import type { RlsAuditReport } from '../../lib/pool/rls-audit';
import { createPoolDatabase } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

const DB = 'pool';
const pg = usePostgres();
let url: string;

beforeAll(async () => {
  await createPoolDatabase(pg(), DB);
  await pg().createRole('auditor', { password: 'auditor password' });
  url = `postgresql://auditor:${encodeURIComponent('auditor password')}@${pg().host}:${pg().port}/${DB}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;
});

afterEach(() => {
  process.exitCode = undefined;
});

/** Runs the command's work with captured output. */
async function audit(args: { appRole?: string; schema?: string; json?: boolean; databaseUrl?: string } = {}): Promise<{ code: number; stdout: string; stderr: string; report?: RlsAuditReport }> {
  let stdout = '';
  let stderr = '';
  const code = await runRlsAudit(
    { databaseUrl: url, appRole: 'pool_app', json: true, ...args },
    { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } },
  );
  const json = (args.json ?? true) && stdout ? (JSON.parse(stdout) as RlsAuditReport) : undefined;
  return { code, stdout, stderr, report: json };
}

const admin = (fn: (c: Client) => Promise<unknown>) => pg().withAdmin(fn, DB);
const sql = (...statements: string[]) => admin(async (c) => {
  for (const s of statements) await c.query(s);
});

describe('a provisioned pool', () => {
  test('passes (exit 0), with JSON usable as evidence', async () => {
    const { code, report, stderr } = await audit();
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report).toMatchObject({
      report: 'tenancy rls audit',
      formatVersion: 2,
      generatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      database: { name: 'pool', host: 'localhost', port: pg().port, serverVersion: expect.stringMatching(/^15\./) },
      auditedAs: 'auditor',
      schema: 'pool',
      appRole: { name: 'pool_app', exists: true, superuser: false, bypassRls: false, memberOf: [] },
      views: [],
      problems: [],
      warnings: [],
      ok: true,
    });
    // The inventory: every relation of the schema and its coverage.
    expect(report!.relations.map((r) => [r.relation, r.kind, r.coverage])).toEqual([['pool.projects', 'table', 'tenant'], ['pool.tasks', 'table', 'tenant']]);
    expect(report!.tables.map((t) => t.table)).toEqual(['pool.projects', 'pool.tasks']);
    expect(report!.tables[1]).toEqual({
      table: 'pool.tasks',
      owner: 'pool_owner',
      rlsEnabled: true,
      rlsForced: true,
      policies: [{
        name: 'tenant_isolation',
        permissive: true,
        command: 'ALL',
        roles: ['PUBLIC'],
        using: "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)",
        withCheck: "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)",
        appliesToAppRole: true,
      }],
      tenantIndex: { name: 'tasks_pkey', definition: 'CREATE UNIQUE INDEX tasks_pkey ON pool.tasks USING btree (tenant_id, id)' },
      appRoleBypass: [],
      appRolePrivileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
      problems: [],
    });
  });

  test('the table output names every table, its policy and index, and says OK', async () => {
    const { code, stdout } = await audit({ json: false });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^RLS audit of pool at localhost:\d+ \(PostgreSQL 15\.\d+.*\), schema pool\ngenerated \S+Z, audited as auditor, application role pool_app \(superuser: no, BYPASSRLS: no\)/);
    expect(stdout).toContain('pool.projects');
    expect(stdout).not.toMatch(/\u001b\[/); // no colours: the output is kept as evidence
    expect(stdout).toMatch(/│ pool\.tasks +│ pool_owner │ yes │ yes +│ tenant_isolation ALL to PUBLIC: expected \/ +│ tasks_pkey \(tenant_id, id\) +│ no +│ yes │/);
    expect(stdout.trimEnd().split('\n').pop()).toBe('OK: no problem found');
  });
});

interface Defect {
  readonly name: string;
  readonly apply: string[];
  readonly revert?: string[];
  readonly problems: RegExp[];
}

const EXPR = "tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid";
const DEFECTS: Defect[] = [
  { name: 'RLS disabled', apply: ['ALTER TABLE pool.tasks DISABLE ROW LEVEL SECURITY'], problems: [/^pool\.tasks: row level security is not enabled$/] },
  { name: 'RLS not forced', apply: ['ALTER TABLE pool.projects NO FORCE ROW LEVEL SECURITY'], problems: [/^pool\.projects: row level security is not forced/] },
  {
    name: 'no WITH CHECK',
    apply: ['DROP POLICY tenant_isolation ON pool.tasks', `CREATE POLICY tenant_isolation ON pool.tasks USING (${EXPR})`],
    problems: [/^pool\.tasks: policy tenant_isolation has no WITH CHECK/],
  },
  {
    name: 'no policy at all',
    apply: ['DROP POLICY tenant_isolation ON pool.tasks'],
    problems: [/^pool\.tasks: no permissive tenant_isolation policy applies to the app role/],
  },
  {
    name: 'a policy that is not the tenant expression',
    apply: ['DROP POLICY tenant_isolation ON pool.tasks', 'CREATE POLICY tenant_isolation ON pool.tasks USING (true) WITH CHECK (true)'],
    problems: [/^pool\.tasks: policy tenant_isolation: USING true is not the tenant isolation expression$/, /WITH CHECK true is not the tenant isolation expression/],
  },
  {
    name: 'another permissive policy',
    apply: ["CREATE POLICY support_reads ON pool.tasks FOR SELECT USING (title LIKE 'public:%')"],
    revert: ['DROP POLICY support_reads ON pool.tasks'],
    problems: [/^pool\.tasks: permissive policy support_reads \(SELECT\) widens access/],
  },
  {
    name: 'no index led by tenant_id',
    apply: [
      'SET ROLE pool_owner',
      'CREATE TABLE pool.events (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, at timestamptz NOT NULL)',
      'CREATE INDEX events_id_tenant ON pool.events (id, tenant_id)',
      'ALTER TABLE pool.events ENABLE ROW LEVEL SECURITY',
      'ALTER TABLE pool.events FORCE ROW LEVEL SECURITY',
      `CREATE POLICY tenant_isolation ON pool.events USING (${EXPR}) WITH CHECK (${EXPR})`,
    ],
    revert: ['DROP TABLE pool.events'],
    problems: [/^pool\.events: no index is led by tenant_id/],
  },
  {
    name: 'the app role owns a table',
    apply: ['ALTER TABLE pool.tasks OWNER TO pool_app'],
    revert: ['ALTER TABLE pool.tasks OWNER TO pool_owner'],
    problems: [/^pool\.tasks: pool_app can bypass RLS: owns the table/],
  },
  {
    name: 'the app role has BYPASSRLS',
    apply: ['ALTER ROLE pool_app BYPASSRLS'],
    problems: [/^pool\.projects: pool_app can bypass RLS: BYPASSRLS$/, /^pool\.tasks: pool_app can bypass RLS: BYPASSRLS$/],
  },
  {
    name: 'the app role is a member of the owner',
    apply: ['GRANT pool_owner TO pool_app'],
    problems: [/^pool\.tasks: pool_app can bypass RLS: member of the owner pool_owner/],
  },
  {
    name: 'the app role has TRUNCATE',
    apply: ['GRANT TRUNCATE ON pool.projects TO pool_app'],
    problems: [/^pool\.projects: pool_app has TRUNCATE, which ignores row level security$/],
  },
  {
    name: 'a materialized view over a tenant table',
    apply: ['CREATE MATERIALIZED VIEW public.task_counts AS SELECT tenant_id, count(*) FROM pool.tasks GROUP BY tenant_id'],
    revert: ['DROP MATERIALIZED VIEW public.task_counts'],
    problems: [/^public\.task_counts: materialized view over tenant tables/],
  },
  {
    name: 'a view over a view over a tenant table, without security_invoker',
    apply: [
      'CREATE VIEW public.open_tasks WITH (security_invoker = on) AS SELECT * FROM pool.tasks WHERE NOT done',
      'CREATE VIEW public.open_task_titles AS SELECT title FROM public.open_tasks',
    ],
    revert: ['DROP VIEW public.open_task_titles, public.open_tasks'],
    problems: [/^public\.open_task_titles: view without security_invoker, owned by postgres who bypasses RLS/],
  },
];

describe.each(DEFECTS)('defect: $name', ({ apply, revert, problems }) => {
  afterAll(async () => {
    // Undo what provisioning does not converge, then let provisioning converge the rest.
    if (revert) await sql(...revert);
    await admin(async (c) => {
      await provisionPool(c);
      await c.query('BEGIN');
      await enforcePoolRls(c);
      await c.query('COMMIT');
    });
    expect((await audit()).code).toBe(0);
  });

  test('is reported and exits 1', async () => {
    await sql(...apply);
    const { code, report, stdout } = await audit();
    expect(code).toBe(1);
    expect(report!.ok).toBe(false);
    for (const p of problems) expect(report!.problems).toEqual(expect.arrayContaining([expect.stringMatching(p)]));
    const text = await audit({ json: false });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/\d+ problems?:\n  - /);
    expect(stdout.length).toBeGreaterThan(0);
  });
});

describe('usage', () => {
  test.each([
    ['no --app-role', { appRole: undefined }, /--app-role is required/],
    ['no database URL', { databaseUrl: undefined }, /--database-url \(or DATABASE_URL\) is required/],
    ['a role that is not an identifier', { appRole: 'pool_app; DROP' }, /--app-role .* is not a lowercase SQL identifier/],
    ['an unknown role', { appRole: 'nobody' }, /role "nobody" does not exist/],
    ['an unknown schema', { schema: 'nowhere' }, /schema "nowhere" does not exist in database pool/],
    ['a URL that is not postgres://', { databaseUrl: 'mysql://x@y/z' }, /--database-url is not a PostgreSQL URL/],
  ])('%s exits 2', async (_what, args, message) => {
    const { code, stderr, stdout } = await audit(args as any);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stdout).toBe('');
  });

  test('through the tenancy CLI: exit codes 0, 1 and 2', async () => {
    const writes: string[] = [];
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => (writes.push(String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const saved = process.env.DATABASE_URL;
    try {
      delete process.env.DATABASE_URL;
      expect(await main(['audit', 'rls', '--database-url', url, '--app-role', 'pool_app', '--json'])).toBe(0);
      expect(JSON.parse(writes.join('')).ok).toBe(true);
      process.exitCode = undefined;
      await sql('ALTER TABLE pool.tasks NO FORCE ROW LEVEL SECURITY');
      process.env.DATABASE_URL = url; // the URL may come from the environment
      expect(await main(['audit', 'rls', '--app-role', 'pool_app'])).toBe(1);
      process.exitCode = undefined;
      expect(await main(['audit', 'rls', '--database-url', url])).toBe(2);
      process.exitCode = undefined;
      expect(await main(['audit', 'rls', '--app-role', 'pool_app', '--frobnicate'])).toBe(2);
    } finally {
      out.mockRestore();
      err.mockRestore();
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
      await sql('ALTER TABLE pool.tasks FORCE ROW LEVEL SECURITY');
    }
  });
});
