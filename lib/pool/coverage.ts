import { basename } from 'node:path';
import { quoteIdent } from '../db/sql';
import { POOL_DEFAULTS, type SqlClient } from './provision';

/**
 * Coverage of the pool schema: every relation that holds data there is either a tenant table (a
 * `tenant_id` column, RLS enabled and forced: see enforcePoolRls) or declared shared by the
 * migration that creates it:
 *
 *   COMMENT ON TABLE plans IS 'tenancy:shared: the plan catalogue, the same for every tenant';
 *
 * The declaration lives in the migration files (reviewable in the change that adds the table) and
 * in the database (the comment), so the audit reads it from the database alone. Only the table's
 * owner can change a comment, never the app role. A shared table holds no tenant data and is
 * read-only for everyone but its owner: writes (INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES,
 * TRIGGER) are revoked from every other role and from PUBLIC. A partition is shared when its
 * partitioned root is.
 */
export const SHARED_TABLE_MARKER = 'tenancy:shared';

/** The privileges a shared table keeps for roles other than its owner: reading only. */
export const SHARED_TABLE_WRITE_PRIVILEGES = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;

export type RelationKind = 'table' | 'partitioned table' | 'view' | 'materialized view' | 'foreign table' | 'sequence';

/**
 * - tenant: has tenant_id (row-level security applies);
 * - shared: declared shared, no tenant_id, read-only for the app;
 * - view: a view (holds no rows; the views audit and its tables' coverage decide);
 * - sequence: shared by every tenant (a warning when tenant tables draw from it);
 * - uncovered: holds rows, has no tenant_id and is not declared shared: refused.
 */
export type Coverage = 'tenant' | 'shared' | 'view' | 'sequence' | 'uncovered';

export interface PoolRelation {
  readonly oid: number;
  /** Name inside the schema. */
  readonly name: string;
  readonly kind: RelationKind;
  /** The partitioned table this is a partition of, if any. */
  readonly partitionOf: string | null;
  readonly hasTenantColumn: boolean;
  /** Declared shared (its own comment, or its partition root's). */
  readonly declaredShared: boolean;
  readonly coverage: Coverage;
  /** Why it is not covered (empty when covered). */
  readonly problems: readonly string[];
}

export class PoolCoverageError extends Error {
  constructor(message: string, readonly uncovered: readonly string[], readonly file?: string) {
    super(message);
    this.name = 'PoolCoverageError';
  }
}

const KINDS: Readonly<Record<string, RelationKind>> = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table', S: 'sequence' };

/** Every relation of `schema` (tables, partitions, views, materialized views, foreign tables, sequences) and how it is covered. */
export async function poolRelations(client: SqlClient, schema: string = POOL_DEFAULTS.schema): Promise<PoolRelation[]> {
  const { rows } = await client.query<{ oid: number; relname: string; relkind: string; parent: string | null; has_tenant: boolean; shared: boolean }>(
    `SELECT c.oid::int AS oid, c.relname, c.relkind::text AS relkind,
            (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1) AS parent,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped AND a.attnum > 0) AS has_tenant,
            coalesce(obj_description(CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END, 'pg_class'), '') LIKE $3 AS shared
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      ORDER BY c.relname`,
    [schema, POOL_DEFAULTS.tenantColumn, `${SHARED_TABLE_MARKER}%`],
  );
  return rows.map((r) => {
    const kind = KINDS[r.relkind];
    const problems: string[] = [];
    let coverage: Coverage;
    if (kind === 'view') coverage = 'view';
    else if (kind === 'sequence') coverage = 'sequence';
    else if (r.has_tenant && (kind === 'table' || kind === 'partitioned table')) {
      coverage = 'tenant';
      if (r.shared) problems.push(`declared ${SHARED_TABLE_MARKER} but has a ${POOL_DEFAULTS.tenantColumn} column: a table with tenant rows cannot be shared`);
    } else if (r.shared) {
      coverage = r.has_tenant ? 'uncovered' : 'shared';
      if (r.has_tenant) problems.push(`a ${kind} with a ${POOL_DEFAULTS.tenantColumn} column cannot be declared shared (row-level security does not apply to it)`);
    } else {
      coverage = 'uncovered';
      problems.push(r.has_tenant
        ? `a ${kind} with a ${POOL_DEFAULTS.tenantColumn} column: row-level security does not apply to it, every tenant's rows are readable`
        : `${kind} without a ${POOL_DEFAULTS.tenantColumn} column and not declared shared (COMMENT ON ${kind === 'materialized view' ? 'MATERIALIZED VIEW' : kind === 'foreign table' ? 'FOREIGN TABLE' : 'TABLE'} … IS '${SHARED_TABLE_MARKER}: <why>'): readable across tenants`);
    }
    return { oid: r.oid, name: r.relname, kind, partitionOf: r.parent, hasTenantColumn: r.has_tenant, declaredShared: r.shared, coverage, problems };
  });
}

