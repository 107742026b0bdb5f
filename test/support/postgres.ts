/**
 * Throwaway PostgreSQL 15 clusters for tests that need a real server (PgBouncer, RLS, migrations).
 *
 * A cluster lives in its own temporary directory owned by the `postgres` OS user (initdb and
 * postgres refuse to run as root), listens on a free port on the loopback addresses and on a
 * Unix socket in that directory, and by default accepts TCP only over TLS with a self-signed
 * certificate for CN=localhost (generated with openssl; the certificate is its own CA, so
 * clients can use verify-full against `cluster.tls.caFile`). The `postgres` superuser connects
 * over the Unix socket without a password (`cluster.adminConfig()`); every other role logs in
 * over TCP with scram-sha-256.
 *
 *   const pg = usePostgres();                 // beforeAll: start, afterAll: stop (even on failure)
 *   await pg().createRole('app', { password: 'secret' });
 *   await pg().createDatabase('app_db', { owner: 'app' });
 *   const client = new Client(pg().clientConfig({ user: 'app', password: 'secret', database: 'app_db' }));
 *
 * Set TENANCY_PG_BIN to use other PostgreSQL binaries, TENANCY_KEEP_TEST_DIRS=1 to keep the
 * directories (data, logs, certificates) of stopped clusters for debugging.
 */
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { freePort } from '../../lib/local/free-port';

export { freePort };

/** Directory of initdb, pg_ctl and postgres: TENANCY_PG_BIN, else Debian's PostgreSQL 15, else the newest major installed. */
export const PG_BIN = process.env.TENANCY_PG_BIN ?? debianPgBin();

function debianPgBin(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(join(root, '15', 'bin', 'initdb'))) return join(root, '15', 'bin');
  const majors = existsSync(root)
    ? readdirSync(root).filter((v) => /^[0-9]+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  return join(root, majors[0] ?? '15', 'bin');
}
/** OS user that runs PostgreSQL and PgBouncer when the tests run as root. */
export const SERVICE_OS_USER = 'postgres';
/** Keep the directories of stopped clusters and poolers (debugging). */
export const KEEP_TEST_DIRS = Boolean(process.env.TENANCY_KEEP_TEST_DIRS);
/** Longest one command (initdb, pg_ctl, openssl) may run before the test fails instead of hanging. */
const COMMAND_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Process and file helpers shared with test/support/pgbouncer.ts
// ---------------------------------------------------------------------------------------------

let serviceIds: { uid: number; gid: number } | undefined | null = null;

/**
 * The uid/gid to run PostgreSQL and PgBouncer as: the `postgres` OS user when the tests run as
 * root (both refuse root), undefined (the current user) otherwise.
 */
export function serviceUser(): { uid: number; gid: number } | undefined {
  if (serviceIds !== null) return serviceIds;
  if (process.getuid?.() !== 0) return (serviceIds = undefined);
  try {
    const uid = Number(execFileSync('id', ['-u', SERVICE_OS_USER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', SERVICE_OS_USER], { encoding: 'utf8' }).trim());
    return (serviceIds = { uid, gid });
  } catch {
    throw new Error(`tests run as root, and PostgreSQL/PgBouncer refuse root, but there is no "${SERVICE_OS_USER}" OS user (install postgresql-15)`);
  }
}

/** The environment of a service process: no inherited PG* variables, a HOME it can read. */
export function serviceEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^PG/.test(k)) env[k] = v;
  return { ...env, HOME: home, LC_ALL: 'C', LANG: 'C', ...extra };
}

/** Runs a command as the service user (see {@link serviceUser}); throws with its output on failure. */
export function runAsService(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): string {
  const ids = serviceUser();
  const opts: ExecFileSyncOptions = {
    cwd: options.cwd,
    env: options.env ?? serviceEnv(options.cwd),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: COMMAND_TIMEOUT_MS,
    ...(ids ?? {}),
  };
  try {
    return execFileSync(command, args, opts) as unknown as string;
  } catch (e: any) {
    const why = e.code === 'ENOENT' ? 'not found (install postgresql-15, or set TENANCY_PG_BIN)' : e.signal ? `killed by ${e.signal}` : `exit ${e.status ?? e.code}`;
    throw new Error(`${command} ${args.join(' ')} failed: ${why}\n${[e.stderr, e.stdout].filter(Boolean).join('\n').trim()}`);
  }
}

/** A temporary directory owned by the service user (mode 0700). */
export function makeServiceDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chownToService(dir);
  chmodSync(dir, 0o700);
  return dir;
}

