import {
  PGBOUNCER_IGNORED_STARTUP_PARAMETERS,
  PgbouncerConfigError,
  pgbouncerSettingsForPlan,
  renderPgbouncerIni,
  renderUserlist,
  resolvePgbouncerSettings,
  type PgbouncerSettings,
} from '../../lib/pgbouncer/pgbouncer-config';
import { PLAN_PROFILES } from '../../lib/plans';
import { PLANS, type Plan } from '../../lib/registry/tenant-schema';

const BASE: PgbouncerSettings = {
  host: 'tenant-acme.abc123xyz.eu-west-1.rds.amazonaws.com',
  dbname: 'tenant_acme',
  defaultPoolSize: 10,
  maxClientConn: 200,
  serverTlsCaFile: '/etc/pgbouncer/rds-ca.pem',
};

/** Every key PgBouncer 1.18 knows in [pgbouncer] that the renderer may write. */
const KNOWN_PGBOUNCER_KEYS = new Set([
  'listen_addr', 'listen_port', 'unix_socket_dir', 'auth_type', 'auth_file', 'pool_mode', 'default_pool_size', 'min_pool_size',
  'reserve_pool_size', 'max_client_conn', 'max_db_connections', 'server_reset_query', 'ignore_startup_parameters',
  'server_tls_sslmode', 'server_tls_ca_file', 'client_tls_sslmode', 'client_tls_key_file', 'client_tls_cert_file',
  'client_tls_ca_file', 'admin_users', 'stats_users', 'log_connections', 'log_disconnections', 'application_name_add_host',
  'pidfile', 'logfile',
]);

/** Parses an ini the way PgBouncer does (sections, `key = value`, `;`/`#` comment lines); fails on anything else. */
function parseIni(text: string): Record<string, Map<string, string>> {
  const sections: Record<string, Map<string, string>> = {};
  let current: Map<string, string> | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '' || /^\s*[;#]/.test(line)) continue;
    const section = /^\[([a-z]+)\]$/.exec(line);
    if (section) {
      if (sections[section[1]]) throw new Error(`line ${i + 1}: section [${section[1]}] twice`);
      current = sections[section[1]] = new Map();
      continue;
    }
    const kv = /^([A-Za-z0-9_]+) =(?: (.+))?$/.exec(line);
    if (!kv || !current) throw new Error(`line ${i + 1} is not "key = value" inside a section: ${JSON.stringify(line)}`);
    if (current.has(kv[1])) throw new Error(`line ${i + 1}: ${kv[1]} set twice`);
    current.set(kv[1], kv[2] ?? '');
  }
  return sections;
}

const pgbouncerSection = (settings: PgbouncerSettings) => parseIni(renderPgbouncerIni(settings)).pgbouncer;