/**
 * Makes every shared relation of `schema` read-only for all roles but its owner: the write
 * privileges are revoked from PUBLIC and from every grantee that holds them (the pool's default
 * privileges grant DML to the app role on every new table). Run as the owner, in the migration's
 * transaction (enforcePoolRls calls it). Returns the relations changed.
 */
export async function enforceSharedReadOnly(client: SqlClient, schema: string = POOL_DEFAULTS.schema): Promise<string[]> {
  const changed: string[] = [];
  for (const r of await poolRelations(client, schema)) {
    if (r.coverage !== 'shared') continue;
    const { rows } = await client.query<{ grantee: string }>(
      `SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee
         FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = $1 AND a.grantee <> c.relowner AND a.privilege_type = ANY($2)`,
      [r.oid, SHARED_TABLE_WRITE_PRIVILEGES],
    );
    if (rows.length === 0) continue;
    const grantees = rows.map((g) => (g.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g.grantee))).join(', ');
    await client.query(`REVOKE ${SHARED_TABLE_WRITE_PRIVILEGES.join(', ')} ON ${quoteIdent(schema)}.${quoteIdent(r.name)} FROM ${grantees}`);
    changed.push(r.name);
  }
  return changed;
}

/** A migration that ran in the transaction being checked. */
export interface MigrationFile {
  readonly file: string;
  readonly sql: string;
}

/**
 * Throws {@link PoolCoverageError} when `schema` has a relation that is neither a tenant table
 * nor declared shared, naming each one and the migration file that mentions it (else every file
 * of the transaction). Called in the migration's transaction, before COMMIT: the migration rolls
 * back.
 */
export async function assertPoolCoverage(client: SqlClient, schema: string = POOL_DEFAULTS.schema, migrations: readonly MigrationFile[] = []): Promise<void> {
  const bad = (await poolRelations(client, schema)).filter((r) => r.problems.length > 0);
  if (bad.length === 0) return;
  const fileOf = (name: string): string[] => {
    const word = new RegExp(`(^|[^a-z0-9_$])"?${name.replace(/[$]/g, '\\$')}"?($|[^a-z0-9_$])`, 'i');
    const naming = migrations.filter((m) => word.test(m.sql));
    return (naming.length ? naming.slice(-1) : migrations).map((m) => m.file);
  };
  const lines = bad.map((r) => {
    const files = fileOf(r.name).map((f) => basename(f));
    return `${schema}.${r.name}${files.length ? ` (${files.join(', ')})` : ''}: ${r.problems.join('; ')}`;
  });
  const files = [...new Set(bad.flatMap((r) => fileOf(r.name)))];
  throw new PoolCoverageError(
    `the pool schema would be left with ${bad.length === 1 ? 'a relation' : `${bad.length} relations`} outside tenant isolation; nothing was applied:\n${lines.map((l) => `  - ${l}`).join('\n')}\n` +
      `Add a ${POOL_DEFAULTS.tenantColumn} column (row-level security is then enforced), or declare the table shared: COMMENT ON TABLE <name> IS '${SHARED_TABLE_MARKER}: <why>' (read-only for the application).`,
    bad.map((r) => `${schema}.${r.name}`),
    files.length === 1 ? files[0] : undefined,
  );
}
