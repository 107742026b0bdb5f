/**
 * How the real PgBouncer 1.18 authenticates clients and logs into PostgreSQL 15 (scram-sha-256
 * over TLS), with auth_file entries rendered by renderUserlist, and that server TLS verification
 * really verifies (a wrong CA or a host name not in the certificate is refused).
 *
 * PgBouncer 1.18 can log into a scram-sha-256 server with either
 *  - the plain-text password in the userlist (it then runs SCRAM itself), or
 *  - the role's SCRAM verifier, byte for byte the one the server stores (same salt and
 *    iterations), via SCRAM pass-through: it reuses the keys the client proved while
 *    authenticating to PgBouncer with SCRAM. A verifier of the same password with another salt
 *    lets clients into PgBouncer but not into the server.
 */
import { Client } from 'pg';
import { tenantNames } from '../../lib/naming';
import type { PgbouncerSettings } from '../../lib/pgbouncer/pgbouncer-config';
import { PgbouncerProcess, usePgbouncer } from '../support/pgbouncer';
import { generateSelfSignedCert, scramSha256Verifier, usePostgres } from '../support/postgres';

const DB = tenantNames('acme').database;
const pg = usePostgres();

/** Roles of the tests and their passwords; the quote, space, ; # = exercise the userlist's quoting. */
const PLAIN = { role: 'plain_app', password: `pa"ss word;#='x'` };
const VERIFIER = { role: 'verifier_app', password: 'provisioned elsewhere' };
const SERVER_VERIFIER = { role: 'server_verifier_app', password: 'from pg_authid' };
const OTHER_SALT = { role: 'other_salt_app', password: 'same password, other salt' };
/** Used only where the server must never see a connection of the role. */
const NEVER_CONNECTED = { role: 'tls_refused_app', password: 'never reaches the server' };

beforeAll(async () => {
  await pg().createDatabase(DB);
  await pg().createRole(PLAIN.role, { password: PLAIN.password });
  await pg().createRole(SERVER_VERIFIER.role, { password: SERVER_VERIFIER.password });
  await pg().createRole(OTHER_SALT.role, { password: OTHER_SALT.password });
  await pg().createRole(VERIFIER.role);
  await pg().createRole(NEVER_CONNECTED.role, { password: NEVER_CONNECTED.password });
});

const baseSettings = (): Omit<PgbouncerSettings, 'listenAddr' | 'listenPort' | 'authFile' | 'unixSocketDir' | 'pidfile' | 'logfile'> => ({
  host: pg().host,
  port: pg().port,
  dbname: DB,
  serverTlsCaFile: pg().tls!.caFile,
  defaultPoolSize: 2,
  maxClientConn: 20,
});

