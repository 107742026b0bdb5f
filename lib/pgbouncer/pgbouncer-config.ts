import { isIP } from 'node:net';
import { PLAN_PROFILES } from '../plans';
import type { Plan } from '../registry/tenant-schema';

/**
 * PgBouncer configuration of a silo tenant's pool: pure functions that render pgbouncer.ini and
 * the auth_file (userlist.txt). Everything here ends up in a configuration file that PgBouncer
 * parses line by line, so every input is validated before it is written: a value that could
 * start a new line, a new key, a comment or a new connection-string parameter is refused.
 *
 * Transaction pooling is the only mode: session pooling would pin one server connection per
 * client (no multiplexing, which defeats the purpose), and statement pooling breaks
 * multi-statement transactions. In transaction mode a session-level `SET` stays on the server
 * connection and is seen by the next client that gets it, so tenant context must be set with
 * `SET LOCAL` / `set_config(..., true)` inside the transaction (see test/pgbouncer).
 */

/** Server TLS modes accepted: the silo database forces SSL (rds.force_ssl=1), so plain TCP is never an option. */
export type PgbouncerServerTlsMode = 'require' | 'verify-ca' | 'verify-full';
/** Client TLS modes (clients connecting to PgBouncer). */
export type PgbouncerClientTlsMode = 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
/** Client authentication methods accepted; trust/any/plain/hba/pam are refused. */
export type PgbouncerAuthType = 'scram-sha-256' | 'md5';

/** TLS between clients (the application pods) and PgBouncer. */
export interface PgbouncerClientTls {
  /** What PgBouncer requires of clients; verify-ca and verify-full require a client certificate signed by `caFile`. */
  readonly sslmode: PgbouncerClientTlsMode;
  /** Absolute path of PgBouncer's private key (client_tls_key_file). */
  readonly keyFile: string;
  /** Absolute path of PgBouncer's certificate, presented to clients (client_tls_cert_file). */
  readonly certFile: string;
  /**
   * Absolute path of the CA that signs client certificates (client_tls_ca_file).
   * @default not set; required when sslmode is verify-ca or verify-full
   */
  readonly caFile?: string;
}

/** Everything pgbouncer.ini says, for one database alias in front of one PostgreSQL database. */
export interface PgbouncerSettings {
  /**
   * Name clients use as the database when connecting to PgBouncer (the key of the [databases] entry).
   * A lowercase SQL identifier; "pgbouncer" is reserved for the admin console.
   * @default the server's `dbname`, so applications use the same name with or without PgBouncer
   */
  readonly alias?: string;
  /** Host name or IP address of the PostgreSQL server (the RDS endpoint address, without port). */
  readonly host: string;
  /** Port of the PostgreSQL server. @default 5432 */
  readonly port?: number;
  /** Database on the PostgreSQL server, a lowercase SQL identifier (tenant_<slug> for silo tenants). */
  readonly dbname: string;
  /** Address PgBouncer listens on: an IP address, a host name or "*". @default "0.0.0.0" (every IPv4 address of the pod) */
  readonly listenAddr?: string;
  /** Port PgBouncer listens on. @default 6432 */
  readonly listenPort?: number;
  /** How clients authenticate to PgBouncer; the secrets come from `authFile`. @default "scram-sha-256" */
  readonly authType?: PgbouncerAuthType;
  /**
   * Absolute path of the userlist (see {@link renderUserlist}); in the cluster it is mounted from a
   * Secret that an ExternalSecret builds from Secrets Manager at runtime.
   * @default "/etc/pgbouncer/userlist.txt"
   */
  readonly authFile?: string;
  /** Pooling mode; only "transaction" is accepted (anything else throws). @default "transaction" */
  readonly poolMode?: 'transaction';
  /** Server connections per database/user pair (default_pool_size). */
  readonly defaultPoolSize: number;
  /** Server connections kept open even when idle (min_pool_size); at most defaultPoolSize. @default 0 (none kept) */
  readonly minPoolSize?: number;
  /** Extra server connections allowed when a client has waited reserve_pool_timeout (5 s). @default 0 (no reserve) */
  readonly reservePoolSize?: number;
  /** Client connections this PgBouncer accepts (max_client_conn); at least defaultPoolSize + reservePoolSize. */
  readonly maxClientConn: number;
  /**
   * Hard cap on server connections to the database, all users together (max_db_connections).
   * Unlimited (0) is refused: replicas × this value must fit the server's max_connections.
   * @default defaultPoolSize + reservePoolSize
   */
  readonly maxDbConnections?: number;
  /** TLS towards PostgreSQL (server_tls_sslmode); plain TCP is refused. @default "verify-full" (certificate chain and host name checked) */
  readonly serverTlsSslmode?: PgbouncerServerTlsMode;
  /** Absolute path of the CA bundle that signs the server certificate (the RDS CA bundle). @default not set; required for verify-ca and verify-full */
  readonly serverTlsCaFile?: string;
  /** TLS between clients and PgBouncer. @default not set: client_tls_sslmode = disable (plain TCP inside the cluster network) */
  readonly clientTls?: PgbouncerClientTls;
  /** Users allowed to run every admin console command (admin_users), lowercase SQL identifiers. @default none */
  readonly adminUsers?: readonly string[];
  /** Users allowed read-only SHOW commands on the admin console (stats_users), for metrics exporters. @default none */
  readonly statsUsers?: readonly string[];
  /** Log each successful login. @default true */
  readonly logConnections?: boolean;
  /** Log each disconnection with its reason. @default true */
  readonly logDisconnections?: boolean;
  /** Append the client's address and port to application_name, to trace a query back to its pod. @default true */
  readonly applicationNameAddHost?: boolean;
  /** Directory of PgBouncer's Unix socket. @default "" (no Unix socket: in a container clients come over TCP) */
  readonly unixSocketDir?: string;
  /** Absolute path of the PID file; needed only to daemonize (-d). @default not set */
  readonly pidfile?: string;
  /** Absolute path of a log file; PgBouncer logs to stderr too (what a container wants). @default not set (stderr only) */
  readonly logfile?: string;
}

