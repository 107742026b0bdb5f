// Reproduces: the role the CLI, worker and hooks run with rewrites the audit trail — it owned
// tenancy.audit_log, so it could disable the append-only trigger, UPDATE, DELETE, TRUNCATE, DROP
// or give the table away, and a superuser's edit left no trace. Fails on 0f20909 (main before the
// fix): every one of those statements succeeded as the master role that applied the migrations
// (and there was no `tenancy audit log --verify`, no chain, and the compliance report called the
// log "append-only" because two triggers existed).
import { Client, Pool, type ClientConfig } from 'pg';
import type { Command } from 'commander';
import { registerAuditLogCommand } from '../../lib/cli/audit-log-command';
import { collectEvidence } from '../../lib/compliance/evidence';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { repoSets } from '../migrate/helpers';
import { runCommand, type CliIo } from '../support/cli';
import { usePostgres } from '../support/postgres';

const pg = usePostgres();
/** The RDS-style master user (CREATEROLE, CREATEDB, not superuser) that applies the control-plane migrations. */
const MASTER = { user: 'cp_master', password: 'cp-master-pw (test only)' };
/** A login role the CLI, worker and hooks run with: member of tenancy_control_plane, no CREATEROLE. */
const WORKER = { user: 'cp_worker', password: 'cp-worker-pw (test only)' };
const AUDITOR = { user: 'cp_auditor', password: 'cp-auditor-pw (test only)' };
const TENANT = { id: '5b0f3c9e-0a51-4f7e-9a57-0d7c1f0e2a11', slug: 'acme-corp', model: 'bridge', plan: 'pro', region: 'us-east-1' } as const;

const as = (role: { user: string; password: string }, database: string): ClientConfig => pg().clientConfig({ ...role, database });
const urlOf = (role: { user: string; password: string }, database: string) =>
  `postgres://${role.user}:${encodeURIComponent(role.password)}@${pg().host}:${pg().port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg().tls!.caFile)}`;

async function migrate(database: string, toVersion?: number): Promise<void> {
  const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: as(MASTER, database) })], migrations: repoSets(), ...(toVersion ? { toVersion } : {}) });
  expect(run.results.map((r) => r.error ?? r.status)).toEqual([expect.stringMatching(/^(applied|up-to-date)$/)]);
}

/** A control plane migrated by the master, with entries written before and after 0004 (the chain covers both). */
async function controlPlane(database: string): Promise<void> {
  await pg().createDatabase(database, { owner: MASTER.user });
  await migrate(database, 3);
  await write(MASTER, database, 'before-0004');
  await migrate(database);
  await write(MASTER, database, 'after-0004');
}

async function write(role: { user: string; password: string }, database: string, label: string): Promise<void> {
  const pool = new Pool({ ...as(role, database), max: 2 });
  try {
    const cp = new ControlPlane(pool, `${role.user}@test`);
    await cp.upsertTenant({ ...TENANT, status: 'active', placement: { host: 'db.internal', port: 5432, label } });
    await cp.audit('test.entry', TENANT.id, { label, n: 1 });
    await cp.audit('test.entry', null, { label, n: 2 });
  } finally {
    await pool.end();
  }
}

async function withClient<T>(config: ClientConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(config);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const verify = (database: string, role = WORKER, extra: string[] = []) =>
  runCommand((program: Command, io: CliIo) => registerAuditLogCommand(program.command('audit'), io), ['audit', 'log', '--verify', '--json', '--control-plane-url', urlOf(role, database), ...extra]);

const ATTACKS: readonly [string, string][] = [
  ['disable the append-only trigger', 'ALTER TABLE tenancy.audit_log DISABLE TRIGGER ALL'],
  ['UPDATE an entry', "UPDATE tenancy.audit_log SET actor = 'someone else'"],
  ['DELETE entries', 'DELETE FROM tenancy.audit_log'],
  ['TRUNCATE the log', 'TRUNCATE tenancy.audit_log'],
  ['DROP the log', 'DROP TABLE tenancy.audit_log'],
  ['take the log over (ALTER … OWNER)', 'ALTER TABLE tenancy.audit_log OWNER TO CURRENT_USER'],
  ['rename the log away', 'ALTER TABLE tenancy.audit_log RENAME TO audit_log_old'],
  ['become its owner (SET ROLE)', 'SET ROLE tenancy_audit_owner'],
  ['move the chain head', 'UPDATE tenancy.audit_log_head SET seq = 0'],
  ['rename the schema away', 'ALTER SCHEMA tenancy RENAME TO tenancy_old'],
  ['drop the schema', 'DROP SCHEMA tenancy CASCADE'],
];

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createRole(WORKER.user, { password: WORKER.password });
  await pg().createRole(AUDITOR.user, { password: AUDITOR.password });
  await controlPlane('control_plane');
  // What an operator does once (README): the runtime login role gets the runtime privileges.
  await pg().query(`GRANT tenancy_control_plane TO ${WORKER.user}`);
  await write(WORKER, 'control_plane', 'as-worker');
  await pg().query(`GRANT USAGE ON SCHEMA tenancy TO ${AUDITOR.user}; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO ${AUDITOR.user}`, [], 'control_plane');
}, 120_000);