/** Gives `path` (recursively) to the service user, so PostgreSQL/PgBouncer can read what root wrote. */
export function chownToService(path: string): void {
  const ids = serviceUser();
  if (!ids) return;
  chownSync(path, ids.uid, ids.gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownToService(join(path, entry));
}

/** Writes a file the service user owns (mode 0600 by default: keys and secrets). */
export function writeServiceFile(path: string, content: string, mode = 0o600): string {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  chownToService(path);
  return path;
}


export function removeDir(dir: string): void {
  if (!KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
}

const readIfExists = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

// ---------------------------------------------------------------------------------------------
// TLS and SCRAM
// ---------------------------------------------------------------------------------------------

/** A self-signed certificate: it is its own CA, so `caFile` is the certificate itself. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/**
 * Generates a self-signed certificate with openssl (P-256 key, valid 2 days) for
 * CN=`commonName`, with subjectAltName `altNames` (default DNS:<commonName>). Files are written
 * to `dir` as `<name>.crt` / `<name>.key`, owned by the service user, the key mode 0600.
 */
export function generateSelfSignedCert(dir: string, options: { name?: string; commonName?: string; altNames?: readonly string[] } = {}): TlsFiles {
  const name = options.name ?? 'server';
  const cn = options.commonName ?? 'localhost';
  const san = (options.altNames ?? [`DNS:${cn}`]).join(',');
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '2',
      '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-keyout', keyFile, '-out', certFile,
    ], { stdio: ['ignore', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS });
  } catch (e: any) {
    throw new Error(`openssl could not generate a certificate for CN=${cn}: ${e.stderr ?? e.message}`);
  }
  chmodSync(keyFile, 0o600);
  chmodSync(certFile, 0o644);
  chownToService(keyFile);
  chownToService(certFile);
  return { certFile, keyFile, caFile: certFile };
}

/** Moved to the library (provisioning uses it); re-exported for the tests. */
export { scramSha256Verifier } from '../../lib/db/scram';

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

export interface PostgresOptions {
  /** Serve TLS with a self-signed certificate and accept TCP logins only over TLS. @default true */
  readonly ssl?: boolean;
  /** Host name the certificate is issued for (CN and the only subjectAltName). @default "localhost" */
  readonly certificateHost?: string;
  /** Extra postgresql.conf settings (they win over the defaults here). */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /**
   * pg_hba.conf lines replacing the default: `local all all trust` plus, over TCP on the loopback
   * addresses, `hostssl … scram-sha-256` when ssl (TCP without TLS rejected), `host … scram-sha-256` otherwise.
   */
  readonly hba?: readonly string[];
}

export interface RoleOptions {
  /** Password, stored as a SCRAM verifier; a string already in verifier form is stored as is. @default none (no password login) */
  readonly password?: string;
  /** @default true */
  readonly login?: boolean;
  /** @default false */
  readonly superuser?: boolean;
  /** Extra role attributes, e.g. ["CREATEDB", "BYPASSRLS"] (checked against a fixed list). */
  readonly attributes?: readonly string[];
}

const ROLE_ATTRIBUTES = new Set(['CREATEDB', 'NOCREATEDB', 'CREATEROLE', 'NOCREATEROLE', 'INHERIT', 'NOINHERIT', 'REPLICATION', 'NOREPLICATION', 'BYPASSRLS', 'NOBYPASSRLS']);
const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/;

/** Clusters still running in this process, stopped at exit if a test forgot (or crashed before afterAll). */
const running = new Set<PostgresCluster>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cluster of running) cluster.stopNowSync();
  });
}

/** A running throwaway PostgreSQL cluster. Create with {@link PostgresCluster.start} or {@link usePostgres}. */
export class PostgresCluster {
  /** Host name for TCP clients (the certificate's name). */
  readonly host: string;
  readonly dataDir: string;
  /** Directory of the Unix socket (also `host` for a Unix-socket client). */
  readonly socketDir: string;
  readonly logFile: string;
  /** The superuser, reached over the Unix socket without password. */
  readonly superuser = 'postgres';
  private stopped = false;

  private constructor(
    /** The cluster's temporary directory (data, socket, log, certificates). */
    readonly dir: string,
    readonly port: number,
    /** The server certificate; undefined when started with ssl: false. */
    readonly tls: TlsFiles | undefined,
    host: string,
  ) {
    this.host = host;
    this.dataDir = join(dir, 'data');
    this.socketDir = dir;
    this.logFile = join(dir, 'postgres.log');
  }