/** Connects through PgBouncer and returns current_user and whether the server connection uses TLS. */
async function whoAmI(bouncer: PgbouncerProcess, user: string, password: string): Promise<{ user: string; ssl: boolean }> {
  const client = new Client(bouncer.clientConfig({ user, password, database: DB }));
  try {
    await client.connect();
    const { rows } = await client.query<{ user: string; ssl: boolean }>('SELECT current_user AS user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return rows[0];
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('auth_file secrets (renderUserlist) and server login', () => {
  // A verifier computed by a provisioning step and set with ALTER ROLE … PASSWORD '<verifier>':
  // the path that works on RDS, where pg_authid cannot be read. Server and PgBouncer hold the
  // same verifier; the password itself is never given to either.
  const provisioned = scramSha256Verifier(VERIFIER.password);

  const bouncer = usePgbouncer(async () => {
    await pg().setPassword(VERIFIER.role, provisioned);
    return {
      settings: baseSettings(),
      users: [
        { name: PLAIN.role, secret: PLAIN.password },
        { name: VERIFIER.role, secret: provisioned },
        { name: SERVER_VERIFIER.role, secret: await pg().storedPassword(SERVER_VERIFIER.role) },
        { name: OTHER_SALT.role, secret: scramSha256Verifier(OTHER_SALT.password) },
      ],
    };
  });

  test('the userlist is rendered with quotes doubled', () => {
    expect(bouncer().readUserlist().split('\n')[0]).toBe(`"plain_app" "pa""ss word;#='x'"`);
  });

  test('a plain-text password (with quotes, spaces, ; # =) logs the client in and PgBouncer into the server', async () => {
    expect(await whoAmI(bouncer(), PLAIN.role, PLAIN.password)).toEqual({ user: PLAIN.role, ssl: true });
  });

  test("the server's own SCRAM verifier (from pg_authid) works by SCRAM pass-through", async () => {
    expect(await whoAmI(bouncer(), SERVER_VERIFIER.role, SERVER_VERIFIER.password)).toEqual({ user: SERVER_VERIFIER.role, ssl: true });
  });

  test('a verifier set on the role with ALTER ROLE … PASSWORD is stored verbatim and works by pass-through', async () => {
    expect(await pg().storedPassword(VERIFIER.role)).toBe(provisioned);
    expect(await whoAmI(bouncer(), VERIFIER.role, VERIFIER.password)).toEqual({ user: VERIFIER.role, ssl: true });
  });

  test('a verifier of the right password with another salt gets the client into PgBouncer but not into the server', async () => {
    await expect(whoAmI(bouncer(), OTHER_SALT.role, OTHER_SALT.password)).rejects.toThrow(/password authentication failed for user "other_salt_app"/);
    expect(bouncer().readLog()).toMatch(/server login failed: FATAL password authentication failed for user "other_salt_app"/);
  });

  test.each([
    ['a wrong password (plain-text entry)', PLAIN.role, 'wrong'],
    ['a wrong password (verifier entry)', VERIFIER.role, 'wrong'],
    ['a user missing from the userlist', 'nobody', 'x'],
  ])('%s is refused by PgBouncer itself', async (_what, user, password) => {
    await expect(whoAmI(bouncer(), user, password)).rejects.toThrow(/SASL authentication failed|password authentication failed/);
    expect(bouncer().readLog()).toMatch(new RegExp(`${user}@127\\.0\\.0\\.1:\\d+ closing because: (SASL|password) authentication failed`));
  });
});

describe('server TLS verification', () => {
  const users = () => [{ name: PLAIN.role, secret: PLAIN.password }, { name: NEVER_CONNECTED.role, secret: NEVER_CONNECTED.password }];

  /**
   * Starts a client login through a PgBouncer with `settings`, waits for PgBouncer to log the
   * TLS failure towards the server (the client would wait client_login_timeout, 60 s), then
   * checks the server never got a connection of the role.
   */
  async function expectServerTlsRefused(settings: Partial<PgbouncerSettings>, logged: RegExp): Promise<void> {
    const bouncer = await PgbouncerProcess.start({ settings: { ...baseSettings(), ...settings }, users: users() });
    const client = new Client(bouncer.clientConfig({ user: NEVER_CONNECTED.role, password: NEVER_CONNECTED.password, database: DB }));
    try {
      const connecting = client.connect().then(() => 'connected', (e: Error) => e.message);
      expect(await bouncer.waitForLog(logged)).toBe(true);
      const backends = await pg().query('SELECT pid FROM pg_stat_activity WHERE usename = $1', [NEVER_CONNECTED.role]);
      expect(backends).toEqual([]);
      await bouncer.stop();
      expect(await connecting).not.toBe('connected');
    } finally {
      await client.end().catch(() => undefined);
      await bouncer.stop();
    }
  }

  test('verify-full refuses a server certificate that the CA file did not sign', async () => {
    const dir = pg().dir;
    const stranger = generateSelfSignedCert(dir, { name: 'stranger-ca', commonName: 'localhost' });
    await expectServerTlsRefused({ serverTlsCaFile: stranger.caFile }, /TLS handshake error: .*certificate verify failed/);
  });

  test('verify-full refuses a host name the certificate is not for (127.0.0.1 vs CN=localhost)', async () => {
    await expectServerTlsRefused({ host: '127.0.0.1' }, /TLS handshake error: name `127\.0\.0\.1' not present in server certificate/);
  });

  test('verify-ca accepts the same connection: only the host name check failed above', async () => {
    const bouncer = await PgbouncerProcess.start({ settings: { ...baseSettings(), host: '127.0.0.1', serverTlsSslmode: 'verify-ca' }, users: users() });
    try {
      expect(await whoAmI(bouncer, PLAIN.role, PLAIN.password)).toEqual({ user: PLAIN.role, ssl: true });
    } finally {
      await bouncer.stop();
    }
  });
});
