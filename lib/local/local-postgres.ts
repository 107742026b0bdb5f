import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientConfig } from 'pg';
import { freePort } from './free-port';

/**
 * A throwaway PostgreSQL server for `npm run deploy:local`: it stands in for every RDS instance
 * and Aurora cluster of the local deploy. Data in a temporary directory; listens on 127.0.0.1
 * (scram-sha-256, no TLS: local development only) and on a Unix socket for the superuser. Run as
 * the `postgres` OS user when started as root (initdb and postgres refuse root).
 */

/** PostgreSQL's binaries are missing. */
export class PostgresUnavailableError extends Error {}

/** initdb/pg_ctl: TENANCY_PG_BIN, else the newest /usr/lib/postgresql/<major>/bin. */
export function postgresBin(): string {
  if (process.env.TENANCY_PG_BIN) return process.env.TENANCY_PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((v) => /^[0-9]+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (majors.length === 0) throw new PostgresUnavailableError('PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): apt-get install postgresql-15, or set TENANCY_PG_BIN');
  return join(root, majors[0], 'bin');
}

export interface LocalPostgres {
  readonly port: number;
  readonly dir: string;
  readonly dataDir: string;
  /** The superuser over the Unix socket (no password). */
  readonly admin: ClientConfig;
  stop(): void;
}

function serviceIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) };
  } catch {
    throw new PostgresUnavailableError('running as root, and PostgreSQL refuses root, but there is no "postgres" OS user (install postgresql-15)');
  }
}

function run(command: string, args: readonly string[], cwd: string): void {
  const ids = serviceIds();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  try {
    execFileSync(command, [...args], { cwd, env: { ...env, HOME: cwd, LC_ALL: 'C', LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, ...(ids ?? {}) });
  } catch (e: any) {
    throw new Error(`${command} ${args.join(' ')} failed: ${[e.stderr, e.stdout].filter(Boolean).join('\n').trim() || e.message}`);
  }
}


/** initdb + pg_ctl start on a free port; resolves once it accepts connections. */
export async function startLocalPostgres(): Promise<LocalPostgres> {
  const bin = postgresBin();
  const ids = serviceIds();
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-local-pg-'));
  if (ids) chownSync(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o700);
  const dataDir = join(dir, 'data');
  try {
    run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C', '--no-sync'], dir);
    const port = await freePort();
    writeFileSync(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\npassword_encryption = 'scram-sha-256'\nfsync = off\n`);
    if (ids) for (const f of ['pg_hba.conf', 'postgresql.auto.conf']) chownSync(join(dataDir, f), ids.uid, ids.gid);
    run(join(bin, 'pg_ctl'), ['start', '-D', dataDir, '-l', join(dir, 'postgres.log'), '-w', '-t', '60', '-s'], dir);
    return {
      port,
      dir,
      dataDir,
      admin: { host: dir, port, user: 'postgres', database: 'postgres' },
      stop: () => stopLocalPostgres(dir),
    };
  } catch (e) {
    const log = existsSync(join(dir, 'postgres.log')) ? readFileSync(join(dir, 'postgres.log'), 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}${log ? `\n--- postgres log ---\n${log}` : ''}`);
  }
}

/** Stops the server of a directory from {@link startLocalPostgres} (if running) and removes it. */
export function stopLocalPostgres(dir: string): void {
  const dataDir = join(dir, 'data');
  try {
    if (existsSync(join(dataDir, 'postmaster.pid'))) run(join(postgresBin(), 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60', '-s'], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