describe.each([
  ['the master role that applied the migrations (CREATEROLE)', MASTER],
  ['the runtime role of the CLI, worker and hooks', WORKER],
])('as %s', (_name, role) => {
  test.each(ATTACKS)('cannot %s', async (_what, sql) => {
    await withClient(as(role, 'control_plane'), async (c) => {
      await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' });
    });
  });

  test('can append, but not write the chain columns or backdate an entry', async () => {
    await withClient(as(role, 'control_plane'), async (c) => {
      for (const column of ['seq', 'prev_hash', 'hash', 'at']) {
        await expect(c.query(`INSERT INTO tenancy.audit_log (actor, action, ${column}) VALUES ('x', 'forged', DEFAULT)`)).rejects.toMatchObject({ code: '42501' });
      }
      const ok = await c.query("INSERT INTO tenancy.audit_log (actor, action, details) VALUES ('x', 'appended', '{}') RETURNING seq, prev_hash, hash");
      expect(ok.rows[0]).toMatchObject({ prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    });
    const r = await verify('control_plane');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

test('the log is owned by a NOLOGIN role nobody who logs in is a member of; the runtime role has INSERT and SELECT only', async () => {
  const [row] = await pg().query(
    `SELECT o.rolname AS owner, o.rolcanlogin AS login, s.rolname AS schema_owner,
            pg_has_role('cp_master', o.oid, 'USAGE') AS master_member, pg_has_role('cp_worker', o.oid, 'USAGE') AS worker_member,
            has_any_column_privilege('cp_worker', 'tenancy.audit_log', 'INSERT') AS ins, has_table_privilege('cp_worker', 'tenancy.audit_log', 'SELECT') AS sel,
            has_table_privilege('cp_worker', 'tenancy.audit_log', 'UPDATE') AS upd, has_table_privilege('cp_worker', 'tenancy.audit_log', 'DELETE') AS del,
            has_table_privilege('cp_worker', 'tenancy.audit_log', 'TRUNCATE') AS trunc, has_table_privilege('cp_master', 'tenancy.audit_log', 'UPDATE') AS master_upd
       FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles s ON s.oid = n.nspowner
      WHERE c.oid = 'tenancy.audit_log'::regclass`, [], 'control_plane');
  expect(row).toEqual({
    owner: 'tenancy_audit_owner', login: false, schema_owner: 'tenancy_audit_owner', master_member: false, worker_member: false,
    ins: true, sel: true, upd: false, del: false, trunc: false, master_upd: false,
  });
});

test('the runtime role finds the control plane up to date (what a worker checks when it starts) and cannot migrate it', async () => {
  const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: as(WORKER, 'control_plane') })], migrations: repoSets() });
  expect(run.results.map((r) => r.status)).toEqual(['up-to-date']);
});

test('0004 reverts (down to 0003: the master owns the log again, no chain) and reapplies, chaining what was written meanwhile', async () => {
  const database = 'cp_roundtrip';
  await controlPlane(database);
  const down = await migrateTargets({ targets: [controlPlaneTarget({ connection: as(MASTER, database) })], migrations: repoSets(), direction: 'down', toVersion: 3 });
  expect(down.results.map((r) => r.error ?? r.status)).toEqual(['applied']);
  expect(await pg().query("SELECT relowner::regrole::text AS owner FROM pg_class WHERE oid = 'tenancy.audit_log'::regclass", [], database)).toEqual([{ owner: MASTER.user }]);
  await write(MASTER, database, 'between');
  await migrate(database);
  expect((await verify(database, MASTER)).code).toBe(0);
});

test('an intact chain verifies: every entry, those written before 0004 included', async () => {
  const [{ n }] = await pg().query<{ n: number }>('SELECT count(*)::int AS n FROM tenancy.audit_log', [], 'control_plane');
  const r = await verify('control_plane', AUDITOR);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, entries: n, head: { seq: n } });
  // Entries written before the migration are chained too (seq 1 is the first entry ever written).
  const first = await pg().query("SELECT seq, action, details #>> '{placement,label}' AS label FROM tenancy.audit_log ORDER BY seq LIMIT 1", [], 'control_plane');
  expect(first).toEqual([{ seq: '1', action: 'tenant.registered', label: 'before-0004' }]);
});