describe('renderPgbouncerIni', () => {
  test('renders a complete configuration with the documented defaults', () => {
    expect(renderPgbouncerIni(BASE)).toBe(
      [
        '; Rendered by lib/pgbouncer/pgbouncer-config.ts; do not edit by hand.',
        '[databases]',
        'tenant_acme = host=tenant-acme.abc123xyz.eu-west-1.rds.amazonaws.com port=5432 dbname=tenant_acme',
        '',
        '[pgbouncer]',
        'listen_addr = 0.0.0.0',
        'listen_port = 6432',
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        'auth_file = /etc/pgbouncer/userlist.txt',
        '',
        '; Transaction pooling: a server connection serves one transaction, then the next client.',
        'pool_mode = transaction',
        'default_pool_size = 10',
        'min_pool_size = 0',
        'reserve_pool_size = 0',
        'max_client_conn = 200',
        'max_db_connections = 10',
        '; Not run in transaction mode; empty so that nothing pretends to reset session state.',
        'server_reset_query =',
        '; Only what is safe to drop; search_path and options are refused rather than silently ignored.',
        'ignore_startup_parameters = extra_float_digits',
        '',
        'server_tls_sslmode = verify-full',
        'server_tls_ca_file = /etc/pgbouncer/rds-ca.pem',
        'client_tls_sslmode = disable',
        '',
        'log_connections = 1',
        'log_disconnections = 1',
        'application_name_add_host = 1',
        '',
      ].join('\n'),
    );
  });

  test('writes only keys PgBouncer knows, each once, and exactly one database entry', () => {
    const ini = parseIni(renderPgbouncerIni({
      ...BASE,
      clientTls: { sslmode: 'verify-full', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt', caFile: '/tls/ca.crt' },
      adminUsers: ['pgbouncer_admin'],
      statsUsers: ['pgbouncer_stats'],
      unixSocketDir: '/var/run/pgbouncer',
      pidfile: '/var/run/pgbouncer/pgbouncer.pid',
      logfile: '/var/log/pgbouncer/pgbouncer.log',
    }));
    expect(Object.keys(ini).sort()).toEqual(['databases', 'pgbouncer']);
    expect([...ini.databases.keys()]).toEqual(['tenant_acme']);
    for (const key of ini.pgbouncer.keys()) expect(KNOWN_PGBOUNCER_KEYS).toContain(key);
    expect(ini.pgbouncer.size).toBe(KNOWN_PGBOUNCER_KEYS.size);
  });

  test.each<[string, Partial<PgbouncerSettings>, string, string]>([
    ['alias', { alias: 'app' }, 'databases', 'app = host=tenant-acme.abc123xyz.eu-west-1.rds.amazonaws.com port=5432 dbname=tenant_acme'],
    ['port', { port: 6543 }, 'databases', 'tenant_acme = host=tenant-acme.abc123xyz.eu-west-1.rds.amazonaws.com port=6543 dbname=tenant_acme'],
    ['IPv4 host', { host: '10.0.12.7' }, 'databases', 'tenant_acme = host=10.0.12.7 port=5432 dbname=tenant_acme'],
    ['IPv6 host', { host: 'fd00::2' }, 'databases', 'tenant_acme = host=fd00::2 port=5432 dbname=tenant_acme'],
    ['localhost', { host: 'localhost' }, 'databases', 'tenant_acme = host=localhost port=5432 dbname=tenant_acme'],
    ['listenAddr', { listenAddr: '127.0.0.1' }, 'pgbouncer', 'listen_addr = 127.0.0.1'],
    ['listenAddr *', { listenAddr: '*' }, 'pgbouncer', 'listen_addr = *'],
    ['listenPort', { listenPort: 7432 }, 'pgbouncer', 'listen_port = 7432'],
    ['authType md5', { authType: 'md5' }, 'pgbouncer', 'auth_type = md5'],
    ['authFile', { authFile: '/secrets/pgbouncer/userlist.txt' }, 'pgbouncer', 'auth_file = /secrets/pgbouncer/userlist.txt'],
    ['poolMode transaction', { poolMode: 'transaction' }, 'pgbouncer', 'pool_mode = transaction'],
    ['minPoolSize', { minPoolSize: 3 }, 'pgbouncer', 'min_pool_size = 3'],
    ['reservePoolSize', { reservePoolSize: 2 }, 'pgbouncer', 'reserve_pool_size = 2'],
    ['maxDbConnections follows the reserve', { reservePoolSize: 2 }, 'pgbouncer', 'max_db_connections = 12'],
    ['maxDbConnections', { maxDbConnections: 15 }, 'pgbouncer', 'max_db_connections = 15'],
    ['serverTlsSslmode require (no CA needed)', { serverTlsSslmode: 'require', serverTlsCaFile: undefined }, 'pgbouncer', 'server_tls_sslmode = require'],
    ['serverTlsSslmode verify-ca', { serverTlsSslmode: 'verify-ca' }, 'pgbouncer', 'server_tls_sslmode = verify-ca'],
    ['clientTls', { clientTls: { sslmode: 'require', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt' } }, 'pgbouncer', 'client_tls_sslmode = require'],
    ['clientTls key', { clientTls: { sslmode: 'require', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt' } }, 'pgbouncer', 'client_tls_key_file = /tls/tls.key'],
    ['clientTls cert', { clientTls: { sslmode: 'require', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt' } }, 'pgbouncer', 'client_tls_cert_file = /tls/tls.crt'],
    ['clientTls CA', { clientTls: { sslmode: 'verify-ca', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt', caFile: '/tls/ca.crt' } }, 'pgbouncer', 'client_tls_ca_file = /tls/ca.crt'],
    ['adminUsers', { adminUsers: ['ops', 'ops_2'] }, 'pgbouncer', 'admin_users = ops,ops_2'],
    ['statsUsers', { statsUsers: ['exporter'] }, 'pgbouncer', 'stats_users = exporter'],
    ['logConnections off', { logConnections: false }, 'pgbouncer', 'log_connections = 0'],
    ['logDisconnections off', { logDisconnections: false }, 'pgbouncer', 'log_disconnections = 0'],
    ['applicationNameAddHost off', { applicationNameAddHost: false }, 'pgbouncer', 'application_name_add_host = 0'],
    ['unixSocketDir', { unixSocketDir: '/var/run/pgbouncer' }, 'pgbouncer', 'unix_socket_dir = /var/run/pgbouncer'],
    ['unixSocketDir empty', { unixSocketDir: '' }, 'pgbouncer', 'unix_socket_dir ='],
    ['pidfile', { pidfile: '/var/run/pgbouncer/pgbouncer.pid' }, 'pgbouncer', 'pidfile = /var/run/pgbouncer/pgbouncer.pid'],
    ['logfile', { logfile: '/var/log/pgbouncer.log' }, 'pgbouncer', 'logfile = /var/log/pgbouncer.log'],
  ])('%s', (_name, patch, section, line) => {
    const text = renderPgbouncerIni({ ...BASE, ...patch });
    const lines = text.split('\n');
    const start = lines.indexOf(`[${section}]`);
    const end = lines.findIndex((l, i) => i > start && l.startsWith('['));
    expect(lines.slice(start, end === -1 ? undefined : end)).toContain(line);
  });

  test.each<[string, Partial<PgbouncerSettings>, string]>([
    ['server_tls_ca_file', { serverTlsSslmode: 'require', serverTlsCaFile: undefined }, 'server_tls_ca_file'],
    ['client TLS files', {}, 'client_tls_key_file'],
    ['admin_users', {}, 'admin_users'],
    ['stats_users', {}, 'stats_users'],
    ['pidfile', {}, 'pidfile'],
    ['logfile', {}, 'logfile'],
  ])('leaves %s out when not asked for', (_name, patch, key) => {
    expect(pgbouncerSection({ ...BASE, ...patch }).has(key)).toBe(false);
  });

  test('ignores extra_float_digits only: search_path and options must never be dropped silently', () => {
    const ignored = pgbouncerSection(BASE).get('ignore_startup_parameters')!.split(',');
    expect(ignored).toEqual(['extra_float_digits']);
    expect(PGBOUNCER_IGNORED_STARTUP_PARAMETERS).toEqual(['extra_float_digits']);
  });

  test('server_reset_query is empty (transaction mode does not run it) and pool_mode is always transaction', () => {
    const s = pgbouncerSection(BASE);
    expect(s.get('server_reset_query')).toBe('');
    expect(s.get('pool_mode')).toBe('transaction');
  });

  test('resolvePgbouncerSettings reports every default it applied', () => {
    expect(resolvePgbouncerSettings({ host: 'db', dbname: 'app', defaultPoolSize: 5, maxClientConn: 50, serverTlsCaFile: '/ca.pem' })).toEqual({
      alias: 'app', host: 'db', port: 5432, dbname: 'app', listenAddr: '0.0.0.0', listenPort: 6432, authType: 'scram-sha-256',
      authFile: '/etc/pgbouncer/userlist.txt', poolMode: 'transaction', defaultPoolSize: 5, minPoolSize: 0, reservePoolSize: 0,
      maxClientConn: 50, maxDbConnections: 5, serverTlsSslmode: 'verify-full', serverTlsCaFile: '/ca.pem', clientTls: undefined,
      adminUsers: [], statsUsers: [], logConnections: true, logDisconnections: true, applicationNameAddHost: true,
      unixSocketDir: '', pidfile: undefined, logfile: undefined,
    });
  });
});

describe('renderPgbouncerIni rejects what could break or inject configuration', () => {
  const clientTls = { sslmode: 'require', keyFile: '/tls/tls.key', certFile: '/tls/tls.crt' } as const;
  // [what, patch, field named in the error, part of the message]
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['settings that are not an object', { __replace: null }, 'settings', /must be an object/],
    ['an unknown setting (snake_case typo)', { pool_mode: 'session' }, 'pool_mode', /unknown setting/],
    ['an unknown clientTls setting', { clientTls: { ...clientTls, sslMode: 'require' } }, 'clientTls.sslMode', /unknown setting/],

    ['session pooling', { poolMode: 'session' }, 'poolMode', /only "transaction".*session pooling pins/],
    ['statement pooling', { poolMode: 'statement' }, 'poolMode', /statement pooling breaks multi-statement transactions/],

    ['a missing host', { host: undefined }, 'host', /must be a string/],
    ['an empty host', { host: '' }, 'host', /must not be empty/],
    ['a host with a newline (injection)', { host: 'db.example.com\nadmin_users = attacker' }, 'host', /line break/],
    ['a host with a carriage return', { host: 'db.example.com\r' }, 'host', /line break/],
    ['a host with a Unicode line separator', { host: 'db\u2028x' }, 'host', /line break/],
    ['a host with a NUL', { host: 'db\u0000' }, 'host', /control character/],
    ['a host with a tab', { host: 'db\tx' }, 'host', /control character/],
    ['a host with a space (connection-string injection)', { host: 'db user=postgres' }, 'host', /contains " "/],
    ['a host with =', { host: 'host=evil' }, 'host', /contains "="/],
    ['a host with ;', { host: 'db;x' }, 'host', /contains ";"/],
    ['a host with #', { host: 'db#x' }, 'host', /contains "#"/],
    ['a host with double quotes', { host: '"db"' }, 'host', /contains "\\""/],
    ['a host with single quotes', { host: "'db'" }, 'host', /contains "'"/],
    ['a host with a backslash', { host: 'db\\x' }, 'host', /contains "\\\\"/],
    ['a host with %', { host: '%include' }, 'host', /contains "%"/],
    ['a Unix socket path as host', { host: '/var/run/postgresql' }, 'host', /not a host name or an IP address/],
    ['an abstract socket as host', { host: '@pg' }, 'host', /not a host name or an IP address/],
    ['a host list', { host: 'db1.example.com,db2.example.com' }, 'host', /not a host name/],
    ['a host with a port', { host: 'db.example.com:5432' }, 'host', /not a host name/],
    ['a host label starting with -', { host: '-db.example.com' }, 'host', /not a host name/],
    ['an empty host label', { host: 'db..example.com' }, 'host', /not a host name/],
    ['a trailing dot', { host: 'db.example.com.' }, 'host', /not a host name/],
    ['an underscore in a host name', { host: 'db_1.example.com' }, 'host', /not a host name/],
    ['a host label over 63 characters', { host: `${'a'.repeat(64)}.example.com` }, 'host', /not a host name/],
    ['a host name over 253 characters', { host: Array(64).fill('abcd').join('.') }, 'host', /not a host name/],
    ['a malformed IPv4 address', { host: '999.1.1.1' }, 'host', /not a host name/],
    ['a host that is a number', { host: 42 }, 'host', /must be a string/],
    ['* as host', { host: '*' }, 'host', /not a host name/],

    ['port 0', { port: 0 }, 'port', /from 1 to 65535/],
    ['port 65536', { port: 65536 }, 'port', /from 1 to 65535/],
    ['a fractional port', { port: 5432.5 }, 'port', /whole number/],
    ['a port as a string', { port: '5432' }, 'port', /whole number/],
    ['a NaN port', { port: NaN }, 'port', /whole number/],

    ['a missing dbname', { dbname: undefined }, 'dbname', /must be a string/],
    ['an uppercase dbname', { dbname: 'Tenant_Acme' }, 'dbname', /not a lowercase SQL identifier/],
    ['a dbname starting with a digit', { dbname: '1tenant' }, 'dbname', /not a lowercase SQL identifier/],
    ['a dbname with a hyphen', { dbname: 'tenant-acme' }, 'dbname', /not a lowercase SQL identifier/],
    ['a dbname with a space (injection)', { dbname: 'tenant_acme user=postgres' }, 'dbname', /contains " "/],
    ['a dbname with a newline', { dbname: 'tenant_acme\n[pgbouncer]' }, 'dbname', /line break/],
    ['a dbname with a quote', { dbname: 'tenant"acme' }, 'dbname', /contains "\\""/],
    ['a dbname over 63 bytes', { dbname: 'a'.repeat(64) }, 'dbname', /not a lowercase SQL identifier/],
    ['an alias with a hyphen', { alias: 'tenant-acme' }, 'alias', /not a lowercase SQL identifier/],
    ['an alias with =', { alias: 'a=b' }, 'alias', /contains "="/],
    ['the reserved alias pgbouncer', { alias: 'pgbouncer' }, 'alias', /reserved for PgBouncer's admin console/],
    ['an empty alias', { alias: '' }, 'alias', /must not be empty/],

    ['a listenAddr with a newline', { listenAddr: '0.0.0.0\nauth_type = trust' }, 'listenAddr', /line break/],
    ['a listenAddr list', { listenAddr: '0.0.0.0,::' }, 'listenAddr', /not a host name or an IP address \(or "\*"\)/],
    ['an empty listenAddr', { listenAddr: '' }, 'listenAddr', /must not be empty/],
    ['listenPort 0', { listenPort: 0 }, 'listenPort', /from 1 to 65535/],
    ['listenPort 70000', { listenPort: 70000 }, 'listenPort', /from 1 to 65535/],

    ['auth_type trust', { authType: 'trust' }, 'authType', /must be one of scram-sha-256, md5 \(trust, any, plain and hba are refused\)/],
    ['auth_type any', { authType: 'any' }, 'authType', /must be one of/],
    ['auth_type plain', { authType: 'plain' }, 'authType', /must be one of/],
    ['auth_type hba', { authType: 'hba' }, 'authType', /must be one of/],
    ['auth_type with trailing space', { authType: 'md5 ' }, 'authType', /must be one of/],
    ['a relative authFile', { authFile: 'userlist.txt' }, 'authFile', /must be an absolute path/],
    ['an authFile with a space', { authFile: '/etc/pgbouncer/user list.txt' }, 'authFile', /contains " "/],
    ['an authFile with ;', { authFile: '/etc/pgbouncer/a;b' }, 'authFile', /contains ";"/],
    ['an authFile with a newline', { authFile: '/etc/pgbouncer/userlist.txt\nauth_type = trust' }, 'authFile', /line break/],
    ['an authFile with ..', { authFile: '/etc/pgbouncer/../shadow' }, 'authFile', /must not contain "\.\." segments/],
    ['an authFile with other characters', { authFile: '/etc/pgbouncer/user$list' }, 'authFile', /must be an absolute path of letters/],

    ['a missing defaultPoolSize', { defaultPoolSize: undefined }, 'defaultPoolSize', /whole number/],
    ['defaultPoolSize 0', { defaultPoolSize: 0 }, 'defaultPoolSize', /from 1 to 10000/],
    ['a negative defaultPoolSize', { defaultPoolSize: -1 }, 'defaultPoolSize', /from 1 to 10000/],
    ['a fractional defaultPoolSize', { defaultPoolSize: 1.5 }, 'defaultPoolSize', /whole number/],
    ['defaultPoolSize as a string', { defaultPoolSize: '10' }, 'defaultPoolSize', /whole number/],
    ['an infinite defaultPoolSize', { defaultPoolSize: Infinity }, 'defaultPoolSize', /whole number/],
    ['defaultPoolSize over 10000', { defaultPoolSize: 10001, maxClientConn: 20000 }, 'defaultPoolSize', /from 1 to 10000/],
    ['a negative minPoolSize', { minPoolSize: -1 }, 'minPoolSize', /from 0 to 10/],
    ['minPoolSize over defaultPoolSize', { minPoolSize: 11 }, 'minPoolSize', /at most defaultPoolSize/],
    ['a fractional minPoolSize', { minPoolSize: 2.5 }, 'minPoolSize', /whole number/],
    ['a negative reservePoolSize', { reservePoolSize: -1 }, 'reservePoolSize', /from 0 to 10000/],
    ['a fractional reservePoolSize', { reservePoolSize: 0.5 }, 'reservePoolSize', /whole number/],
    ['a missing maxClientConn', { maxClientConn: undefined }, 'maxClientConn', /whole number/],
    ['maxClientConn 0', { maxClientConn: 0 }, 'maxClientConn', /from 1 to 100000/],
    ['maxClientConn over 100000', { maxClientConn: 100001 }, 'maxClientConn', /from 1 to 100000/],
    ['maxClientConn below the pool', { maxClientConn: 5 }, 'maxClientConn', /at least defaultPoolSize \+ reservePoolSize \(10\)/],
    ['maxClientConn below pool + reserve', { maxClientConn: 11, reservePoolSize: 2 }, 'maxClientConn', /\(12\)/],
    ['maxDbConnections 0 (unlimited)', { maxDbConnections: 0 }, 'maxDbConnections', /unlimited, is refused/],
    ['a fractional maxDbConnections', { maxDbConnections: 1.5 }, 'maxDbConnections', /whole number/],
    ['maxDbConnections below minPoolSize', { maxDbConnections: 2, minPoolSize: 5 }, 'maxDbConnections', /at least minPoolSize \(5\)/],

    ['server TLS disabled', { serverTlsSslmode: 'disable' }, 'serverTlsSslmode', /must be one of require, verify-ca, verify-full \(the database forces SSL/],
    ['server TLS prefer', { serverTlsSslmode: 'prefer' }, 'serverTlsSslmode', /must be one of/],
    ['server TLS allow', { serverTlsSslmode: 'allow' }, 'serverTlsSslmode', /must be one of/],
    ['a misspelt server TLS mode', { serverTlsSslmode: 'verify_full' }, 'serverTlsSslmode', /must be one of/],
    ['verify-full without a CA file', { serverTlsCaFile: undefined }, 'serverTlsCaFile', /required with serverTlsSslmode verify-full/],
    ['verify-ca without a CA file', { serverTlsSslmode: 'verify-ca', serverTlsCaFile: undefined }, 'serverTlsCaFile', /required with serverTlsSslmode verify-ca/],
    ['a relative CA file', { serverTlsCaFile: 'rds-ca.pem' }, 'serverTlsCaFile', /absolute path/],
    ['a CA file with #', { serverTlsCaFile: '/etc/ca#1.pem' }, 'serverTlsCaFile', /contains "#"/],

    ['clientTls that is not an object', { clientTls: 'require' }, 'clientTls', /must be an object/],
    ['client TLS disable (omit clientTls instead)', { clientTls: { ...clientTls, sslmode: 'disable' } }, 'clientTls.sslmode', /must be one of allow, prefer, require, verify-ca, verify-full/],
    ['client TLS without a key file', { clientTls: { sslmode: 'require', certFile: '/tls/tls.crt' } }, 'clientTls.keyFile', /must be a string/],
    ['client TLS with a relative cert file', { clientTls: { ...clientTls, certFile: 'tls.crt' } }, 'clientTls.certFile', /absolute path/],
    ['client verify-full without a CA file', { clientTls: { ...clientTls, sslmode: 'verify-full' } }, 'clientTls.caFile', /required with clientTls.sslmode verify-full/],
    ['a client CA file with a newline', { clientTls: { ...clientTls, caFile: '/tls/ca.crt\nx' } }, 'clientTls.caFile', /line break/],

    ['adminUsers that is not a list', { adminUsers: 'ops' }, 'adminUsers', /must be a list of role names/],
    ['an admin user with a comma (list injection)', { adminUsers: ['ops,attacker'] }, 'adminUsers[0]', /not a lowercase SQL identifier/],
    ['an admin user with a space', { adminUsers: ['ops x'] }, 'adminUsers[0]', /contains " "/],
    ['an uppercase admin user', { adminUsers: ['ops', 'Ops'] }, 'adminUsers[1]', /not a lowercase SQL identifier/],
    ['a duplicate admin user', { adminUsers: ['ops', 'ops'] }, 'adminUsers', /lists "ops" twice/],
    ['a stats user with ;', { statsUsers: ['exporter;x'] }, 'statsUsers[0]', /contains ";"/],
    ['a stats user that is not a string', { statsUsers: [7] }, 'statsUsers[0]', /must be a string/],

    ['logConnections as a string', { logConnections: 'yes' }, 'logConnections', /true or false/],
    ['logDisconnections as a number', { logDisconnections: 1 }, 'logDisconnections', /true or false/],
    ['applicationNameAddHost as a string', { applicationNameAddHost: 'true' }, 'applicationNameAddHost', /true or false/],
    ['a relative unixSocketDir', { unixSocketDir: 'tmp' }, 'unixSocketDir', /absolute path/],
    ['a unixSocketDir with a space', { unixSocketDir: '/tmp/a b' }, 'unixSocketDir', /contains " "/],
    ['a relative pidfile', { pidfile: 'pgbouncer.pid' }, 'pidfile', /absolute path/],
    ['a logfile with a newline', { logfile: '/var/log/pgbouncer.log\nauth_type = trust' }, 'logfile', /line break/],
    ['an empty logfile', { logfile: '' }, 'logfile', /must not be empty/],
  ];

  test.each(cases)('%s', (_what, patch, field, message) => {
    const settings = '__replace' in patch ? patch.__replace : { ...BASE, ...patch };
    let error: unknown;
    try {
      renderPgbouncerIni(settings as PgbouncerSettings);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PgbouncerConfigError);
    expect((error as PgbouncerConfigError).field).toBe(field);
    expect((error as Error).message.startsWith(`PgBouncer ${field}: `)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  test('every rejection case is distinct and the base settings are valid', () => {
    expect(new Set(cases.map(([what]) => what)).size).toBe(cases.length);
    expect(() => renderPgbouncerIni(BASE)).not.toThrow();
  });
});

describe('pgbouncerSettingsForPlan', () => {
  const where = { host: 'tenant-acme.abc123xyz.eu-west-1.rds.amazonaws.com', dbname: 'tenant_acme', serverTlsCaFile: '/etc/pgbouncer/rds-ca.pem' };

  test.each(PLANS.map((plan) => [plan]))('%s: pool sizes come from PLAN_PROFILES', (plan: Plan) => {
    const profile = PLAN_PROFILES[plan].pgbouncer;
    const settings = pgbouncerSettingsForPlan(plan, where);
    expect(settings).toMatchObject({
      ...where,
      defaultPoolSize: profile.defaultPoolSize,
      reservePoolSize: profile.reservePoolSize,
      maxClientConn: profile.maxClientConn,
      maxDbConnections: profile.defaultPoolSize + profile.reservePoolSize,
    });
    const ini = pgbouncerSection(settings);
    expect(ini.get('default_pool_size')).toBe(String(profile.defaultPoolSize));
    expect(ini.get('reserve_pool_size')).toBe(String(profile.reservePoolSize));
    expect(ini.get('max_client_conn')).toBe(String(profile.maxClientConn));
    expect(ini.get('max_db_connections')).toBe(String(profile.defaultPoolSize + profile.reservePoolSize));
  });

  test('explicit pool sizes win over the plan', () => {
    expect(pgbouncerSettingsForPlan('starter', { ...where, defaultPoolSize: 3, reservePoolSize: 0, maxClientConn: 30 })).toMatchObject({
      defaultPoolSize: 3, reservePoolSize: 0, maxClientConn: 30, maxDbConnections: 3,
    });
    expect(pgbouncerSettingsForPlan('pro', { ...where, maxDbConnections: 21 }).maxDbConnections).toBe(21);
  });

  test.each([['gold'], ['__proto__'], ['constructor'], ['toString']])('refuses the unknown plan %p', (plan) => {
    expect(() => pgbouncerSettingsForPlan(plan as Plan, where)).toThrow(/^PgBouncer plan: unknown plan/);
  });

  test('validates the result', () => {
    expect(() => pgbouncerSettingsForPlan('pro', { ...where, host: 'db\nadmin_users = x' })).toThrow(/^PgBouncer host: .*line break/);
    expect(() => pgbouncerSettingsForPlan('pro', { ...where, maxClientConn: 10 })).toThrow(/^PgBouncer maxClientConn:/);
  });
});

describe('renderUserlist', () => {
  const verifier = 'SCRAM-SHA-256$4096:A06J5ZQeFBrk91GUMY32wQ==$MM1JXFaXVU1Fi3CzdDYGmu1fsKJiNg5ZX9gPWGIKfiU=:BINZwtDXVqmiFxZaHnz7TBMK4BvOMRtlCEIg9nxqU6A=';

  test('writes one "name" "secret" line per user, double quotes doubled', () => {
    expect(renderUserlist([
      { name: 'tenant_acme_app', secret: verifier },
      { name: 'reporting', secret: 'pa ss"word""' },
      { name: 'we"ird', secret: 'md545f2603610af569b6155c45067268c6b' },
    ])).toBe(
      `"tenant_acme_app" "${verifier}"\n"reporting" "pa ss""word"""""\n"we""ird" "md545f2603610af569b6155c45067268c6b"\n`,
    );
  });

  test('an empty list is an empty file', () => {
    expect(renderUserlist([])).toBe('');
  });

  test('keeps every other character of the secret as is', () => {
    const secret = `'; \\ # = $ % \` é 🔑`;
    expect(renderUserlist([{ name: 'app', secret }])).toBe(`"app" "${secret}"\n`);
  });

  test.each<[string, unknown, string, RegExp]>([
    ['not a list', { name: 'a', secret: 'b' }, 'users', /must be a list/],
    ['an entry that is not an object', ['app'], 'users[0]', /must be \{ name, secret \}/],
    ['a name with a newline (another entry)', [{ name: 'app"\n"admin', secret: 'x' }], 'users[0].name', /line break/],
    ['a secret with a newline', [{ name: 'app', secret: 'x"\n"admin" "x' }], 'users[0].secret', /line break/],
    ['a secret with a carriage return', [{ name: 'app', secret: 'x\r' }], 'users[0].secret', /line break/],
    ['a secret with a NUL', [{ name: 'app', secret: 'x\u0000' }], 'users[0].secret', /control character/],
    ['a name with a tab', [{ name: 'a\tb', secret: 'x' }], 'users[0].name', /control character/],
    ['an empty name', [{ name: '', secret: 'x' }], 'users[0].name', /non-empty string/],
    ['an empty secret', [{ name: 'app', secret: '' }], 'users[0].secret', /non-empty string/],
    ['a missing secret', [{ name: 'app' }], 'users[0].secret', /non-empty string/],
    ['a name over 63 bytes', [{ name: 'é'.repeat(32), secret: 'x' }], 'users[0].name', /longer than 63 bytes/],
    ['a duplicate name', [{ name: 'app', secret: 'x' }, { name: 'app', secret: 'y' }], 'users[1].name', /listed twice/],
  ])('refuses %s', (_what, users, field, message) => {
    let error: unknown;
    try {
      renderUserlist(users as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PgbouncerConfigError);
    expect((error as PgbouncerConfigError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
  });
});
