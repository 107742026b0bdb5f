// Reproduces: one bridge tenant starves or blocks the others from its own database login role —
// it opens every connection slot of the shared cluster, holds the (predictable) advisory-lock keys
// of another tenant's migration, of the state-table creation and of provisioning, and keeps a
// large object in a database outside its schema so that its GDPR erasure cannot drop the role.
// Fails on 0f20909 (main before the fix): the role had no connection limit and no timeouts; the
// held advisory keys made the victim's migration `skipped-locked` and provisioning/state-table
// creation wait for ever (the test times out); the tenant connected to `postgres` and created a
// large object there; a large object in template1 made DROP ROLE fail the erasure.
import { createHash } from 'node:crypto';
import type { Client, ClientBase } from 'pg';
import { provisionTenantSchema } from '../../lib/hooks/tenant-schema-provisioning';
import { migrateTargets } from '../../lib/migrate/runner';
import { bridgeTarget } from '../../lib/migrate/targets';
import { eraseBridgeTenant } from '../../lib/offboarding/bridge-erasure';
import { PLAN_PROFILES } from '../../lib/plans';
import type { Plan } from '../../lib/registry/tenant-schema';
import { set } from '../migrate/helpers';
import { usePostgres } from '../support/postgres';

const pg = usePostgres();
/** The bridge cluster's master user as on RDS: CREATEROLE and CREATEDB, not a superuser; it owns `tenants` and `postgres`. */
const MASTER = { user: 'bridge_master', password: 'bridge-master-pw (test only)' };
const TENANTS = {
  victim: { id: '0a6b1f0e-3c0d-4e55-9d0e-000000000001', password: 'victim-pw (test only)' },
  attacker: { id: '0a6b1f0e-3c0d-4e55-9d0e-000000000002', password: 'attacker-pw (test only)' },
  newcomer: { id: '0a6b1f0e-3c0d-4e55-9d0e-000000000003', password: 'newcomer-pw (test only)' },
} as const;
type Slug = keyof typeof TENANTS;

async function asMaster<T>(fn: (c: Client) => Promise<T>, database = 'tenants'): Promise<T> {
  const c = await pg().connect({ ...MASTER, database });
  c.on('error', () => undefined); // a session the server ends (the cluster stopping after a failed test) is not a crash
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const provision = (slug: Slug, plan: Plan = 'starter') => asMaster((c) => provisionTenantSchema(c, {
  slug, tenantId: TENANTS[slug].id, password: TENANTS[slug].password, database: 'tenants', limits: PLAN_PROFILES[plan].databaseRole,
}));
async function asTenant(slug: Slug, database = 'tenants'): Promise<Client> {
  const c = await pg().connect({ user: `tenant_${slug}_app`, password: TENANTS[slug].password, database });
  c.on('error', () => undefined);
  return c;
}
const migrations = set({ '0001_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY);' });
/** The keys main used: namespace "tena" + sha256(target) for a target, "tenb"/0 for the state table, hashtext('tenancy.provision'). */
const oldTargetKey = (target: string): [number, number] => [0x74656e61, createHash('sha256').update(target).digest().readInt32BE(0)];

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createDatabase('tenants', { owner: MASTER.user });
  // On RDS the master user owns the `postgres` database (template1 belongs to rdsadmin).
  await pg().query(`ALTER DATABASE postgres OWNER TO ${MASTER.user}`);
  await provision('victim');
  await provision('attacker');
});

