/**
 * provisionPool and enforcePoolRls against a real PostgreSQL 15: the roles, schema and grants of
 * docs/DATA-PLANE.md ("Roles"), converging on reruns; RLS enabled, forced and fail-closed on every
 * table with tenant_id; the owner subject to it too.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { enforcePoolRls, normalizePolicyExpression, provisionPool, tenantPolicyExpression } from '../../lib/pool/provision';
import { applyPoolMigrations, POOL_APP_PASSWORD } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

const DB = 'pool';
const pg = usePostgres();
const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => pg().withAdmin(fn, DB);

beforeAll(async () => {
  await pg().createDatabase(DB);
});

describe('provisionPool', () => {
  test('creates the roles, schema and grants, and a rerun changes nothing', async () => {
    const first = await admin((c) => provisionPool(c, { appPassword: POOL_APP_PASSWORD }));
    expect(first.changes).toEqual(expect.arrayContaining(['role pool_owner created', 'role pool_app created', 'schema pool created']));
    await admin((c) => applyPoolMigrations(c));

    const roles = await pg().query(
      "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname IN ('pool_owner', 'pool_app') ORDER BY rolname",
    );
    expect(roles).toEqual([
      { rolname: 'pool_app', rolcanlogin: true, rolsuper: false, rolbypassrls: false, rolcreatedb: false, rolcreaterole: false },
      { rolname: 'pool_owner', rolcanlogin: false, rolsuper: false, rolbypassrls: false, rolcreatedb: false, rolcreaterole: false },
    ]);
    const [facts] = await pg().query(
      `SELECT pg_get_userbyid(n.nspowner) AS schema_owner,
              pg_has_role('pool_app', 'pool_owner', 'MEMBER') AS app_is_owner_member,
              has_schema_privilege('pool_app', 'pool', 'USAGE') AS app_usage,
              has_schema_privilege('pool_app', 'pool', 'CREATE') AS app_create,
              has_schema_privilege('public', 'pool', 'USAGE') AS public_usage,
              has_schema_privilege('pool_app', 'public', 'CREATE') AS app_create_public
         FROM pg_namespace n WHERE nspname = 'pool'`,
      [],
      DB,
    );
    expect(facts).toEqual({ schema_owner: 'pool_owner', app_is_owner_member: false, app_usage: true, app_create: false, public_usage: false, app_create_public: false });

    const privileges = await pg().query(
      `SELECT c.relname, pg_get_userbyid(c.relowner) AS owner,
              array(SELECT p FROM unnest(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
                     WHERE has_table_privilege('pool_app', c.oid, p)) AS app
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'pool' AND c.relkind = 'r' ORDER BY c.relname`,
      [],
      DB,
    );
    expect(privileges).toEqual([
      { relname: 'projects', owner: 'pool_owner', app: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
      { relname: 'tasks', owner: 'pool_owner', app: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
    ]);
    const [{ setconfig }] = await pg().query(
      "SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = 'pool_app' AND d.datname = $1",
      [DB],
    );
    expect(setconfig).toEqual(['search_path=pool, pg_temp']);

    const again = await admin((c) => provisionPool(c));
    expect(again.changes).toEqual([]);
    expect(await admin((c) => enforcePoolRls(c, 'pool'))).toEqual([
      { table: 'projects', changes: [], tenantIndex: 'projects_pkey' },
      { table: 'tasks', changes: [], tenantIndex: 'tasks_pkey' },
    ]);
  });

  test('every tenant table has RLS enabled and forced and the exact fail-closed policy', async () => {
    const rows = await pg().query(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.polname, p.polcmd::text AS cmd, p.polpermissive,
              p.polroles = '{0}'::oid[] AS to_public, pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS wc
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_policy p ON p.polrelid = c.oid
        WHERE n.nspname = 'pool' ORDER BY c.relname`,
      [],
      DB,
    );
    expect(rows.map((r) => r.relname)).toEqual(['projects', 'tasks']);
    for (const r of rows) {
      expect(r).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true, polname: 'tenant_isolation', cmd: '*', polpermissive: true, to_public: true });
      expect(normalizePolicyExpression(r.qual)).toBe(normalizePolicyExpression(tenantPolicyExpression()));
      expect(r.wc).toBe(r.qual);
      expect(r.qual).toContain("current_setting('app.tenant_id'::text, true)");
    }
  });

  test('a rerun converges a drifted setup: BYPASSRLS, owner membership, TRUNCATE, a schema owned by someone else', async () => {
    await pg().query('ALTER ROLE pool_app BYPASSRLS', [], DB);
    await pg().query('GRANT pool_owner TO pool_app', [], DB);
    await pg().query('GRANT TRUNCATE, TRIGGER ON pool.tasks TO pool_app', [], DB);
    await pg().query('ALTER SCHEMA pool OWNER TO postgres', [], DB);
    const result = await admin((c) => provisionPool(c));
    expect(result.changes).toEqual([
      'role pool_app: NOBYPASSRLS',
      'role pool_app: membership in pool_owner revoked',
      'schema pool: owner postgres -> pool_owner',
    ]);
    const [facts] = await pg().query(
      `SELECT r.rolbypassrls, pg_has_role('pool_app', 'pool_owner', 'MEMBER') AS member,
              has_table_privilege('pool_app', 'pool.tasks', 'TRUNCATE') AS truncate, has_table_privilege('pool_app', 'pool.tasks', 'TRIGGER') AS trigger
         FROM pg_roles r WHERE r.rolname = 'pool_app'`,
      [],
      DB,
    );
    expect(facts).toEqual({ rolbypassrls: false, member: false, truncate: false, trigger: false });
  });

  test('a table created later gets the DML grants (default privileges) and, on the next enforcement, RLS and an index', async () => {
    await admin(async (c) => {
      await c.query('BEGIN');
      await c.query('SET LOCAL ROLE pool_owner');
      await c.query('CREATE TABLE pool.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL)');
      const enforced = await enforcePoolRls(c, 'pool');
      expect(enforced.find((t) => t.table === 'notes')).toEqual({
        table: 'notes',
        changes: ['rls enabled', 'rls forced', 'policy created', 'index notes_tenant_id_idx created'],
        tenantIndex: 'notes_tenant_id_idx',
      });
      await c.query('COMMIT');
    });
    const [row] = await pg().query(
      `SELECT has_table_privilege('pool_app', 'pool.notes', 'INSERT') AS ins, has_table_privilege('pool_app', 'pool.notes', 'TRUNCATE') AS trunc,
              has_sequence_privilege('pool_app', pg_get_serial_sequence('pool.notes', 'id'), 'USAGE') AS seq,
              pg_get_indexdef('pool.notes_tenant_id_idx'::regclass) AS idx`,
      [],
      DB,
    );
    expect(row).toEqual({ ins: true, trunc: false, seq: true, idx: 'CREATE INDEX notes_tenant_id_idx ON pool.notes USING btree (tenant_id)' });
    // The app role can insert for its tenant (the identity sequence is usable) and sees only that.
    const app = await pg().connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB });
    try {
      const tenant = randomUUID();
      await app.query('BEGIN');
      await app.query("SELECT set_config('app.tenant_id', $1, true)", [tenant]);
      await app.query('INSERT INTO notes (tenant_id, body) VALUES ($1, $2)', [tenant, 'hello']);
      expect((await app.query('SELECT tenant_id FROM notes')).rows).toEqual([{ tenant_id: tenant }]);
      await app.query('ROLLBACK');
    } finally {
      await app.end();
    }
    await pg().query('DROP TABLE pool.notes', [], DB);
  });

  test('a tampered tenant_isolation policy is replaced; another permissive policy is refused', async () => {
    await pg().query('DROP POLICY tenant_isolation ON pool.projects', [], DB);
    await pg().query('CREATE POLICY tenant_isolation ON pool.projects USING (true)', [], DB);
    const fixed = await admin((c) => enforcePoolRls(c));
    expect(fixed.find((t) => t.table === 'projects')?.changes).toEqual(['policy replaced']);

    await pg().query('CREATE POLICY everyone ON pool.projects FOR SELECT USING (true)', [], DB);
    await expect(admin((c) => enforcePoolRls(c))).rejects.toThrow(/pool\.projects: permissive policy everyone would widen tenant isolation/);
    // A RESTRICTIVE policy narrows access and is left alone.
    await pg().query('DROP POLICY everyone ON pool.projects', [], DB);
    await pg().query("CREATE POLICY named_only ON pool.projects AS RESTRICTIVE FOR ALL USING (name <> '')", [], DB);
    expect((await admin((c) => enforcePoolRls(c))).find((t) => t.table === 'projects')?.changes).toEqual([]);
    await pg().query('DROP POLICY named_only ON pool.projects', [], DB);
  });

  test('refuses bad names and an app role equal to the owner, before touching the database', async () => {
    await expect(admin((c) => provisionPool(c, { schema: 'Pool"; DROP' }))).rejects.toThrow(/schema .* must be a lowercase SQL identifier/);
    await expect(admin((c) => provisionPool(c, { appRole: 'pool_owner' }))).rejects.toThrow(/must not be the owner role/);
    await expect(admin((c) => provisionPool(c, { tenantSetting: "x'; --" }))).rejects.toThrow(/must look like "app.tenant_id"/);
  });
});

describe('fail closed, and FORCE binds the owner', () => {
  const A = randomUUID();
  const B = randomUUID();

  beforeAll(async () => {
    await pg().query(
      `INSERT INTO pool.projects (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'a1'), ($1, gen_random_uuid(), 'a2'), ($2, gen_random_uuid(), 'b1')`,
      [A, B],
      DB,
    );
  });

  test('the app role with no tenant set (or an empty one) sees nothing and cannot write', async () => {
    const app = await pg().connect({ user: 'pool_app', password: POOL_APP_PASSWORD, database: DB });
    try {
      expect((await app.query('SELECT count(*)::int AS n FROM projects')).rows[0].n).toBe(0);
      await app.query('BEGIN');
      await app.query("SELECT set_config('app.tenant_id', '', true)");
      expect((await app.query('SELECT count(*)::int AS n FROM projects')).rows[0].n).toBe(0);
      expect((await app.query("UPDATE projects SET name = 'x'")).rowCount).toBe(0);
      expect((await app.query('DELETE FROM projects')).rowCount).toBe(0);
      await expect(app.query("INSERT INTO projects (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'x')", [A])).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(/new row violates row-level security policy/),
      });
      await app.query('ROLLBACK');
      // TRUNCATE (which ignores RLS) is not granted.
      await expect(app.query('TRUNCATE projects CASCADE')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }
  });

  test('the owner role is subject to the policy (FORCE ROW LEVEL SECURITY)', async () => {
    await admin(async (c) => {
      await c.query('BEGIN');
      await c.query('SET LOCAL ROLE pool_owner');
      expect((await c.query('SELECT count(*)::int AS n FROM pool.projects')).rows[0].n).toBe(0);
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [A]);
      const rows = (await c.query('SELECT tenant_id, name FROM pool.projects ORDER BY name')).rows;
      expect(rows).toEqual([{ tenant_id: A, name: 'a1' }, { tenant_id: A, name: 'a2' }]);
      await expect(c.query("INSERT INTO pool.projects (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'x')", [B])).rejects.toMatchObject({ code: '42501' });
      await c.query('ROLLBACK');
    });
  });
});
