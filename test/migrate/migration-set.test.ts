import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checksumOf, loadMigrationSet, loadMigrationSets, MigrationLoadError } from '../../lib/migrate/migration-set';
import { chunkSteps, planTarget } from '../../lib/migrate/plan';
import { splitSqlStatements } from '../../lib/migrate/split-sql';
import { parse as parseConnectionString } from 'pg-connection-string';
import { tenantConnection } from '../../lib/migrate/control-plane';
import { describeDatabase } from '../../lib/migrate/targets';
import { loadTargetsFile, TargetsFileError } from '../../lib/migrate/targets-file';
import { REPO_MIGRATIONS, set } from './helpers';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tenancy-migrations-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
};
const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof MigrationLoadError || e instanceof TargetsFileError) return [...e.problems];
    throw e;
  }
  throw new Error('expected a load error');
};

describe('migration sets', () => {
  test('the repository sets load: tenant, pool and control-plane, ascending, with checksums of the up files', () => {
    const sets = loadMigrationSets(REPO_MIGRATIONS);
    expect(sets.tenant!.migrations.map((m) => [m.version, m.name, Boolean(m.down)]).slice(0, 2)).toEqual([[1, 'projects', true], [2, 'tasks', true]]);
    expect(sets.pool!.migrations[0].version).toBe(1);
    expect(sets['control-plane']!.migrations.map((m) => m.name).slice(0, 2)).toEqual(['init', 'migration_statuses']);
    const m = sets.tenant!.migrations[0];
    expect(m.checksum).toBe(checksumOf(require('node:fs').readFileSync(m.up.file)));
    expect(m.up.transactional).toBe(true);
  });

  test('the no-transaction directive on the first line', () => {
    const s = loadMigrationSet(write({ '0001_idx.up.sql': '-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);', '0001_idx.down.sql': 'DROP INDEX i;' }));
    expect(s.migrations[0].up.transactional).toBe(false);
    expect(s.migrations[0].down!.transactional).toBe(true);
  });

  test('every problem is reported at once, each naming its file', () => {
    mkdirSync(join(dir, '0009_dir.up.sql'));
    const problems = problemsOf(() => loadMigrationSet(write({
      '0001_a.up.sql': 'CREATE TABLE a ();',
      '0001_b.up.sql': 'CREATE TABLE b ();',
      '00002_c.up.sql': 'CREATE TABLE c ();',
      '0002_d.up.sql': 'CREATE TABLE d ();',
      '003_short.up.sql': 'SELECT 1;',
      '0004_Upper.up.sql': 'SELECT 1;',
      '0005_e.sql': 'SELECT 1;',
      '0006_f.down.sql': 'DROP TABLE f;',
      '0007_g.up.sql': 'SELECT 1;',
      '0007_h.down.sql': 'SELECT 1;',
      '0008_late.up.sql': 'SELECT 1;\n-- tenancy:no-transaction\n',
      '0010_unknown.up.sql': '-- tenancy:no-transactions\nSELECT 1;',
      '0011_empty.up.sql': '-- nothing here\n\n',
      '0012_open.up.sql': "-- tenancy:no-transaction\nSELECT 'unterminated;",
      '0000_zero.up.sql': 'SELECT 1;',
      'README.md': 'ignored',
      '.hidden.sql': 'ignored',
    })));
    expect(problems).toEqual(expect.arrayContaining([
      '0009_dir.up.sql: not a regular file',
      '0001_b.up.sql: duplicate version 1 (also 0001_a.up.sql)',
      '0002_d.up.sql: duplicate version 2 (also 00002_c.up.sql)',
      expect.stringMatching(/^003_short\.up\.sql: bad file name/),
      expect.stringMatching(/^0004_Upper\.up\.sql: bad file name/),
      expect.stringMatching(/^0005_e\.sql: bad file name/),
      '0006_f.down.sql: no matching 0006_f.up.sql',
      '0007_h.down.sql: name differs from 0007_g.up.sql',
      '0008_late.up.sql:2: "-- tenancy:no-transaction" must be the first line of the file',
      '0010_unknown.up.sql:1: unknown directive "-- tenancy:no-transactions" (the only one is "-- tenancy:no-transaction")',
      '0011_empty.up.sql: contains no SQL',
      '0012_open.up.sql: cannot be split into statements: unterminated string literal',
      expect.stringMatching(/^0000_zero\.up\.sql: version 0000 is out of range/),
    ]));
    expect(problems).toHaveLength(13);
    expect(problems.join('\n')).not.toMatch(/README|hidden/);
  });

  test('a missing directory, and a root without any set', () => {
    expect(problemsOf(() => loadMigrationSet(join(dir, 'nope')))).toEqual([`${join(dir, 'nope')}: not a directory`]);
    expect(() => loadMigrationSets(dir)).toThrow(/none of tenant\/, pool\/, control-plane\/ exists/);
  });

  test('a symbolic link is not a migration', () => {
    writeFileSync(join(dir, 'real.txt'), 'SELECT 1;');
    symlinkSync(join(dir, 'real.txt'), join(dir, '0001_link.up.sql'));
    expect(problemsOf(() => loadMigrationSet(dir))).toEqual(['0001_link.up.sql: not a regular file']);
  });
});

