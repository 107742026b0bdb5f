/**
 * The real PgBouncer (Debian's 1.18), configured by renderPgbouncerIni, in front of a real
 * PostgreSQL 15 that accepts TCP only over TLS with scram-sha-256: transaction pooling serves
 * many more clients than server connections, never opens more than the pool, keeps SET LOCAL
 * inside its transaction (and lets a session SET leak, which is why tenant context must be
 * transaction-scoped), talks TLS to the server, and refuses startup parameters it cannot honour.
 */
import { Client } from 'pg';
import { pgbouncerSettingsForPlan } from '../../lib/pgbouncer/pgbouncer-config';
import { platformNames, tenantNames } from '../../lib/naming';
import { usePgbouncer, type PgbouncerProcess } from '../support/pgbouncer';
import { usePostgres } from '../support/postgres';

const tenant = tenantNames('acme');
const DB = tenant.database; // tenant_acme
const APP = tenant.role; // tenant_acme_app
const PASSWORD = 'correct horse battery staple';
const TENANT_SETTING = platformNames('test').poolTenantSetting; // app.tenant_id

const pg = usePostgres();

beforeAll(async () => {
  await pg().createRole(APP, { password: PASSWORD });
  await pg().createDatabase(DB, { owner: APP });
});

/** Server connections (backends) of the app role in the tenant database, as PostgreSQL itself sees them. */
async function serverConnections(admin: Client): Promise<{ pid: number; ssl: boolean; waitingOnLock: boolean }[]> {
  const { rows } = await admin.query<{ pid: number; ssl: boolean; waiting_on_lock: boolean }>(
    `SELECT a.pid, s.ssl, coalesce(a.wait_event_type = 'Lock', false) AS waiting_on_lock
       FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
      WHERE a.datname = $1 AND a.usename = $2 AND a.backend_type = 'client backend'`,
    [DB, APP],
  );
  return rows.map((r) => ({ pid: r.pid, ssl: r.ssl, waitingOnLock: r.waiting_on_lock }));
}

/** A client of PgBouncer, connected; the caller ends it. */
async function connectThroughPgbouncer(bouncer: PgbouncerProcess): Promise<Client> {
  const client = new Client(bouncer.clientConfig({ user: APP, password: PASSWORD, database: DB }));
  await client.connect();
  return client;
}

describe('a pool of 10 in transaction mode (TLS verify-full to the server, SCRAM pass-through)', () => {
  const POOL = 10;
  const CLIENTS = 200;
  /** Advisory lock every client transaction waits on until the test has seen the pool saturated. */
  const GATE = 424242;

  const bouncer = usePgbouncer(async () => ({
    settings: pgbouncerSettingsForPlan('starter', {
      host: pg().host,
      port: pg().port,
      dbname: DB,
      serverTlsSslmode: 'verify-full',
      serverTlsCaFile: pg().tls!.caFile,
      defaultPoolSize: POOL,
      reservePoolSize: 0,
      maxClientConn: CLIENTS + 50,
    }),
    // The role's SCRAM verifier exactly as the server stores it: PgBouncer verifies the client
    // with it and, because the client authenticated with SCRAM, logs into the server with the
    // keys the client proved (pass-through). No plain password on PgBouncer's disk.
    users: [{ name: APP, secret: await pg().storedPassword(APP) }],
  }));

  test('the rendered configuration is the one PgBouncer runs', () => {
    expect(bouncer().ini).toMatch(/^pool_mode = transaction$/m);
    expect(bouncer().ini).toMatch(/^default_pool_size = 10$/m);
    expect(bouncer().ini).toMatch(/^reserve_pool_size = 0$/m);
    expect(bouncer().ini).toMatch(/^server_tls_sslmode = verify-full$/m);
    expect(bouncer().ini).toMatch(/^auth_type = scram-sha-256$/m);
    expect(bouncer().readUserlist()).toMatch(/^"tenant_acme_app" "SCRAM-SHA-256\$4096:/);
  });

  test('200 concurrent clients, each in its own transaction, are all served by at most 10 server connections', async () => {
    const admin = await pg().connect({ database: DB });
    const clients: Client[] = [];
    try {
      // Hold the gate: every client transaction blocks on it, so the pool must fill up.
      await admin.query('SELECT pg_advisory_lock($1)', [GATE]);

      for (let i = 0; i < CLIENTS; i++) clients.push(new Client(bouncer().clientConfig({ user: APP, password: PASSWORD, database: DB })));
      await Promise.all(clients.map((c) => c.connect()));

      let running = true;
      const samples: number[] = [];
      const transactions = Promise.all(clients.map(async (client, i) => {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock_shared($1)', [GATE]);
        const { rows } = await client.query<{ pid: number; client: number }>('SELECT pg_backend_pid() AS pid, $1::int AS client, pg_sleep(0.02)', [i]);
        await client.query('COMMIT');
        return rows[0];
      })).finally(() => {
        running = false;
      });

      // Wait (bounded by the test timeout) until PostgreSQL shows the pool saturated: 10 server
      // connections, all blocked on the gate, while 190 clients queue inside PgBouncer.
      for (;;) {
        const conns = await serverConnections(admin);
        samples.push(conns.length);
        if (conns.filter((c) => c.waitingOnLock).length >= POOL) break;
      }
      await admin.query('SELECT pg_advisory_unlock($1)', [GATE]);

      // Keep sampling from the server while the transactions run through the pool.
      while (running) samples.push((await serverConnections(admin)).length);
      const results = await transactions;
      samples.push((await serverConnections(admin)).length);

      expect(results).toHaveLength(CLIENTS);
      expect(results.map((r) => r.client)).toEqual(clients.map((_, i) => i));
      const pids = new Set(results.map((r) => r.pid));
      expect(pids.size).toBeLessThanOrEqual(POOL);
      expect(Math.max(...samples)).toBe(POOL);
      expect(samples.every((n) => n <= POOL)).toBe(true);
      // Every backend a client saw is one of the pooled server connections PostgreSQL reports.
      const serverPids = new Set((await serverConnections(admin)).map((c) => c.pid));
      for (const pid of pids) expect(serverPids).toContain(pid);
    } finally {
      await admin.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await admin.end();
    }
  });

  test('every server connection PgBouncer opened uses TLS (pg_stat_ssl on the server)', async () => {
    const client = await connectThroughPgbouncer(bouncer());
    try {
      await client.query('SELECT 1');
      const conns = await pg().withAdmin((admin) => serverConnections(admin), DB);
      expect(conns.length).toBeGreaterThan(0);
      expect(conns.every((c) => c.ssl)).toBe(true);
      const { rows } = await client.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0].ssl).toBe(true);
      expect(rows[0].version).toMatch(/^TLSv1\.[23]$/);
    } finally {
      await client.end();
    }
    expect(bouncer().readLog()).toMatch(/SSL established: TLSv1\.[23]/);
  });

  test('a startup parameter PgBouncer cannot track (options / search_path) is refused, not silently dropped', async () => {
    const client = new Client({ ...bouncer().clientConfig({ user: APP, password: PASSWORD, database: DB }), options: `-c search_path=${tenant.schema}` });
    await expect(client.connect()).rejects.toThrow(/unsupported startup parameter: options/);
    await client.end().catch(() => undefined);
  });
});