/** Settings with every default applied (what {@link renderPgbouncerIni} writes). */
export interface ResolvedPgbouncerSettings {
  readonly alias: string;
  readonly host: string;
  readonly port: number;
  readonly dbname: string;
  readonly listenAddr: string;
  readonly listenPort: number;
  readonly authType: PgbouncerAuthType;
  readonly authFile: string;
  readonly poolMode: 'transaction';
  readonly defaultPoolSize: number;
  readonly minPoolSize: number;
  readonly reservePoolSize: number;
  readonly maxClientConn: number;
  readonly maxDbConnections: number;
  readonly serverTlsSslmode: PgbouncerServerTlsMode;
  readonly serverTlsCaFile: string | undefined;
  readonly clientTls: PgbouncerClientTls | undefined;
  readonly adminUsers: readonly string[];
  readonly statsUsers: readonly string[];
  readonly logConnections: boolean;
  readonly logDisconnections: boolean;
  readonly applicationNameAddHost: boolean;
  readonly unixSocketDir: string;
  readonly pidfile: string | undefined;
  readonly logfile: string | undefined;
}

/** Startup parameters PgBouncer drops instead of refusing (JDBC and others send extra_float_digits). Never search_path or options: dropping them would silently change what the client's queries see. */
export const PGBOUNCER_IGNORED_STARTUP_PARAMETERS: readonly string[] = ['extra_float_digits'];

export const PGBOUNCER_DEFAULT_PORT = 6432;
export const PGBOUNCER_DEFAULT_AUTH_FILE = '/etc/pgbouncer/userlist.txt';

/** Upper bounds: far above any plan, low enough to catch a unit mistake. */
const MAX_POOL_SIZE = 10_000;
const MAX_CLIENT_CONN = 100_000;