describe('splitSqlStatements', () => {
  test('splits at top-level semicolons only', () => {
    const sql = `-- a comment; with a semicolon
CREATE INDEX CONCURRENTLY a ON t (x);
/* block; /* nested; */ still comment; */
INSERT INTO t VALUES ('it''s; fine', E'back\\'slash;', "odd;""name");
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
DO $$ BEGIN PERFORM 1; END $$
;;
SELECT $1::int`;
    expect(splitSqlStatements(sql)).toEqual([
      '-- a comment; with a semicolon\nCREATE INDEX CONCURRENTLY a ON t (x)',
      `/* block; /* nested; */ still comment; */\nINSERT INTO t VALUES ('it''s; fine', E'back\\'slash;', "odd;""name")`,
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$',
      'DO $$ BEGIN PERFORM 1; END $$',
      'SELECT $1::int',
    ]);
  });

  test('refuses what it cannot split', () => {
    expect(() => splitSqlStatements("SELECT 'x")).toThrow(/unterminated string/);
    expect(() => splitSqlStatements('SELECT 1 /* x')).toThrow(/unterminated \/\* comment/);
    expect(() => splitSqlStatements('SELECT $q$ x')).toThrow(/unterminated dollar-quoted string \$q\$/);
    expect(() => splitSqlStatements('SELECT "x')).toThrow(/unterminated quoted identifier/);
  });
});

describe('planTarget', () => {
  const s = set({
    '0001_a.up.sql': 'CREATE TABLE a ();',
    '0001_a.down.sql': 'DROP TABLE a;',
    '0002_b.up.sql': '-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY b ON a ((1));',
    '0003_c.up.sql': 'CREATE TABLE c ();',
    '0003_c.down.sql': 'DROP TABLE c;',
    '0004_d.up.sql': 'CREATE TABLE d ();',
    '0004_d.down.sql': 'DROP TABLE d;',
  });
  const applied = (...versions: number[]) => versions.map((v) => ({ version: v, name: s.migrations[v - 1].name, checksum: s.migrations[v - 1].checksum }));

  test('up: pending versions in order (gaps filled), bounded by --to; chunks split at no-transaction files', () => {
    const plan = planTarget(s, applied(1, 3), { direction: 'up' });
    expect(plan.action === 'migrate' && plan.steps.map((x) => x.migration.version)).toEqual([2, 4]);
    const all = planTarget(s, [], { direction: 'up' });
    expect(all.action === 'migrate' && chunkSteps(all.steps).map((c) => c.map((x) => x.migration.version))).toEqual([[1], [2], [3, 4]]);
    const to = planTarget(s, [], { direction: 'up', toVersion: 2 });
    expect(to.action === 'migrate' && to.steps.map((x) => x.migration.version)).toEqual([1, 2]);
    expect(planTarget(s, applied(1, 2, 3, 4), { direction: 'up' })).toEqual({ action: 'none', version: 4 });
  });

  test('edited and unknown applied versions', () => {
    expect(planTarget(s, [{ ...applied(1)[0], checksum: 'x' }], { direction: 'up' })).toEqual({ action: 'edited', version: 1, edited: [{ version: 1, name: 'a' }] });
    const unknown = planTarget(s, [...applied(1), { version: 9, name: 'z', checksum: 'y' }], { direction: 'up' });
    expect(unknown).toMatchObject({ action: 'refuse', version: 9 });
    expect(unknown.action === 'refuse' && unknown.error).toMatch(/applied migration 9 \(z\) not in test-migrations/);
  });

  test('down: newest first down to --to; a missing down file refuses', () => {
    const plan = planTarget(s, applied(1, 2, 3, 4), { direction: 'down', toVersion: 2 });
    expect(plan.action === 'migrate' && plan.steps.map((x) => [x.migration.version, x.direction, x.script.file])).toEqual([
      [4, 'down', 'test-migrations/0004_d.down.sql'],
      [3, 'down', 'test-migrations/0003_c.down.sql'],
    ]);
    const refuse = planTarget(s, applied(1, 2, 3, 4), { direction: 'down', toVersion: 0 });
    expect(refuse.action === 'refuse' && refuse.error).toBe('cannot revert 2 (b): test-migrations/0002_b.down.sql does not exist');
  });
});

