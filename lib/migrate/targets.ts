import type { PoolConfig } from 'pg';
import { assertSafeSlug } from '../naming';
import { quoteIdent, tenantSqlNames } from '../db/sql';
import type { MigrationSet, MigrationSets } from './migration-set';

/**
 * What the runner migrates: a silo database's tenant schema, a bridge schema, the pool or the
 * control plane. Targets whose connections are equal share one database (and one pg.Pool).
 */
export type TargetKind = 'silo' | 'bridge' | 'pool' | 'control-plane';
export const TARGET_KINDS: readonly TargetKind[] = ['silo', 'bridge', 'pool', 'control-plane'];

export interface MigrationTarget {
  readonly kind: TargetKind;
  /**
   * The target's key in `tenancy.schema_migrations` and in the control plane, unique in a run:
   * `tenant_<slug>` (bridge, silo), `pool`, `control-plane`.
   */
  readonly name: string;
  readonly tenantId?: string;
  /** Required for bridge and silo targets; re-validated, and the schema is derived from it. */
  readonly slug?: string;
  /** How to reach the target's database (a pg PoolConfig: connectionString or host/port/database/user/…). */
  readonly connection: PoolConfig;
  /** Schema the migrations run in (`search_path`): `tenant_<slug>`, `pool`, `tenancy`. */
  readonly schema: string;
  /** Role to `SET LOCAL ROLE` to while the migrations run, so that it owns what they create (e.g. `pool_owner`). */
  readonly role?: string;
  /**
   * Create the schema when it is missing. Default: true for pool and control-plane; false for
   * bridge and silo, whose schema (with its owner and grants) the provisioning hook creates: a
   * missing tenant schema fails the target.
   */
  readonly createSchema?: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TARGET_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** Bridge: schema `tenant_<slug>` in the bridge cluster's database. */
export function bridgeTarget(options: { slug: string; connection: PoolConfig; tenantId?: string; role?: string }): MigrationTarget {
  const { schema } = tenantSqlNames(options.slug);
  return { kind: 'bridge', name: schema, schema, slug: options.slug, tenantId: options.tenantId, connection: options.connection, role: options.role };
}

/** Silo: schema `tenant_<slug>` in the tenant's own database (`tenant_<slug>` unless the connection names one). */
export function siloTarget(options: { slug: string; connection: PoolConfig; tenantId?: string; role?: string }): MigrationTarget {
  const { schema, database } = tenantSqlNames(options.slug);
  const connection = options.connection.database || options.connection.connectionString ? options.connection : { ...options.connection, database };
  return { kind: 'silo', name: schema, schema, slug: options.slug, tenantId: options.tenantId, connection, role: options.role };
}

/** The pool database, schema `pool` (name `pool`; give each pool of a multi-region fleet its own name). */
export function poolTarget(options: { connection: PoolConfig; name?: string; schema?: string; role?: string }): MigrationTarget {
  return { kind: 'pool', name: options.name ?? 'pool', schema: options.schema ?? 'pool', connection: options.connection, role: options.role };
}

/** The control-plane database, schema `tenancy`. */
export function controlPlaneTarget(options: { connection: PoolConfig; name?: string }): MigrationTarget {
  return { kind: 'control-plane', name: options.name ?? 'control-plane', schema: 'tenancy', connection: options.connection };
}

/** Thrown before anything runs when a target is malformed; names the target. */
export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

/**
 * Checks a target at the boundary: kind, unique name, slug (re-validated) matching the schema,
 * identifiers quotable. Throws {@link TargetError}.
 */
export function validateTarget(target: MigrationTarget): void {
  const where = `target ${JSON.stringify(target?.name)}`;
  if (!target || typeof target !== 'object') throw new TargetError('a target must be an object');
  if (!TARGET_KINDS.includes(target.kind)) throw new TargetError(`${where}: kind ${JSON.stringify(target.kind)} is not one of ${TARGET_KINDS.join(', ')}`);
  if (typeof target.name !== 'string' || !TARGET_NAME.test(target.name)) {
    throw new TargetError(`${where}: name must match ${TARGET_NAME}`);
  }
  if (target.tenantId !== undefined && !UUID.test(target.tenantId)) throw new TargetError(`${where}: tenantId ${JSON.stringify(target.tenantId)} is not a UUID`);
  if (!target.connection || typeof target.connection !== 'object') throw new TargetError(`${where}: connection missing`);
  try {
    quoteIdent(target.schema);
    if (target.role !== undefined) quoteIdent(target.role);
  } catch (e) {
    throw new TargetError(`${where}: ${(e as Error).message}`);
  }
  if (target.kind === 'bridge' || target.kind === 'silo') {
    if (target.slug === undefined) throw new TargetError(`${where}: a ${target.kind} target needs its tenant slug`);
    try {
      assertSafeSlug(target.slug, `${where}`);
    } catch (e) {
      throw new TargetError((e as Error).message);
    }
    const { schema } = tenantSqlNames(target.slug);
    if (target.schema !== schema || target.name !== schema) {
      throw new TargetError(`${where}: a ${target.kind} target of slug ${target.slug} has name and schema ${JSON.stringify(schema)} (got name ${JSON.stringify(target.name)}, schema ${JSON.stringify(target.schema)})`);
    }
  } else if (target.slug !== undefined) {
    throw new TargetError(`${where}: a ${target.kind} target has no tenant slug`);
  }
}

/** Validates every target and that names are unique in the run. */
export function validateTargets(targets: readonly MigrationTarget[]): void {
  const seen = new Set<string>();
  for (const t of targets) {
    validateTarget(t);
    if (seen.has(t.name)) throw new TargetError(`target ${JSON.stringify(t.name)} is listed twice (target names are unique in a run)`);
    seen.add(t.name);
  }
}

/** A stable key of the database a connection reaches: targets with equal keys share a pg.Pool. */
export function databaseKey(connection: PoolConfig): string {
  const stable = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(stable);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().filter((k) => typeof (v as any)[k] !== 'function' && (v as any)[k] !== undefined).map((k) => [k, stable((v as any)[k])]));
    }
    return v;
  };
  return JSON.stringify(stable(connection));
}

/** A human-readable name of a target's database, without credentials (for reports). */
export function describeDatabase(connection: PoolConfig): string {
  if (connection.connectionString) {
    try {
      // As pg-connection-string reads it: host and port parameters win (Unix-socket directories); an empty host is allowed.
      const url = new URL(connection.connectionString.replace(/@\//, '@localhost/').replace(/^(postgres(?:ql)?:\/\/)\//, '$1localhost/'));
      const host = url.searchParams.get('host') ?? url.hostname;
      const port = url.searchParams.get('port') ?? (url.port || '5432');
      return `${host}:${port}/${decodeURIComponent(url.pathname.slice(1))}`;
    } catch {
      return '(connection string)';
    }
  }
  return `${connection.host ?? 'localhost'}:${connection.port ?? 5432}/${connection.database ?? ''}`;
}

/** Which set migrates a target: `tenant` for bridge and silo. */
export function migrationSetFor(target: MigrationTarget, migrations: MigrationSet | MigrationSets): MigrationSet | undefined {
  if ('migrations' in migrations && Array.isArray((migrations as MigrationSet).migrations)) return migrations as MigrationSet;
  const sets = migrations as MigrationSets;
  return target.kind === 'bridge' || target.kind === 'silo' ? sets.tenant : sets[target.kind];
}