  /**
   * initdb + pg_ctl start (which waits until the server accepts connections) on a free port,
   * retried on another port if the chosen one was taken meanwhile. On any failure everything
   * started so far is stopped and removed, and the error carries the server log.
   */
  static async start(options: PostgresOptions = {}): Promise<PostgresCluster> {
    const ssl = options.ssl ?? true;
    const certHost = options.certificateHost ?? 'localhost';
    const dir = makeServiceDir('tenancy-pg-');
    try {
      const tls = ssl ? generateSelfSignedCert(dir, { name: 'server', commonName: certHost }) : undefined;
      const dataDir = join(dir, 'data');
      runAsService(join(PG_BIN, 'initdb'), [
        '-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256',
        '--encoding=UTF8', '--locale=C', '--no-sync',
      ], { cwd: dir });
      const loopback = ['127.0.0.1/32', '::1/128'];
      const hba = options.hba ?? [
        'local all all trust',
        ...loopback.map((net) => `${ssl ? 'hostssl' : 'host'} all all ${net} scram-sha-256`),
      ];
      writeFileSync(join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        const settings: Record<string, string | number | boolean> = {
          listen_addresses: '127.0.0.1,::1',
          port,
          unix_socket_directories: dir,
          password_encryption: 'scram-sha-256',
          max_connections: 100,
          fsync: false,
          synchronous_commit: false,
          full_page_writes: false,
          log_connections: true,
          log_disconnections: true,
          log_line_prefix: '%m [%p] %q%u@%d ',
          ...(tls ? { ssl: true, ssl_cert_file: tls.certFile, ssl_key_file: tls.keyFile } : {}),
          ...options.settings,
        };
        writeFileSync(join(dataDir, 'postgresql.auto.conf'), renderSettings(settings));
        chownToService(dataDir);
        const cluster = new PostgresCluster(dir, port, tls, certHost);
        try {
          runAsService(join(PG_BIN, 'pg_ctl'), ['start', '-D', dataDir, '-l', cluster.logFile, '-w', '-t', '60', '-s'], { cwd: dir });
        } catch (e) {
          const log = readIfExists(cluster.logFile);
          // Nothing to stop if it did not start; another process took the port between freePort() and bind().
          if (attempt < 3 && /could not bind|already in use/i.test(log)) {
            writeFileSync(cluster.logFile, '');
            continue;
          }
          cluster.stopNowSync();
          throw new Error(`${(e as Error).message}\n--- postgres log ---\n${log}`);
        }
        running.add(cluster);
        installExitHook();
        await cluster.query('SELECT 1');
        return cluster;
      }
    } catch (e) {
      removeDir(dir);
      throw e;
    }
  }

  /** Connection settings of the superuser over the Unix socket (trust). */
  adminConfig(database = 'postgres'): ClientConfig {
    return { host: this.socketDir, port: this.port, user: this.superuser, database };
  }

  /** Connection settings of a role over TCP, with TLS verify-full against the cluster's certificate when it has one. */
  clientConfig(options: { user: string; password?: string; database: string }): ClientConfig {
    return {
      host: this.host,
      port: this.port,
      user: options.user,
      password: options.password,
      database: options.database,
      ssl: this.tls ? { ca: readFileSync(this.tls.caFile, 'utf8'), servername: this.host, rejectUnauthorized: true } : false,
    };
  }

  /** A connected client: the superuser over the Unix socket without `user`, else the role over TCP+TLS. The caller ends it. */
  async connect(options: { user?: string; password?: string; database?: string } = {}): Promise<Client> {
    const client = new Client(options.user === undefined
      ? this.adminConfig(options.database)
      : this.clientConfig({ user: options.user, password: options.password, database: options.database ?? 'postgres' }));
    await client.connect();
    return client;
  }

  /** Runs `fn` with a connected superuser client, then closes it. */
  async withAdmin<T>(fn: (client: Client) => Promise<T>, database = 'postgres'): Promise<T> {
    const client = await this.connect({ database });
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  /** One query as the superuser; returns the rows. */
  async query<R extends Record<string, any> = Record<string, any>>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    return this.withAdmin(async (c) => (await c.query<R>(sql, params)).rows, database);
  }