const SERVER_TLS_MODES: readonly string[] = ['require', 'verify-ca', 'verify-full'];
const CLIENT_TLS_MODES: readonly string[] = ['allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const AUTH_TYPES: readonly string[] = ['scram-sha-256', 'md5'];
/** A lowercase SQL identifier (63 bytes, PostgreSQL's NAMEDATALEN - 1). */
const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** One DNS label (RFC 1123). */
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** An absolute path made only of characters that mean nothing to PgBouncer's ini parser. */
const SAFE_PATH = /^\/[A-Za-z0-9._\/-]*$/;

const SETTING_KEYS: ReadonlySet<string> = new Set<keyof PgbouncerSettings>([
  'alias', 'host', 'port', 'dbname', 'listenAddr', 'listenPort', 'authType', 'authFile', 'poolMode',
  'defaultPoolSize', 'minPoolSize', 'reservePoolSize', 'maxClientConn', 'maxDbConnections',
  'serverTlsSslmode', 'serverTlsCaFile', 'clientTls', 'adminUsers', 'statsUsers', 'logConnections',
  'logDisconnections', 'applicationNameAddHost', 'unixSocketDir', 'pidfile', 'logfile',
]);
const CLIENT_TLS_KEYS: ReadonlySet<string> = new Set<keyof PgbouncerClientTls>(['sslmode', 'keyFile', 'certFile', 'caFile']);

/** Thrown for a setting PgBouncer must not be configured with; `field` names it. */
export class PgbouncerConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`PgBouncer ${field}: ${message}`);
    this.name = 'PgbouncerConfigError';
  }
}

const show = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value) : String(value));

function fail(field: string, message: string): never {
  throw new PgbouncerConfigError(field, message);
}

/** Refuses what could end a line or start a comment, a key or a parameter in the ini file. */
function assertNoConfigSyntax(field: string, value: string): void {
  if (/[\r\n\u2028\u2029\u0085]/.test(value)) fail(field, `${show(value)} contains a line break, which would inject configuration`);
  if (/[\u0000-\u001f\u007f]/.test(value)) fail(field, `${show(value)} contains a control character`);
  const bad = /[=;#"'`\s%\\]/.exec(value);
  if (bad) fail(field, `${show(value)} contains ${show(bad[0])}, which PgBouncer's configuration parser could take as syntax`);
}

function stringField(field: string, value: unknown): string {
  if (typeof value !== 'string') fail(field, `must be a string, got ${show(value)}`);
  if (value === '') fail(field, 'must not be empty');
  return value;
}

function identifier(field: string, value: unknown): string {
  const s = stringField(field, value);
  assertNoConfigSyntax(field, s);
  if (!SQL_IDENTIFIER.test(s)) fail(field, `${show(s)} is not a lowercase SQL identifier (${SQL_IDENTIFIER})`);
  return s;
}

function isHostname(s: string): boolean {
  if (s.length > 253) return false;
  const labels = s.split('.');
  // A name whose last label is all digits would be read as a (malformed) IPv4 address.
  return labels.every((label) => HOST_LABEL.test(label)) && !/^[0-9]+$/.test(labels[labels.length - 1]);
}

function host(field: string, value: unknown, allowWildcard = false): string {
  const s = stringField(field, value);
  assertNoConfigSyntax(field, s);
  if (allowWildcard && s === '*') return s;
  if (isIP(s) === 0 && !isHostname(s)) {
    fail(field, `${show(s)} is not a host name or an IP address${allowWildcard ? ' (or "*")' : ''}`);
  }
  return s;
}

function integer(field: string, value: unknown, min: number, max: number, why = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(field, `must be a whole number, got ${show(value)}`);
  if (value < min || value > max) fail(field, `must be from ${min} to ${max}${why}, got ${value}`);
  return value;
}

function absolutePath(field: string, value: unknown): string {
  const s = stringField(field, value);
  assertNoConfigSyntax(field, s);
  if (!SAFE_PATH.test(s)) fail(field, `${show(s)} must be an absolute path of letters, digits, ".", "_", "-" and "/"`);
  if (s.split('/').includes('..')) fail(field, `${show(s)} must not contain ".." segments`);
  return s;
}

function boolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(field, `must be true or false, got ${show(value)}`);
  return value;
}

function roleList(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(field, `must be a list of role names, got ${show(value)}`);
  const roles = value.map((v, i) => identifier(`${field}[${i}]`, v));
  const dup = roles.find((r, i) => roles.indexOf(r) !== i);
  if (dup !== undefined) fail(field, `lists ${show(dup)} twice`);
  return roles;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly string[], why: string): T {
  if (typeof value !== 'string' || !allowed.includes(value)) fail(field, `must be one of ${allowed.join(', ')}${why}, got ${show(value)}`);
  return value as T;
}

