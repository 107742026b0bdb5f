import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { PoolConfig } from 'pg';
import { z } from 'zod';
import { controlPlaneConnection } from '../control-plane/connection';
import { tenantSqlNames } from '../db/sql';
import { bridgeTarget, controlPlaneTarget, poolTarget, siloTarget, TARGET_KINDS, type MigrationTarget } from './targets';

/**
 * The targets file of `tenancy migrate --targets <file>` (JSON or YAML):
 *
 * ```yaml
 * connections:                       # optional: named connections, shared by many targets
 *   bridge: postgres://migrator@bridge.db.example.internal:5432/tenants?sslmode=verify-full
 * targets:
 *   - { kind: bridge, slug: acme, tenantId: 2076941a-0207-46ac-9fc3-25d79442d9ff, connection: bridge }
 *   - kind: silo
 *     slug: initech
 *     connection: { host: initech.db.example.internal, database: tenant_initech, user: migrator, passwordEnv: INITECH_PW, sslmode: verify-full }
 *   - { kind: pool, connection: postgres://migrator@pool.db.example.internal/pool, role: pool_owner }
 *   - { kind: control-plane, connection: postgres://migrator@cp.db.example.internal/control_plane }
 * ```
 *
 * A connection is a postgres:// URL, the name of an entry of `connections`, or an object (host,
 * port, database, user, passwordEnv: the environment variable holding the password, sslmode,
 * sslrootcert relative to the file). Without a password node-postgres falls back to PGPASSWORD.
 * Targets naming the same connection share one database (and one pg.Pool).
 */

const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;
const connectionObject = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  sslmode: z.enum(SSL_MODES).optional(),
  sslrootcert: z.string().min(1).optional(),
});
const connectionRef = z.union([z.string().min(1), connectionObject]);
const targetEntry = z.strictObject({
  kind: z.enum(TARGET_KINDS as [string, ...string[]]),
  slug: z.string().optional(),
  tenantId: z.string().optional(),
  name: z.string().optional(),
  schema: z.string().optional(),
  role: z.string().optional(),
  createSchema: z.boolean().optional(),
  connection: connectionRef,
});
const targetsFile = z.strictObject({
  connections: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), connectionRef).optional(),
  targets: z.array(targetEntry),
});

export class TargetsFileError extends Error {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(`${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'TargetsFileError';
  }
}

/** Reads a targets file; every problem is reported at once, each with its path in the file. */
export function loadTargetsFile(file: string, env: NodeJS.ProcessEnv = process.env): MigrationTarget[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TargetsFileError(file, [(e as Error).message]);
  }
  let data: unknown;
  try {
    // yaml is loaded only for YAML files: `tenancy migrate` starts with as few modules as it can.
    data = /\.json$/i.test(file) ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text, { schema: 'core', merge: false, uniqueKeys: true, maxAliasCount: 20 });
  } catch (e) {
    throw new TargetsFileError(file, [`not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message}`]);
  }
  return parseTargets(data, { file, baseDir: dirname(resolve(file)), env });
}

/** Targets from already-parsed data (the file's content). */
export function parseTargets(data: unknown, options: { file: string; baseDir: string; env?: NodeJS.ProcessEnv }): MigrationTarget[] {
  const env = options.env ?? process.env;
  const parsed = targetsFile.safeParse(data);
  if (!parsed.success) {
    throw new TargetsFileError(options.file, parsed.error.issues.map((i) => `${i.path.map((p, n) => (typeof p === 'number' ? `[${p}]` : `${n ? '.' : ''}${String(p)}`)).join('') || '(file)'}: ${i.message}`));
  }
  const problems: string[] = [];
  const named = new Map<string, PoolConfig>();
  const toConfig = (ref: z.infer<typeof connectionRef>, where: string, allowName: boolean, defaultDatabase?: string): PoolConfig | undefined => {
    if (typeof ref === 'string') {
      if (/^postgres(ql)?:\/\//.test(ref)) return { connectionString: ref };
      if (allowName && named.has(ref)) return named.get(ref);
      problems.push(`${where}: ${JSON.stringify(ref)} is neither a postgres:// URL nor ${allowName ? 'a name under connections' : 'allowed here'}`);
      return undefined;
    }
    const params = new URLSearchParams({ host: ref.host });
    if (ref.port) params.set('port', String(ref.port));
    if (ref.sslmode) params.set('sslmode', ref.sslmode);
    if (ref.sslrootcert) params.set('sslrootcert', resolve(options.baseDir, ref.sslrootcert));
    let password = '';
    if (ref.passwordEnv) {
      const value = env[ref.passwordEnv];
      if (value === undefined) problems.push(`${where}.passwordEnv: environment variable ${ref.passwordEnv} is not set`);
      else password = `:${encodeURIComponent(value)}`;
    }
    const user = ref.user ? `${encodeURIComponent(ref.user)}${password}@` : '';
    return { connectionString: `postgres://${user}/${encodeURIComponent(ref.database ?? defaultDatabase ?? '')}?${params}` };
  };
  for (const [name, ref] of Object.entries(parsed.data.connections ?? {})) {
    const config = toConfig(ref, `connections.${name}`, false);
    if (config) named.set(name, config);
  }
  const targets: MigrationTarget[] = [];
  parsed.data.targets.forEach((entry, i) => {
    const where = `targets[${i}]`;
    let siloDatabase: string | undefined;
    if (entry.kind === 'silo' && entry.slug !== undefined) {
      try {
        siloDatabase = tenantSqlNames(entry.slug).database;
      } catch {
        // reported below, with the target
      }
    }
    const connection = toConfig(entry.connection, `${where}.connection`, true, siloDatabase);
    if (!connection) return;
    try {
      const tenant = { slug: entry.slug as string, tenantId: entry.tenantId, connection, role: entry.role };
      const extra = entry.createSchema === undefined ? {} : { createSchema: entry.createSchema };
      switch (entry.kind) {
        case 'bridge':
        case 'silo':
          if (entry.slug === undefined) throw new Error(`a ${entry.kind} target needs slug`);
          if (entry.name !== undefined || entry.schema !== undefined) throw new Error(`a ${entry.kind} target's name and schema are tenant_<slug>; do not set them`);
          targets.push({ ...(entry.kind === 'bridge' ? bridgeTarget(tenant) : siloTarget(tenant)), ...extra });
          break;
        case 'pool':
          if (entry.slug !== undefined || entry.tenantId !== undefined) throw new Error('a pool target has no slug or tenantId');
          targets.push({ ...poolTarget({ connection, name: entry.name, schema: entry.schema, role: entry.role }), ...extra });
          break;
        default:
          if (entry.slug !== undefined || entry.tenantId !== undefined || entry.schema !== undefined || entry.role !== undefined) throw new Error('a control-plane target takes only connection (and name)');
          // The control plane is reached over TLS only (lib/control-plane/connection.ts).
          if (connection.connectionString) controlPlaneConnection(connection.connectionString, { env });
          targets.push({ ...controlPlaneTarget({ connection, name: entry.name }), ...extra });
      }
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
  });
  if (problems.length) throw new TargetsFileError(options.file, problems);
  return targets;
}