describe('one tenant cannot starve or block the others', () => {
  test('the login role gets the plan connection limit: one tenant cannot take every slot', async () => {
    const limit = PLAN_PROFILES.starter.databaseRole.connectionLimit;
    const [role] = await pg().query<{ rolconnlimit: number }>("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'tenant_attacker_app'");
    expect(role.rolconnlimit).toBe(limit);
    const held: Client[] = [];
    try {
      for (let i = 0; i < limit; i++) held.push(await asTenant('attacker'));
      await expect(asTenant('attacker')).rejects.toThrow(/too many connections for role "tenant_attacker_app"/);
      // The other tenant still gets in.
      const victim = await asTenant('victim');
      await victim.end();
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
  });

  test('statement, lock and idle-in-transaction timeouts come from the plan and follow a plan change', async () => {
    const settings = async () => {
      const c = await asTenant('attacker');
      try {
        return (await c.query("SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock, current_setting('idle_in_transaction_session_timeout') AS idle")).rows[0];
      } finally {
        await c.end();
      }
    };
    const ms = (n: number) => (n % 1000 === 0 ? (n % 60_000 === 0 ? `${n / 60_000}min` : `${n / 1000}s`) : `${n}ms`);
    const starter = PLAN_PROFILES.starter.databaseRole;
    expect(await settings()).toEqual({ statement: ms(starter.statementTimeoutMs), lock: ms(starter.lockTimeoutMs), idle: ms(starter.idleInTransactionSessionTimeoutMs) });
    await provision('attacker', 'pro');
    const pro = PLAN_PROFILES.pro.databaseRole;
    expect(await settings()).toEqual({ statement: ms(pro.statementTimeoutMs), lock: ms(pro.lockTimeoutMs), idle: ms(pro.idleInTransactionSessionTimeoutMs) });
    expect((await pg().query<{ n: number }>("SELECT rolconnlimit AS n FROM pg_roles WHERE rolname = 'tenant_attacker_app'"))[0].n).toBe(pro.connectionLimit);
    await provision('attacker', 'starter');
  });

  test("advisory locks held by a tenant role (main's keys) block neither another tenant's migration nor provisioning", async () => {
    const attacker = await asTenant('attacker');
    try {
      await attacker.query("SELECT pg_advisory_lock(hashtext('tenancy.provision'))");
      await attacker.query('SELECT pg_advisory_lock($1, $2)', oldTargetKey('tenant_victim'));
      await attacker.query('SELECT pg_advisory_lock($1, $2)', [0x74656e62, 0]);

      await provision('newcomer');
      const connection = pg().clientConfig({ ...MASTER, database: 'tenants' });
      const run = await migrateTargets({ targets: [bridgeTarget({ slug: 'victim', connection })], migrations, lockRetries: 0 });
      expect(run.results.map((r) => [r.target, r.status])).toEqual([['tenant_victim', 'applied']]);
      // The platform's own locks are rows the tenant role cannot even see.
      await expect(attacker.query('SELECT * FROM tenancy.platform_locks FOR UPDATE')).rejects.toThrow(/permission denied for schema tenancy/);
    } finally {
      await attacker.end();
    }
  });

  test('provisioning waits for a held platform lock only as long as its timeout, then fails naming the lock', async () => {
    const other = await pg().connect({ ...MASTER, database: 'tenants' });
    try {
      await other.query('BEGIN');
      await other.query("SELECT 1 FROM tenancy.platform_locks WHERE name = 'provision' FOR UPDATE");
      await expect(asMaster((c) => provisionTenantSchema(c, {
        slug: 'newcomer', tenantId: TENANTS.newcomer.id, password: TENANTS.newcomer.password, database: 'tenants', limits: PLAN_PROFILES.starter.databaseRole, lockTimeoutMs: 50,
      }))).rejects.toThrow(/platform lock "provision" is held by another run of the platform; gave up after 50 ms/);
    } finally {
      await other.end();
    }
  });

  test('a tenant role cannot connect to the `postgres` database (nor keep a large object there)', async () => {
    await expect(asTenant('attacker', 'postgres')).rejects.toThrow(/permission denied for database "postgres"/);
    // The master user still can.
    await asMaster(async (c) => expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]), 'postgres');
  });

  test("erasure drops what the role owns in every database of the cluster (a large object in template1, which the master user does not own)", async () => {
    const c = await asTenant('attacker', 'template1');
    let oid: number;
    try {
      oid = (await c.query<{ oid: number }>('SELECT lo_create(0) AS oid')).rows[0].oid;
    } finally {
      await c.end();
    }
    const erased = await asMaster((admin) => eraseBridgeTenant(admin, 'attacker', {
      inDatabase: async (database, fn) => {
        const other = await pg().connect({ ...MASTER, database });
        try {
          return await fn(other as ClientBase);
        } finally {
          await other.end();
        }
      },
    }));
    expect(erased).toMatchObject({ schemaDropped: true, roleDropped: true });
    expect(await pg().query('SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1', [oid], 'template1')).toEqual([]);
    expect(await pg().query("SELECT 1 FROM pg_roles WHERE rolname = 'tenant_attacker_app'")).toEqual([]);
  });
});