function assertKnownKeys(field: string, value: object, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) fail(field === '' ? key : `${field}.${key}`, `unknown setting (known: ${[...known].join(', ')})`);
  }
}

/** Applies defaults to `settings` and validates every value; throws a {@link PgbouncerConfigError} naming the field. */
export function resolvePgbouncerSettings(settings: PgbouncerSettings): ResolvedPgbouncerSettings {
  if (typeof settings !== 'object' || settings === null) fail('settings', `must be an object, got ${show(settings)}`);
  assertKnownKeys('', settings, SETTING_KEYS);

  if (settings.poolMode !== undefined && settings.poolMode !== 'transaction') {
    fail('poolMode', `only "transaction" is supported, got ${show(settings.poolMode)}: session pooling pins a server connection to each client (no multiplexing) and statement pooling breaks multi-statement transactions`);
  }
  const dbname = identifier('dbname', settings.dbname);
  const alias = identifier('alias', settings.alias ?? dbname);
  if (alias === 'pgbouncer') fail('alias', '"pgbouncer" is reserved for PgBouncer\'s admin console');

  const defaultPoolSize = integer('defaultPoolSize', settings.defaultPoolSize, 1, MAX_POOL_SIZE);
  const minPoolSize = integer('minPoolSize', settings.minPoolSize ?? 0, 0, defaultPoolSize, ' (at most defaultPoolSize)');
  const reservePoolSize = integer('reservePoolSize', settings.reservePoolSize ?? 0, 0, MAX_POOL_SIZE);
  const maxClientConn = integer('maxClientConn', settings.maxClientConn, 1, MAX_CLIENT_CONN);
  if (defaultPoolSize + reservePoolSize > maxClientConn) {
    fail('maxClientConn', `(${maxClientConn}) must be at least defaultPoolSize + reservePoolSize (${defaultPoolSize + reservePoolSize}): a pool larger than its clients only wastes server connections`);
  }
  const maxDbConnections = integer(
    'maxDbConnections', settings.maxDbConnections ?? defaultPoolSize + reservePoolSize, 1, MAX_POOL_SIZE,
    ' (0, unlimited, is refused: replicas × maxDbConnections must fit max_connections)',
  );
  if (maxDbConnections < minPoolSize) fail('maxDbConnections', `(${maxDbConnections}) must be at least minPoolSize (${minPoolSize})`);

  const serverTlsSslmode = oneOf<PgbouncerServerTlsMode>(
    'serverTlsSslmode', settings.serverTlsSslmode ?? 'verify-full', SERVER_TLS_MODES, ' (the database forces SSL; plain TCP is refused)',
  );
  const serverTlsCaFile = settings.serverTlsCaFile === undefined ? undefined : absolutePath('serverTlsCaFile', settings.serverTlsCaFile);
  if (serverTlsSslmode.startsWith('verify-') && serverTlsCaFile === undefined) {
    fail('serverTlsCaFile', `is required with serverTlsSslmode ${serverTlsSslmode}: the server certificate is checked against it`);
  }

  let clientTls: PgbouncerClientTls | undefined;
  if (settings.clientTls !== undefined) {
    const c = settings.clientTls;
    if (typeof c !== 'object' || c === null) fail('clientTls', `must be an object, got ${show(c)}`);
    assertKnownKeys('clientTls', c, CLIENT_TLS_KEYS);
    const sslmode = oneOf<PgbouncerClientTlsMode>('clientTls.sslmode', c.sslmode, CLIENT_TLS_MODES, '');
    const caFile = c.caFile === undefined ? undefined : absolutePath('clientTls.caFile', c.caFile);
    if (sslmode.startsWith('verify-') && caFile === undefined) fail('clientTls.caFile', `is required with clientTls.sslmode ${sslmode}: client certificates are checked against it`);
    clientTls = { sslmode, keyFile: absolutePath('clientTls.keyFile', c.keyFile), certFile: absolutePath('clientTls.certFile', c.certFile), ...(caFile ? { caFile } : {}) };
  }

  const unixSocketDir = settings.unixSocketDir === undefined || settings.unixSocketDir === ''
    ? ''
    : absolutePath('unixSocketDir', settings.unixSocketDir);

  return {
    alias,
    host: host('host', settings.host),
    port: integer('port', settings.port ?? 5432, 1, 65535),
    dbname,
    listenAddr: host('listenAddr', settings.listenAddr ?? '0.0.0.0', true),
    listenPort: integer('listenPort', settings.listenPort ?? PGBOUNCER_DEFAULT_PORT, 1, 65535),
    authType: oneOf<PgbouncerAuthType>('authType', settings.authType ?? 'scram-sha-256', AUTH_TYPES, ' (trust, any, plain and hba are refused)'),
    authFile: absolutePath('authFile', settings.authFile ?? PGBOUNCER_DEFAULT_AUTH_FILE),
    poolMode: 'transaction',
    defaultPoolSize,
    minPoolSize,
    reservePoolSize,
    maxClientConn,
    maxDbConnections,
    serverTlsSslmode,
    serverTlsCaFile,
    clientTls,
    adminUsers: roleList('adminUsers', settings.adminUsers ?? []),
    statsUsers: roleList('statsUsers', settings.statsUsers ?? []),
    logConnections: boolean('logConnections', settings.logConnections ?? true),
    logDisconnections: boolean('logDisconnections', settings.logDisconnections ?? true),
    applicationNameAddHost: boolean('applicationNameAddHost', settings.applicationNameAddHost ?? true),
    unixSocketDir,
    pidfile: settings.pidfile === undefined ? undefined : absolutePath('pidfile', settings.pidfile),
    logfile: settings.logfile === undefined ? undefined : absolutePath('logfile', settings.logfile),
  };
}

