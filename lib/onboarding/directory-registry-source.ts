import { execFile } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Document, parse, parseDocument } from 'yaml';
import { assertSafeSlug } from '../naming';
import { loadRegistry, OFFBOARDED_DIR, type Registry } from '../registry/load-registry';
import type { Plan, TenantStatus } from '../registry/tenant-schema';
import { RegistryConflictError, sameEntry, type RegistrySource, type TenantEntry } from './registry-source';

const run = promisify(execFile);
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface DirectoryRegistrySourceOptions {
  /** Project root: platform.yaml and tenants/. */
  readonly root: string;
  /** Commit each change when the root is in a git work tree (`auto`), or never. @default 'auto' */
  readonly git?: 'auto' | 'off';
  /**
   * Runs `fn` exclusively across every process that commits to this work tree (git's index
   * allows one writer): the lifecycle passes a Redis lock. @default an in-process mutex only
   */
  readonly serialize?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * The GitOps registry: `tenants/<slug>.yaml`. A new file is written to a hidden temporary file
 * in the same directory (ignored by loadRegistry), flushed, then hard-linked to its name, which
 * fails if the name exists: a file appears whole or not at all, and never replaces another
 * tenant's. A status change rewrites the file the same way and renames it over the old one
 * (comments kept). When offboarding completes, the entry (status `offboarded`) and its values
 * file move to `tenants/offboarded/<slug>.<id>.yaml` (and `.values.yaml`): kept for auditors,
 * skipped by loadRegistry, so a new tenant may take the slug. Then, in a git work tree, the files
 * alone are committed (`git commit -- <files>`), leaving anything else staged in the tree alone.
 * Pushing is the pipeline's business. A temporary file left by a writer killed before it linked or
 * renamed it is removed by the next write of that entry (writes of one tenant's entry run one at a
 * time, under the tenant's lock, so any found then is a dead writer's).
 */
export class DirectoryRegistrySource implements RegistrySource {
  readonly kind = 'directory' as const;
  private readonly tenantsDir: string;
  private gitRoot?: Promise<string | undefined>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: DirectoryRegistrySourceOptions) {
    this.tenantsDir = join(options.root, 'tenants');
  }

  describe(): string {
    return `tenants/ in ${this.options.root}${this.options.git === 'off' ? '' : ' (committed when in a git work tree)'}`;
  }

  async load(): Promise<Registry> {
    return loadRegistry({ root: this.options.root });
  }

  private fileOf(slug: string): string {
    assertSafeSlug(slug, 'registry');
    return join(this.tenantsDir, `${slug}.yaml`);
  }

  /** `tenants/offboarded/<slug>.<id><suffix>`: the tenant id keeps a later tenant with the slug from colliding. */
  private archiveFileOf(slug: string, id: string, suffix: '.yaml' | '.values.yaml' = '.yaml'): string {
    assertSafeSlug(slug, 'registry');
    if (!TENANT_ID.test(id)) throw new Error(`registry: ${JSON.stringify(id)} is not a tenant id (UUID)`);
    return join(this.tenantsDir, OFFBOARDED_DIR, `${slug}.${id.toLowerCase()}${suffix}`);
  }

  async archived(slug: string, id: string): Promise<TenantEntry | undefined> {
    const file = this.archiveFileOf(slug, id);
    return existsSync(file) ? (parse(readFileSync(file, 'utf8')) as TenantEntry) : undefined;
  }

  async get(slug: string): Promise<TenantEntry | undefined> {
    const file = this.fileOf(slug);
    const stat = lstatSync(file, { throwIfNoEntry: false });
    if (!stat) return undefined;
    if (!stat.isFile()) throw new RegistryConflictError(slug, `${file} is not a regular file`);
    return parse(readFileSync(file, 'utf8')) as TenantEntry;
  }

  async create(entry: TenantEntry, message: string): Promise<'created' | 'unchanged'> {
    const file = this.fileOf(entry.slug);
    const doc = new Document(entry);
    doc.commentBefore = ' yaml-language-server: $schema=./tenant.schema.json';
    const text = doc.toString({ lineWidth: 0 });
    const tmp = this.writeTemp(entry.slug, text);
    let outcome: 'created' | 'unchanged';
    try {
      linkSync(tmp, file);
      fsyncDir(this.tenantsDir);
      outcome = 'created';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const existing = await this.get(entry.slug);
      if (!sameEntry(existing, entry)) {
        throw new RegistryConflictError(entry.slug, `${relative(this.options.root, file)} already exists with another tenant (id ${JSON.stringify((existing as { id?: unknown } | undefined)?.id)})`);
      }
      outcome = 'unchanged';
    } finally {
      unlinkSync(tmp);
    }
    await this.commit([file], message);
    return outcome;
  }

  async setStatus(slug: string, status: TenantStatus, message: string): Promise<'updated' | 'unchanged'> {
    return this.setField(slug, 'status', status, message);
  }

  async setPlan(slug: string, plan: Plan, message: string): Promise<'updated' | 'unchanged'> {
    return this.setField(slug, 'plan', plan, message);
  }

  /** Rewrites one top-level scalar of an entry (comments kept), replaced whole, then committed. */
  private async setField(slug: string, field: 'status' | 'plan', value: string, message: string): Promise<'updated' | 'unchanged'> {
    const file = this.fileOf(slug);
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (doc.get(field) === value) {
      await this.commit([file], message); // a retry after the write but before the commit
      return 'unchanged';
    }
    doc.set(field, value);
    this.replace(file, slug, doc.toString({ lineWidth: 0 }));
    fsyncDir(this.tenantsDir);
    await this.commit([file], message);
    return 'updated';
  }

  /**
   * Written in this order, so an attempt that dies anywhere is completed by the retry: the archive
   * (status offboarded; replaced whole if an earlier attempt wrote it), the values file moved,
   * the entry removed, one commit of all of them.
   */
  async archive(slug: string, id: string, message: string): Promise<'archived' | 'unchanged'> {
    const file = this.fileOf(slug);
    const values = join(this.tenantsDir, `${slug}.values.yaml`);
    const archive = this.archiveFileOf(slug, id);
    const archivedValues = this.archiveFileOf(slug, id, '.values.yaml');
    const current = await this.get(slug);
    if (String(current?.id ?? '').toLowerCase() !== id.toLowerCase()) {
      // Archived by an earlier attempt (the slug may belong to a new tenant since): commit what it left uncommitted.
      if (!existsSync(archive)) throw new RegistryConflictError(slug, `no registry entry of tenant ${id}: neither ${relative(this.options.root, file)} (${current ? `tenant ${String(current.id)}` : 'absent'}) nor ${relative(this.options.root, archive)}`);
      await this.commit([archive, archivedValues, ...(current ? [] : [file, values])], message);
      return 'unchanged';
    }
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.set('status', 'offboarded');
    // The editor's schema line, seen from the archive, is one directory up.
    const text = doc.toString({ lineWidth: 0 }).replace(/^(# yaml-language-server: \$schema=)\.\/tenant\.schema\.json$/m, '$1../tenant.schema.json');
    const archiveDir = join(this.tenantsDir, OFFBOARDED_DIR);
    mkdirSync(archiveDir, { recursive: true });
    this.replace(archive, slug, text);
    if (existsSync(values)) renameSync(values, archivedValues);
    fsyncDir(archiveDir);
    unlinkSync(file);
    fsyncDir(this.tenantsDir);
    await this.commit([file, values, archive, archivedValues], message);
    return 'archived';
  }

  /** Replaces (or creates) `file` whole: a temporary file in its directory, renamed over it. */
  private replace(file: string, slug: string, text: string): void {
    const tmp = this.writeTemp(slug, text, dirname(file));
    try {
      renameSync(tmp, file);
    } catch (e) {
      unlinkSync(tmp);
      throw e;
    }
  }

  private writeTemp(slug: string, text: string, dir = this.tenantsDir): string {
    const prefix = `.${slug}.yaml.`;
    for (const name of readdirSync(dir)) if (name.startsWith(prefix) && name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
    const tmp = join(dir, `${prefix}${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    const fd = openSync(tmp, 'wx', 0o644);
    let written = false;
    try {
      writeSync(fd, text);
      fsyncSync(fd);
      written = true;
    } finally {
      closeSync(fd);
      if (!written) rmSync(tmp, { force: true });
    }
    return tmp;
  }

  /**
   * Commits `files` alone (written, or removed) when the root is in a git work tree and they differ
   * from HEAD. A path neither on disk nor known to git (e.g. a values file the tenant never had) is left out.
   */
  private async commit(files: readonly string[], message: string): Promise<void> {
    if (this.options.git === 'off') return;
    const top = await (this.gitRoot ??= gitTopLevel(this.options.root));
    if (!top) return;
    const exclusive = <T>(fn: () => Promise<T>) => (this.options.serialize ? this.options.serialize(fn) : fn());
    const next = this.chain.then(() => exclusive(async () => {
      const git = (...args: string[]) => run('git', ['-C', top, ...args], { env: gitEnv(), maxBuffer: 16 * 1024 * 1024 });
      const known = async (path: string) => existsSync(join(top, path)) || (await git('ls-files', '--error-unmatch', '--', path).then(() => true, () => false));
      const paths: string[] = [];
      for (const file of files) if (await known(relative(top, file))) paths.push(relative(top, file));
      if (paths.length === 0) return;
      await git('add', '--all', '--', ...paths);
      // What differs from HEAD (a removal listed as itself, not as half of a rename).
      const { stdout } = await git('diff', '--cached', '--name-only', '--no-renames', '-z', '--', ...paths);
      const changed = stdout.split('\0').filter(Boolean);
      if (changed.length === 0) return; // already committed (a retry)
      await git('commit', '--quiet', '--no-verify', '-m', message, '--', ...changed);
    }));
    this.chain = next.catch(() => undefined);
    await next;
  }
}

async function gitTopLevel(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', dir, 'rev-parse', '--show-toplevel'], { env: gitEnv() });
    return stdout.trim() || undefined;
  } catch {
    return undefined; // not a work tree, or no git
  }
}

/** Commits need an identity: the environment's or git config's, else the pipeline's own. */
function gitEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_AUTHOR_NAME: process.env.GIT_AUTHOR_NAME ?? 'tenancy',
    GIT_AUTHOR_EMAIL: process.env.GIT_AUTHOR_EMAIL ?? 'tenancy@localhost',
    GIT_COMMITTER_NAME: process.env.GIT_COMMITTER_NAME ?? process.env.GIT_AUTHOR_NAME ?? 'tenancy',
    GIT_COMMITTER_EMAIL: process.env.GIT_COMMITTER_EMAIL ?? process.env.GIT_AUTHOR_EMAIL ?? 'tenancy@localhost',
    GIT_TERMINAL_PROMPT: '0',
  };
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not supported on every filesystem; the rename/link itself is atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
