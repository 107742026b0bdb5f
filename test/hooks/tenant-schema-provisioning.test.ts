import { Client } from 'pg';
import { provisionTenantSchema, tenantSchemaProvisioningSql } from '../../lib/hooks/tenant-schema-provisioning';
import { PLAN_PROFILES } from '../../lib/plans';
import { usePostgres } from '../support/postgres';

// The bridge cluster's master user is not a superuser on RDS: CREATEROLE and CREATEDB, owner of the database.
const MASTER = { user: 'bridge_master', password: 'master-pw-0123456789' };
const pg = usePostgres();
// A fixed tenant id per slug (provisioning records it on the schema and role, and refuses objects of another tenant).
const TENANT_IDS: Record<string, string> = { acme: '00000000-0000-4000-8000-000000000001', 'globex-co': '00000000-0000-4000-8000-000000000002' };
const provisioning = (p: { slug: string; password: string; database: string }) => ({ ...p, tenantId: TENANT_IDS[p.slug] ?? '00000000-0000-4000-8000-000000000009', limits: PLAN_PROFILES.pro.databaseRole });

async function asMaster<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await pg().connect({ ...MASTER, database: 'tenants' });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const asTenant = (slug: string, password: string) => pg().connect({ user: `tenant_${slug.replace(/-/g, '_')}_app`, password, database: 'tenants' });

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createDatabase('tenants', { owner: MASTER.user });
  await asMaster(async (c) => {
    for (const [slug, pw] of [['acme', 'acme-pw-1'], ['globex-co', 'globex-pw-1']]) await provisionTenantSchema(c, provisioning({ slug, password: pw, database: 'tenants' }));
    // A table in each schema, created by the master (as the migrations do).
    await c.query('CREATE TABLE tenant_acme.secrets (v text)');
    await c.query("INSERT INTO tenant_acme.secrets VALUES ('acme only')");
    await c.query('CREATE TABLE tenant_globex_co.secrets (v text)');
  });
});

describe('tenant schema provisioning (bridge cluster; a silo database is provisioned the same way)', () => {
  test('the tenant role logs in, resolves names in its own schema only, and reads its own tables', async () => {
    const c = await asTenant('acme', 'acme-pw-1');
    try {
      expect((await c.query('SHOW search_path')).rows[0].search_path).toBe('tenant_acme');
      expect((await c.query('SELECT v FROM secrets')).rows).toEqual([{ v: 'acme only' }]);
      await expect(c.query('SELECT * FROM tenant_globex_co.secrets')).rejects.toThrow(/permission denied for schema tenant_globex_co/);
      // No DDL, in its schema or in public (CVE-2018-1058).
      await expect(c.query('CREATE TABLE mine (x int)')).rejects.toThrow(/permission denied for schema tenant_acme/);
      await expect(c.query('CREATE TABLE public.trap (x int)')).rejects.toThrow(/permission denied for schema public/);
      await expect(c.query('DROP SCHEMA tenant_acme CASCADE')).rejects.toThrow(/must be owner of schema/);
    } finally {
      await c.end();
    }
  });

  test('the role has no attribute beyond LOGIN', async () => {
    const [role] = await pg().query("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolinherit, rolcanlogin FROM pg_roles WHERE rolname = 'tenant_acme_app'");
    expect(role).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, rolreplication: false, rolinherit: false, rolcanlogin: true });
  });

  test('the password reaches the server only as a SCRAM verifier', async () => {
    expect(tenantSchemaProvisioningSql(provisioning({ slug: 'acme', password: 'acme-pw-1', database: 'tenants' })).join('\n')).not.toContain('acme-pw-1');
    expect(await pg().storedPassword('tenant_acme_app')).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  test('running it again changes nothing but a rotated password', async () => {
    await asMaster((c) => provisionTenantSchema(c, provisioning({ slug: 'acme', password: 'acme-pw-2', database: 'tenants' })));
    await expect(asTenant('acme', 'acme-pw-1')).rejects.toThrow(/password authentication failed/);
    const c = await asTenant('acme', 'acme-pw-2');
    expect((await c.query('SELECT count(*)::int AS n FROM secrets')).rows[0].n).toBe(1);
    await c.end();
  });

  test('other roles of the cluster cannot connect to the tenants database', async () => {
    await pg().createRole('someone_else', { password: 'x-pw' });
    await expect(pg().connect({ user: 'someone_else', password: 'x-pw', database: 'tenants' })).rejects.toThrow(/permission denied for database "tenants"/);
  });

  test('an existing tenant role with BYPASSRLS (changed by hand) is refused, not trusted', async () => {
    await pg().createRole('tenant_tampered_app', { password: 'x', attributes: ['BYPASSRLS'] });
    // Attributed to the tenant (else it would be refused earlier, as not this tenant's: test/security/no-adoption.test.ts).
    await pg().query("COMMENT ON ROLE tenant_tampered_app IS 'tenancy:tenant-id=00000000-0000-4000-8000-000000000009'");
    await expect(asMaster((c) => provisionTenantSchema(c, provisioning({ slug: 'tampered', password: 'y', database: 'tenants' })))).rejects.toThrow(/tenant tampered in database tenants failed: role tenant_tampered_app is a superuser or has BYPASSRLS/);
    expect(await pg().query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_tampered'")).toEqual([]);
  });

  test.each([['tenant_a; DROP SCHEMA x'], ['Acme'], ['a'], ['../etc'], ['ab"c']])('an unsafe slug %j is refused before any SQL', (slug) => {
    expect(() => tenantSchemaProvisioningSql(provisioning({ slug, password: 'p', database: 'tenants' }))).toThrow(/not a safe tenant slug/);
  });

  test('an unsafe database name is quoted, never interpolated', () => {
    const sql = tenantSchemaProvisioningSql(provisioning({ slug: 'acme', password: 'p', database: 'x"; DROP DATABASE y; --' })).join('\n');
    expect(sql).toContain('"x""; DROP DATABASE y; --"');
  });
});