const flag = (b: boolean) => (b ? '1' : '0');

/**
 * Renders a complete pgbouncer.ini: one [databases] entry `<alias> = host=… port=… dbname=…`
 * (no user=, so each client user gets its own pool and SCRAM pass-through works) and the
 * [pgbouncer] section. Throws a {@link PgbouncerConfigError} naming the first invalid field.
 */
export function renderPgbouncerIni(settings: PgbouncerSettings): string {
  const s = resolvePgbouncerSettings(settings);
  const lines: string[] = [
    '; Rendered by lib/pgbouncer/pgbouncer-config.ts; do not edit by hand.',
    '[databases]',
    `${s.alias} = host=${s.host} port=${s.port} dbname=${s.dbname}`,
    '',
    '[pgbouncer]',
    `listen_addr = ${s.listenAddr}`,
    `listen_port = ${s.listenPort}`,
    s.unixSocketDir === '' ? 'unix_socket_dir =' : `unix_socket_dir = ${s.unixSocketDir}`,
    `auth_type = ${s.authType}`,
    `auth_file = ${s.authFile}`,
    '',
    '; Transaction pooling: a server connection serves one transaction, then the next client.',
    'pool_mode = transaction',
    `default_pool_size = ${s.defaultPoolSize}`,
    `min_pool_size = ${s.minPoolSize}`,
    `reserve_pool_size = ${s.reservePoolSize}`,
    `max_client_conn = ${s.maxClientConn}`,
    `max_db_connections = ${s.maxDbConnections}`,
    '; Not run in transaction mode; empty so that nothing pretends to reset session state.',
    'server_reset_query =',
    '; Only what is safe to drop; search_path and options are refused rather than silently ignored.',
    `ignore_startup_parameters = ${PGBOUNCER_IGNORED_STARTUP_PARAMETERS.join(',')}`,
    '',
    `server_tls_sslmode = ${s.serverTlsSslmode}`,
    ...(s.serverTlsCaFile ? [`server_tls_ca_file = ${s.serverTlsCaFile}`] : []),
    `client_tls_sslmode = ${s.clientTls?.sslmode ?? 'disable'}`,
    ...(s.clientTls
      ? [
          `client_tls_key_file = ${s.clientTls.keyFile}`,
          `client_tls_cert_file = ${s.clientTls.certFile}`,
          ...(s.clientTls.caFile ? [`client_tls_ca_file = ${s.clientTls.caFile}`] : []),
        ]
      : []),
    '',
    ...(s.adminUsers.length > 0 ? [`admin_users = ${s.adminUsers.join(',')}`] : []),
    ...(s.statsUsers.length > 0 ? [`stats_users = ${s.statsUsers.join(',')}`] : []),
    `log_connections = ${flag(s.logConnections)}`,
    `log_disconnections = ${flag(s.logDisconnections)}`,
    `application_name_add_host = ${flag(s.applicationNameAddHost)}`,
    ...(s.pidfile ? [`pidfile = ${s.pidfile}`] : []),
    ...(s.logfile ? [`logfile = ${s.logfile}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** What {@link pgbouncerSettingsForPlan} needs besides the plan; pool sizes given here override the plan's. */
export type PgbouncerPlanSettings = Omit<PgbouncerSettings, 'defaultPoolSize' | 'maxClientConn'> &
  Partial<Pick<PgbouncerSettings, 'defaultPoolSize' | 'maxClientConn'>>;

/**
 * Settings for a silo tenant's pool on `plan`: default_pool_size, reserve_pool_size and
 * max_client_conn from `PLAN_PROFILES[plan].pgbouncer` (unless given), max_db_connections their
 * sum, everything else from `settings`. The result is validated.
 */
export function pgbouncerSettingsForPlan(plan: Plan, settings: PgbouncerPlanSettings): PgbouncerSettings {
  const profile = Object.prototype.hasOwnProperty.call(PLAN_PROFILES, plan) ? PLAN_PROFILES[plan]?.pgbouncer : undefined;
  if (!profile) fail('plan', `unknown plan ${show(plan)} (known: ${Object.keys(PLAN_PROFILES).join(', ')})`);
  const defaultPoolSize = settings.defaultPoolSize ?? profile.defaultPoolSize;
  const reservePoolSize = settings.reservePoolSize ?? profile.reservePoolSize;
  const result: PgbouncerSettings = {
    ...settings,
    defaultPoolSize,
    reservePoolSize,
    maxClientConn: settings.maxClientConn ?? profile.maxClientConn,
    maxDbConnections: settings.maxDbConnections ?? defaultPoolSize + reservePoolSize,
  };
  resolvePgbouncerSettings(result);
  return result;
}

/** One auth_file entry: a role and its secret (plain-text password, md5 hash or SCRAM verifier). */
export interface PgbouncerUser {
  readonly name: string;
  readonly secret: string;
}

/** PostgreSQL truncates role names to 63 bytes: a longer name in the userlist would never match a login. */
const MAX_USERNAME_BYTES = 63;

const quoteUserlistField = (value: string) => `"${value.replace(/"/g, '""')}"`;

/**
 * Renders PgBouncer's auth_file: `"name" "secret"` per line, a double quote inside a field
 * written twice. A secret is a plain-text password, an md5 hash or a SCRAM verifier
 * (`SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>`). Line breaks and control
 * characters are refused (they would start another entry); so are empty and duplicate names.
 */
export function renderUserlist(users: readonly PgbouncerUser[]): string {
  if (!Array.isArray(users)) fail('users', `must be a list of { name, secret }, got ${show(users)}`);
  const seen = new Set<string>();
  const lines = users.map((user, i) => {
    const where = `users[${i}]`;
    if (typeof user !== 'object' || user === null) fail(where, `must be { name, secret }, got ${show(user)}`);
    for (const key of ['name', 'secret'] as const) {
      const value: unknown = user[key];
      if (typeof value !== 'string' || value === '') fail(`${where}.${key}`, `must be a non-empty string, got ${show(value)}`);
      if (/[\r\n\u2028\u2029\u0085]/.test(value)) fail(`${where}.${key}`, 'contains a line break, which would inject another entry');
      if (/[\u0000-\u001f\u007f]/.test(value)) fail(`${where}.${key}`, 'contains a control character');
    }
    if (Buffer.byteLength(user.name, 'utf8') > MAX_USERNAME_BYTES) fail(`${where}.name`, `${show(user.name)} is longer than ${MAX_USERNAME_BYTES} bytes`);
    if (seen.has(user.name)) fail(`${where}.name`, `${show(user.name)} is listed twice`);
    seen.add(user.name);
    return `${quoteUserlistField(user.name)} ${quoteUserlistField(user.secret)}`;
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