describe('transaction-mode semantics on one shared server connection (pool of 1)', () => {
  const bouncer = usePgbouncer(async () => ({
    settings: { host: pg().host, port: pg().port, dbname: DB, serverTlsCaFile: pg().tls!.caFile, defaultPoolSize: 1, maxClientConn: 10 },
    users: [{ name: APP, secret: await pg().storedPassword(APP) }],
  }));

  /** Runs `statements` as one transaction; returns the last statement's first row. */
  async function inTransaction(client: Client, ...statements: string[]): Promise<Record<string, any>> {
    await client.query('BEGIN');
    let row: Record<string, any> = {};
    for (const sql of statements) row = (await client.query(sql)).rows[0];
    await client.query('COMMIT');
    return row;
  }

  const readTenant = `SELECT current_setting('${TENANT_SETTING}', true) AS tenant, pg_backend_pid() AS pid`;

  test('SET LOCAL stays in its transaction: the next client on the same server connection does not see it', async () => {
    const a = await connectThroughPgbouncer(bouncer());
    const b = await connectThroughPgbouncer(bouncer());
    try {
      const inA = await inTransaction(a, `SET LOCAL ${TENANT_SETTING} = 'tenant-a'`, readTenant);
      expect(inA.tenant).toBe('tenant-a');
      const inB = await inTransaction(b, readTenant);
      expect(inB.pid).toBe(inA.pid); // the same server connection served both clients
      expect(inB.tenant === '' || inB.tenant === null).toBe(true);
      // set_config(..., is_local => true) is the same thing, usable with a bound parameter.
      const viaSetConfig = await inTransaction(a, `SELECT set_config('${TENANT_SETTING}', 'tenant-c', true)`, readTenant);
      expect(viaSetConfig).toMatchObject({ tenant: 'tenant-c', pid: inA.pid });
      expect((await inTransaction(b, readTenant)).tenant).not.toBe('tenant-c');
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  test('a session-level SET leaks to whichever client gets the server connection next (tenant context must be transaction-scoped)', async () => {
    const a = await connectThroughPgbouncer(bouncer());
    const b = await connectThroughPgbouncer(bouncer());
    try {
      await a.query(`SET ${TENANT_SETTING} = 'tenant-a'`);
      const setter = (await a.query(readTenant)).rows[0];
      expect(setter.tenant).toBe('tenant-a');
      const seenByB = (await b.query(readTenant)).rows[0];
      expect(seenByB.pid).toBe(setter.pid);
      expect(seenByB.tenant).toBe('tenant-a'); // client b now runs as tenant a
      // Clean up for the other tests: reset the session state on the shared connection.
      await b.query('RESET ALL');
      expect((await a.query(readTenant)).rows[0].tenant).toBe('');
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});