describe('targets file', () => {
  test('YAML with named connections, object connections and every kind', () => {
    const file = join(dir, 'targets.yaml');
    writeFileSync(join(dir, 'ca.crt'), 'x');
    writeFileSync(file, `
connections:
  bridge: postgres://migrator@bridge.example.internal:5432/tenants?sslmode=verify-full
targets:
  - { kind: bridge, slug: acme, tenantId: 2076941a-0207-46ac-9fc3-25d79442d9ff, connection: bridge }
  - { kind: bridge, slug: globex, connection: bridge }
  - kind: silo
    slug: initech
    connection: { host: initech.example.internal, user: migrator, passwordEnv: INITECH_PW, sslmode: verify-full, sslrootcert: ca.crt }
  - { kind: pool, connection: "postgres://migrator@pool.example.internal/pool", role: pool_owner }
  - { kind: control-plane, connection: "postgres://migrator@cp.example.internal/control_plane?sslmode=verify-full" }
`);
    const targets = loadTargetsFile(file, { INITECH_PW: 'p@ss word' });
    expect(targets.map((t) => [t.kind, t.name, t.schema])).toEqual([
      ['bridge', 'tenant_acme', 'tenant_acme'],
      ['bridge', 'tenant_globex', 'tenant_globex'],
      ['silo', 'tenant_initech', 'tenant_initech'],
      ['pool', 'pool', 'pool'],
      ['control-plane', 'control-plane', 'tenancy'],
    ]);
    expect(targets[0].connection).toBe(targets[1].connection); // one database, one pool
    expect(targets[0].tenantId).toBe('2076941a-0207-46ac-9fc3-25d79442d9ff');
    expect(targets[2].connection.connectionString).toBe(
      `postgres://migrator:p%40ss%20word@/tenant_initech?host=initech.example.internal&sslmode=verify-full&sslrootcert=${encodeURIComponent(join(dir, 'ca.crt'))}`,
    );
    expect(targets[3].role).toBe('pool_owner');
  });

  test('databases are described without credentials', () => {
    expect(['postgres://postgres@/b?host=%2Ftmp%2Fx&port=5433', 'postgres:///b?host=/tmp/y', 'postgres://u:secret@h.example:6543/db', 'postgresql://h/db']
      .map((connectionString) => describeDatabase({ connectionString }))).toEqual(['/tmp/x:5433/b', '/tmp/y:5432/b', 'h.example:6543/db', 'h:5432/db']);
    expect(describeDatabase({ host: 'h', port: 1, database: 'd', password: 'secret' })).toBe('h:1/d');
  });

  test('tenant connections from a placement and a credentials URL', () => {
    const { connectionString } = tenantConnection({ host: 'bridge.db.example.internal', port: 6543, database: 'tenants' }, 'postgres://migrator:p%40ss@ignored.example:1/ignored?sslmode=require&host=/evil');
    const parsed = parseConnectionString(connectionString!);
    expect(parsed).toMatchObject({ host: 'bridge.db.example.internal', port: '6543', database: 'tenants', user: 'migrator', password: 'p@ss', sslmode: 'require' });
    expect(parseConnectionString(tenantConnection({ host: '/var/run/postgresql', port: 5432, database: 'tenant_acme' }, 'postgres://m@x/y').connectionString!))
      .toMatchObject({ host: '/var/run/postgresql', port: '5432', database: 'tenant_acme', user: 'm' });
    expect(tenantConnection({ host: 'h', port: 5432, database: 'd' })).toEqual({ host: 'h', port: 5432, database: 'd' });
    expect(() => tenantConnection({ host: 'h', port: 5432, database: 'd' }, 'mysql://x')).toThrow(/not a postgres:\/\/ URL/);
  });

  test('problems are reported with their place in the file', () => {
    const file = join(dir, 'targets.json');
    writeFileSync(file, JSON.stringify({
      targets: [
        { kind: 'bridge', slug: 'Bad Slug', connection: 'postgres://x@h/db' },
        { kind: 'bridge', connection: 'nowhere' },
        { kind: 'silo', slug: 'ok-one', connection: { host: 'h', passwordEnv: 'MISSING_PW' } },
        { kind: 'pool', slug: 'acme', connection: 'postgres://x@h/db' },
        { kind: 'bridge', slug: 'acme', schema: 'public', connection: 'postgres://x@h/db' },
        { kind: 'tenant', connection: 'postgres://x@h/db' },
      ],
    }));
    expect(problemsOf(() => loadTargetsFile(file, {}))).toEqual([expect.stringMatching(/^targets\[5\]\.kind: /)]);
    const data = JSON.parse(require('node:fs').readFileSync(file, 'utf8'));
    data.targets.pop();
    writeFileSync(file, JSON.stringify(data));
    expect(problemsOf(() => loadTargetsFile(file, {}))).toEqual([
      expect.stringMatching(/^targets\[0\]: .*slug "Bad Slug" is not a safe tenant slug/),
      'targets[1].connection: "nowhere" is neither a postgres:// URL nor a name under connections',
      'targets[2].connection.passwordEnv: environment variable MISSING_PW is not set',
      'targets[3]: a pool target has no slug or tenantId',
      "targets[4]: a bridge target's name and schema are tenant_<slug>; do not set them",
    ]);
    writeFileSync(file, '{"targets": [}');
    expect(problemsOf(() => loadTargetsFile(file))).toEqual([expect.stringMatching(/^not valid JSON/)]);
  });
});
