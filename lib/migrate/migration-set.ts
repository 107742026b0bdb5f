import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { splitSqlStatements } from './split-sql';

/**
 * Versioned SQL migrations of one directory (`migrations/tenant`, `migrations/pool`,
 * `migrations/control-plane`): loading, validation and checksums.
 *
 * Files are `NNNN_<name>.up.sql` with an optional `NNNN_<name>.down.sql`; NNNN is the version,
 * an integer ≥ 1 of at least four digits, unique per directory (gaps allowed). A first line
 * `-- tenancy:no-transaction` runs the file outside a transaction, one statement at a time.
 */

/** First line that makes a file run outside a transaction. */
export const NO_TRANSACTION_DIRECTIVE = '-- tenancy:no-transaction';

const FILE_NAME = /^(\d{4,})_([a-z0-9][a-z0-9_]*)\.(up|down)\.sql$/;
const DIRECTIVE_LINE = /^\s*--\s*tenancy:(.*)$/;

/** One direction of a migration: its file, its SQL and whether it runs in a transaction. */
export interface MigrationScript {
  readonly file: string;
  readonly sql: string;
  readonly transactional: boolean;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SHA-256 (hex) of the `.up.sql` bytes, recorded when applied; a change is reported as `edited`. */
  readonly checksum: string;
  readonly up: MigrationScript;
  readonly down?: MigrationScript;
}

export interface MigrationSet {
  /** Directory the set was loaded from (or a label for sets built in memory). */
  readonly dir: string;
  /** Ascending by version. */
  readonly migrations: readonly Migration[];
}

/** The three sets of a repository: silo and bridge targets share `tenant`. */
export interface MigrationSets {
  readonly tenant?: MigrationSet;
  readonly pool?: MigrationSet;
  readonly 'control-plane'?: MigrationSet;
}

/** Every problem of a migration directory, each naming its file. */
export class MigrationLoadError extends Error {
  constructor(readonly dir: string, readonly problems: readonly string[]) {
    super(`invalid migrations in ${dir}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'MigrationLoadError';
  }
}

export const checksumOf = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** A file's SQL and whether it carries the no-transaction directive; directive problems go to `problems`. */
function parseScript(file: string, text: string, problems: string[]): MigrationScript {
  const name = basename(file);
  const lines = text.split(/\r?\n/);
  let transactional = true;
  lines.forEach((line, i) => {
    const m = DIRECTIVE_LINE.exec(line);
    if (!m) return;
    const directive = m[1].trim();
    if (directive !== 'no-transaction') {
      problems.push(`${name}:${i + 1}: unknown directive "-- tenancy:${directive}" (the only one is "${NO_TRANSACTION_DIRECTIVE}")`);
    } else if (i !== 0) {
      problems.push(`${name}:${i + 1}: "${NO_TRANSACTION_DIRECTIVE}" must be the first line of the file`);
    } else {
      transactional = false;
    }
  });
  if (text.includes('\0')) problems.push(`${name}: contains a NUL byte`);
  if (!transactional) {
    try {
      splitSqlStatements(text);
    } catch (e) {
      problems.push(`${name}: cannot be split into statements: ${(e as Error).message}`);
    }
  }
  if (!/\S/.test(lines.filter((l) => !/^\s*--/.test(l)).join('\n'))) problems.push(`${name}: contains no SQL`);
  return { file, sql: text, transactional };
}

/**
 * Builds a set from file names and contents (`{ '0001_init.up.sql': '…' }`), with the same
 * checks as {@link loadMigrationSet}; throws {@link MigrationLoadError} listing every problem.
 */
export function migrationSetFromFiles(dir: string, files: Readonly<Record<string, string | Buffer>>): MigrationSet {
  const problems: string[] = [];
  const ups = new Map<number, { file: string; name: string; bytes: Buffer }>();
  const downs = new Map<number, { file: string; name: string; bytes: Buffer }>();
  for (const fileName of Object.keys(files).sort()) {
    const m = FILE_NAME.exec(fileName);
    if (!m) {
      problems.push(`${fileName}: bad file name (expected NNNN_name.up.sql or NNNN_name.down.sql: a version of at least 4 digits, a name of a-z, 0-9 and _)`);
      continue;
    }
    const version = Number(m[1]);
    if (!Number.isSafeInteger(version) || version < 1 || version > 2_147_483_647) {
      problems.push(`${fileName}: version ${m[1]} is out of range (1 to 2147483647)`);
      continue;
    }
    const raw = files[fileName];
    const entry = { file: join(dir, fileName), name: m[2], bytes: Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8') };
    const byVersion = m[3] === 'up' ? ups : downs;
    const other = byVersion.get(version);
    if (other) {
      problems.push(`${fileName}: duplicate version ${version} (also ${basename(other.file)})`);
      continue;
    }
    byVersion.set(version, entry);
  }
  for (const [version, down] of downs) {
    const up = ups.get(version);
    if (!up) problems.push(`${basename(down.file)}: no matching ${String(version).padStart(4, '0')}_${down.name}.up.sql`);
    else if (up.name !== down.name) problems.push(`${basename(down.file)}: name differs from ${basename(up.file)}`);
  }
  const migrations: Migration[] = [];
  for (const version of [...ups.keys()].sort((a, b) => a - b)) {
    const up = ups.get(version)!;
    const down = downs.get(version);
    const text = decodeUtf8(up.bytes, up.file, problems);
    migrations.push({
      version,
      name: up.name,
      checksum: checksumOf(up.bytes),
      up: parseScript(up.file, text, problems),
      down: down && down.name === up.name ? parseScript(down.file, decodeUtf8(down.bytes, down.file, problems), problems) : undefined,
    });
  }
  if (problems.length) throw new MigrationLoadError(dir, problems);
  return { dir, migrations };
}

function decodeUtf8(bytes: Buffer, file: string, problems: string[]): string {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) problems.push(`${basename(file)}: not valid UTF-8`);
  return text.replace(/^\uFEFF/, '');
}

/**
 * Loads one migration directory. Every `*.sql` file must follow the naming rule; other files
 * (a README) and dot files are ignored. Throws {@link MigrationLoadError} with all problems.
 */
export function loadMigrationSet(dir: string): MigrationSet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MigrationLoadError(dir, [`${dir}: not a directory`]);
  const files: Record<string, Buffer> = {};
  const problems: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || !entry.name.endsWith('.sql')) continue;
    if (!entry.isFile()) {
      problems.push(`${entry.name}: not a regular file`);
      continue;
    }
    files[entry.name] = readFileSync(join(dir, entry.name));
  }
  let set: MigrationSet | undefined;
  try {
    set = migrationSetFromFiles(dir, files);
  } catch (e) {
    if (!(e instanceof MigrationLoadError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length || !set) throw new MigrationLoadError(dir, problems);
  return set;
}

/** Loads `<root>/tenant`, `<root>/pool` and `<root>/control-plane`, those that exist. */
export function loadMigrationSets(root: string): MigrationSets {
  const load = (name: string) => (existsSync(join(root, name)) ? loadMigrationSet(join(root, name)) : undefined);
  const sets = { tenant: load('tenant'), pool: load('pool'), 'control-plane': load('control-plane') };
  if (!sets.tenant && !sets.pool && !sets['control-plane']) {
    throw new MigrationLoadError(root, [`${root}: none of tenant/, pool/, control-plane/ exists`]);
  }
  return sets;
}

/** The latest version of a set (0 when empty). */
export const latestVersion = (set: MigrationSet): number => set.migrations.at(-1)?.version ?? 0;