test('concurrent writers chain linearly (no fork, no deadlock)', async () => {
  const pool = new Pool({ ...as(WORKER, 'control_plane'), max: 8 });
  try {
    const cp = new ControlPlane(pool, 'concurrent@test');
    await Promise.all(Array.from({ length: 40 }, (_, i) => cp.audit('test.concurrent', TENANT.id, { i })));
  } finally {
    await pool.end();
  }
  const r = await verify('control_plane');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).ok).toBe(true);
});

describe('a superuser edit (past every privilege) breaks the chain, and --verify names the first broken link', () => {
  let n = 0;
  const tamper = async (sql: string): Promise<{ code: number; report: any; database: string; ids: string[] }> => {
    const database = `cp_tamper_${++n}`;
    await controlPlane(database);
    const ids = (await pg().query<{ id: string }>('SELECT id::text FROM tenancy.audit_log ORDER BY seq', [], database)).map((r) => r.id);
    expect((await verify(database, MASTER)).code).toBe(0);
    await pg().query(`ALTER TABLE tenancy.audit_log DISABLE TRIGGER USER; ${sql.replace(/\$MIDDLE/g, ids[2]).replace(/\$LAST/g, ids[ids.length - 1]).replace(/\$SECOND/g, ids[1])}; ALTER TABLE tenancy.audit_log ENABLE TRIGGER USER`, [], database);
    const r = await verify(database, MASTER);
    return { code: r.code, report: JSON.parse(r.stdout), database, ids };
  };

  test('an entry rewritten (UPDATE with the triggers disabled)', async () => {
    const { code, report, ids } = await tamper(`UPDATE tenancy.audit_log SET details = '{"label":"nothing happened"}' WHERE id = $MIDDLE`);
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, break: { id: ids[2], seq: 3, field: 'hash' } });
    expect(report.break.expected).not.toBe(report.break.found);
  });

  test('an entry deleted from the middle', async () => {
    const { code, report, ids } = await tamper('DELETE FROM tenancy.audit_log WHERE id = $MIDDLE');
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, break: { id: ids[3], field: 'seq', expected: '3', found: '4' } });
  });

  test('two entries swapped (reordered)', async () => {
    const { code, report, ids } = await tamper(
      `UPDATE tenancy.audit_log SET seq = -seq WHERE id IN ($SECOND, $MIDDLE); UPDATE tenancy.audit_log SET seq = CASE WHEN id = $SECOND THEN 3 ELSE 2 END WHERE id IN ($SECOND, $MIDDLE)`,
    );
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, break: { id: ids[2], seq: 2 } });
  });

  test('the newest entry deleted (the chain head no longer matches)', async () => {
    const { code, report, ids } = await tamper('DELETE FROM tenancy.audit_log WHERE id = $LAST');
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, break: { field: 'head', id: ids[ids.length - 2], seq: ids.length - 1 } });
  });

  test('the whole chain recomputed after an edit still differs from a head recorded earlier (--anchor)', async () => {
    const database = `cp_tamper_${++n}`;
    await controlPlane(database);
    const before = JSON.parse((await verify(database, MASTER)).stdout);
    const anchor = `${before.head.seq}:${before.head.hash}`;
    expect((await verify(database, MASTER, ['--anchor', anchor])).code).toBe(0);
    // A superuser rewrites an entry and recomputes every hash after it, and the head.
    await pg().query(
      `ALTER TABLE tenancy.audit_log DISABLE TRIGGER USER;
       UPDATE tenancy.audit_log SET actor = 'nobody' WHERE seq = 2;
       DO $$ DECLARE r record; prev text := repeat('0', 64); h text; BEGIN
         FOR r IN SELECT * FROM tenancy.audit_log ORDER BY seq LOOP
           h := tenancy.audit_log_digest(prev, r.seq, r.id, r.at, r.actor, r.action, r.tenant_id, r.details);
           UPDATE tenancy.audit_log SET prev_hash = prev, hash = h WHERE id = r.id; prev := h;
         END LOOP;
         UPDATE tenancy.audit_log_head SET hash = prev; END $$;
       ALTER TABLE tenancy.audit_log ENABLE TRIGGER USER`, [], database);
    expect((await verify(database, MASTER)).code).toBe(0);
    const anchored = await verify(database, MASTER, ['--anchor', anchor]);
    expect(anchored.code).toBe(1);
    expect(JSON.parse(anchored.stdout)).toMatchObject({ ok: false, break: { field: 'anchor', seq: before.head.seq, expected: before.head.hash } });
  });

  test('PostgreSQL 15: the CREATEROLE master can grant itself the owner role back; what it then edits is detected', async () => {
    const database = `cp_tamper_${++n}`;
    await controlPlane(database);
    await withClient(as(MASTER, database), async (c) => {
      await c.query('GRANT tenancy_audit_owner TO cp_master');
      try {
        await c.query("SET ROLE tenancy_audit_owner; ALTER TABLE tenancy.audit_log DISABLE TRIGGER USER; UPDATE tenancy.audit_log SET action = 'rewritten' WHERE seq = 1; ALTER TABLE tenancy.audit_log ENABLE TRIGGER USER; RESET ROLE");
      } finally {
        await c.query('RESET ROLE; REVOKE tenancy_audit_owner FROM cp_master');
      }
    });
    const r = await verify(database, MASTER);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, break: { seq: 1, field: 'hash' } });
  });
});