  /** CREATE ROLE; the name is quoted as an identifier, the password as a literal. */
  async createRole(name: string, options: RoleOptions = {}): Promise<void> {
    const attributes = [
      options.login ?? true ? 'LOGIN' : 'NOLOGIN',
      options.superuser ? 'SUPERUSER' : 'NOSUPERUSER',
      ...(options.attributes ?? []).map((a) => {
        if (!ROLE_ATTRIBUTES.has(a)) throw new Error(`createRole ${name}: unknown attribute ${JSON.stringify(a)}`);
        return a;
      }),
    ];
    await this.withAdmin(async (c) => {
      const password = options.password === undefined ? '' : ` PASSWORD ${c.escapeLiteral(options.password)}`;
      await c.query(`CREATE ROLE ${c.escapeIdentifier(name)} ${attributes.join(' ')}${password}`);
    });
  }

  /** ALTER ROLE … PASSWORD (a plain password is hashed with SCRAM; a verifier is stored as is). */
  async setPassword(role: string, password: string): Promise<void> {
    await this.withAdmin((c) => c.query(`ALTER ROLE ${c.escapeIdentifier(role)} PASSWORD ${c.escapeLiteral(password)}`));
  }

  /** CREATE DATABASE, optionally owned by `owner`. */
  async createDatabase(name: string, options: { owner?: string } = {}): Promise<void> {
    await this.withAdmin(async (c) => {
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}${options.owner ? ` OWNER ${c.escapeIdentifier(options.owner)}` : ''}`);
    });
  }

  /** The role's stored password (its SCRAM verifier), as PgBouncer's auth_file or auth_query would hold it. */
  async storedPassword(role: string): Promise<string> {
    const rows = await this.query<{ rolpassword: string | null }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    if (rows.length === 0 || !rows[0].rolpassword) throw new Error(`role ${JSON.stringify(role)} does not exist or has no password`);
    return rows[0].rolpassword;
  }

  /** Re-reads postgresql.conf / pg_hba.conf (pg_ctl reload), e.g. after a test changed pg_hba.conf in `dataDir`. */
  reload(): void {
    runAsService(join(PG_BIN, 'pg_ctl'), ['reload', '-D', this.dataDir, '-s'], { cwd: this.dir });
  }

  /**
   * pg_ctl restart -m fast, as a maintenance restart or failover does: every session is terminated
   * (FATAL 57P01), the server comes back on the same port with the same data. Returns once it
   * accepts connections again. Synchronous: nothing in this process runs meanwhile, so clients see
   * the termination when the test continues.
   */
  restart(): void {
    runAsService(join(PG_BIN, 'pg_ctl'), ['restart', '-D', this.dataDir, '-l', this.logFile, '-m', 'fast', '-w', '-t', '60', '-s'], { cwd: this.dir });
  }

  /** The server log so far. */
  readLog(): string {
    return readIfExists(this.logFile);
  }

  /** pg_ctl stop -m fast, then removes the directory. Safe to call twice or after a failed start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    running.delete(this);
    try {
      if (existsPid(this.dataDir)) runAsService(join(PG_BIN, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', '-s'], { cwd: this.dir });
    } finally {
      removeDir(this.dir);
    }
  }

  /** Immediate shutdown, synchronously (process exit, failed start); never throws. */
  stopNowSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    running.delete(this);
    try {
      if (existsPid(this.dataDir)) runAsService(join(PG_BIN, 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', '-s'], { cwd: this.dir });
    } catch {
      // Best effort: the process is exiting or the server never started.
    }
    try {
      removeDir(this.dir);
    } catch {
      // Best effort.
    }
  }
}

const existsPid = (dataDir: string): boolean => readIfExists(join(dataDir, 'postmaster.pid')) !== '';

function renderSettings(settings: Record<string, string | number | boolean>): string {
  return Object.entries(settings)
    .map(([key, value]) => {
      if (!SETTING_NAME.test(key)) throw new Error(`postgresql.conf: bad setting name ${JSON.stringify(key)}`);
      const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
      if (/[\r\n]/.test(text)) throw new Error(`postgresql.conf: ${key} contains a line break`);
      return `${key} = '${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
    })
    .join('\n')
    .concat('\n');
}

/**
 * A cluster for the enclosing describe block (or file): started in beforeAll, stopped in
 * afterAll even when tests or the start itself failed. Returns a getter (the cluster exists
 * only once beforeAll has run).
 */
export function usePostgres(options: PostgresOptions = {}): () => PostgresCluster {
  let cluster: PostgresCluster | undefined;
  beforeAll(async () => {
    cluster = await PostgresCluster.start(options);
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('usePostgres: the cluster did not start (see the beforeAll error)');
    return cluster;
  };
}
