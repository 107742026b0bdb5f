import { execFile } from 'node:child_process';
import { closeSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Document, parse, parseDocument } from 'yaml';
import { assertSafeSlug } from '../naming';
import { loadRegistry, type Registry } from '../registry/load-registry';
import type { TenantStatus } from '../registry/tenant-schema';
import { RegistryConflictError, sameEntry, type RegistrySource, type TenantEntry } from './registry-source';

const run = promisify(execFile);

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
 * (comments kept). Then, in a git work tree, the file alone is committed (`git commit -- <file>`),
 * leaving anything else staged in the tree alone. Pushing is the pipeline's business.
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
    await this.commit(file, message);
    return outcome;
  }

  async setStatus(slug: string, status: TenantStatus, message: string): Promise<'updated' | 'unchanged'> {
    const file = this.fileOf(slug);
    const doc = parseDocument(readFileSync(file, 'utf8'));
    if (doc.get('status') === status) {
      await this.commit(file, message); // a retry after the write but before the commit
      return 'unchanged';
    }
    doc.set('status', status);
    const tmp = this.writeTemp(slug, doc.toString({ lineWidth: 0 }));
    try {
      renameSync(tmp, file);
    } catch (e) {
      unlinkSync(tmp);
      throw e;
    }
    fsyncDir(this.tenantsDir);
    await this.commit(file, message);
    return 'updated';
  }

  private writeTemp(slug: string, text: string): string {
    const tmp = join(this.tenantsDir, `.${slug}.yaml.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return tmp;
  }

  /** Commits `file` alone when the root is in a git work tree and the file differs from HEAD. */
  private async commit(file: string, message: string): Promise<void> {
    if (this.options.git === 'off') return;
    const top = await (this.gitRoot ??= gitTopLevel(this.options.root));
    if (!top) return;
    const exclusive = <T>(fn: () => Promise<T>) => (this.options.serialize ? this.options.serialize(fn) : fn());
    const next = this.chain.then(() => exclusive(async () => {
      const path = relative(top, file);
      const git = (...args: string[]) => run('git', ['-C', top, ...args], { env: gitEnv(), maxBuffer: 16 * 1024 * 1024 });
      await git('add', '--', path);
      const { stdout } = await git('status', '--porcelain', '--', path);
      if (stdout.trim() === '') return; // already committed (a retry)
      await git('commit', '--quiet', '--no-verify', '-m', message, '--', path);
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