describe('compliance evidence: "append-only enforced" comes from ownership, privileges and the chain', () => {
  const tenant = { ...TENANT } as unknown as Tenant;
  const evidence = async (database: string) => {
    const fleet = await collectEvidence([tenant], { controlPlaneUrl: urlOf(AUDITOR, database) });
    const e = fleet.byTenant.get(TENANT.slug)!;
    expect(e.errors).toEqual([]);
    return e;
  };

  test('enforced on an untouched control plane', async () => {
    const e = await evidence('control_plane');
    expect(e.controlPlane!.auditLog).toMatchObject({ appendOnly: true, appendOnlyProblems: [], chain: { ok: true } });
    expect(e.problems.filter((p) => /append-only/.test(p))).toEqual([]);
  });

  test('not enforced once a login role may UPDATE the log, even with both triggers in place', async () => {
    const database = 'cp_grant';
    await controlPlane(database);
    await pg().query(`GRANT USAGE ON SCHEMA tenancy TO ${AUDITOR.user}; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO ${AUDITOR.user}; GRANT UPDATE ON tenancy.audit_log TO ${WORKER.user}`, [], database);
    const e = await evidence(database);
    expect(e.controlPlane!.auditLog.appendOnly).toBe(false);
    expect(e.controlPlane!.auditLog.appendOnlyProblems).toEqual([expect.stringMatching(/cp_worker .*UPDATE/)]);
    expect(e.problems).toEqual(expect.arrayContaining([expect.stringMatching(/audit log is not append-only.*cp_worker/)]));
  });

  test('not enforced when the chain is broken', async () => {
    const database = 'cp_broken';
    await controlPlane(database);
    await pg().query(`GRANT USAGE ON SCHEMA tenancy TO ${AUDITOR.user}; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO ${AUDITOR.user};
      ALTER TABLE tenancy.audit_log DISABLE TRIGGER USER; DELETE FROM tenancy.audit_log WHERE seq = 2; ALTER TABLE tenancy.audit_log ENABLE TRIGGER USER`, [], database);
    const e = await evidence(database);
    expect(e.controlPlane!.auditLog).toMatchObject({ appendOnly: false, chain: { ok: false, break: { field: 'seq' } } });
  });

  test('not enforced when a login role is a member of the owner', async () => {
    const database = 'cp_member';
    await controlPlane(database);
    await pg().query(`GRANT USAGE ON SCHEMA tenancy TO ${AUDITOR.user}; GRANT SELECT ON ALL TABLES IN SCHEMA tenancy TO ${AUDITOR.user}`, [], database);
    await pg().query(`GRANT tenancy_audit_owner TO ${WORKER.user}`);
    try {
      const e = await evidence(database);
      expect(e.controlPlane!.auditLog.appendOnly).toBe(false);
      expect(e.controlPlane!.auditLog.appendOnlyProblems).toEqual(expect.arrayContaining([expect.stringMatching(/cp_worker .*member of tenancy_audit_owner/)]));
    } finally {
      await pg().query(`REVOKE tenancy_audit_owner FROM ${WORKER.user}`);
    }
  });
});
