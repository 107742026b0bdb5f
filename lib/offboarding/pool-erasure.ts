import type { ClientBase } from 'pg';
import { quoteIdent } from '../db/sql';
import { assertPoolCoverage } from '../pool/coverage';
import { POOL_DEFAULTS } from '../pool/provision';
import { assertCustomSetting, DEFAULT_TENANT_SETTING, UUID_PATTERN } from '../runtime/tenant-context';

/**
 * Erasing a pool tenant: its rows in every tenant table of the pool schema (every table with a
 * `tenant_id` column), deleted in one transaction in foreign-key-safe order (a table before the
 * tables it references), as the pool's owner role with the tenant set (so the row-level security
 * policy admits exactly this tenant's rows, on top of the WHERE clause). Then verified as a role
 * that bypasses row-level security (BYPASSRLS: e.g. `pool_auditor`, see the README), with
 * `row_security = off`, under which PostgreSQL raises an error instead of silently filtering
 * when the role does not in fact bypass RLS: a count of zero is a real zero.
 *
 * Tables without tenant_id can only be tables declared shared (lib/pool/coverage.ts: read-only
 * for the application, no tenant data): both the erasure and its verification refuse to run
 * while the schema holds a relation that is neither, since tenant rows could be in it.
 */
export interface PoolTable {
  readonly table: string;
  /** Tenant tables this one references (deleted after it). */
  readonly references: readonly string[];
}

/** Tenant tables of `schema` and the foreign keys between them. */
export async function poolTenantTables(client: ClientBase, schema: string = POOL_DEFAULTS.schema, column: string = POOL_DEFAULTS.tenantColumn): Promise<PoolTable[]> {
  const tables = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attname = $2 AND NOT a.attisdropped
      ORDER BY c.relname`,
    [schema, column],
  );
  const names = new Set(tables.rows.map((r) => r.relname));
  const fks = await client.query<{ child: string; parent: string }>(
    `SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
      WHERE k.contype = 'f' AND ch.relnamespace = $1::regnamespace AND pa.relnamespace = $1::regnamespace`,
    [schema],
  );
  return [...names].map((table) => ({ table, references: fks.rows.filter((f) => f.child === table && f.parent !== table && names.has(f.parent)).map((f) => f.parent) }));
}

/** Referencing tables first; throws on a cycle of foreign keys (no safe order exists). */
export function deletionOrder(tables: readonly PoolTable[]): string[] {
  const referencedBy = new Map<string, Set<string>>(tables.map((t) => [t.table, new Set()]));
  for (const t of tables) for (const parent of t.references) referencedBy.get(parent)?.add(t.table);
  const order: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (table: string, path: string[]) => {
    if (done.has(table)) return;
    if (visiting.has(table)) throw new Error(`foreign keys form a cycle (${[...path, table].join(' → ')}); cannot order the deletion`);
    visiting.add(table);
    // Every table that references this one goes first.
    for (const child of [...referencedBy.get(table)!].sort()) visit(child, [...path, table]);
    visiting.delete(table);
    done.add(table);
    order.push(table);
  };
  for (const t of [...tables].sort((a, b) => a.table.localeCompare(b.table))) visit(t.table, []);
  return order;
}

export interface PoolErasure {
  readonly schema: string;
  readonly order: readonly string[];
  /** Rows deleted per table. */
  readonly deleted: Record<string, number>;
}

/** Deletes the tenant's rows from every tenant table, in one transaction. Idempotent (a rerun deletes nothing). */
export async function erasePoolTenant(admin: ClientBase, tenantId: string, options: { schema?: string; ownerRole?: string; tenantSetting?: string } = {}): Promise<PoolErasure> {
  if (!UUID_PATTERN.test(tenantId)) throw new Error(`pool erasure: ${JSON.stringify(tenantId)} is not a tenant id`);
  const schema = options.schema ?? POOL_DEFAULTS.schema;
  const setting = options.tenantSetting ?? DEFAULT_TENANT_SETTING;
  assertCustomSetting(setting, 'pool erasure');
  const ownerRole = options.ownerRole ?? POOL_DEFAULTS.ownerRole;
  await admin.query('BEGIN');
  try {
    await admin.query("SET LOCAL lock_timeout = '10s'");
    const owner = (await admin.query<{ m: boolean }>("SELECT pg_has_role(current_user, $1, 'MEMBER') AS m", [ownerRole])).rows[0]?.m;
    if (owner) await admin.query(`SET LOCAL ROLE ${quoteIdent(ownerRole)}`);
    await admin.query('SELECT set_config($1, $2, true)', [setting, tenantId]);
    await assertPoolCoverage(admin, schema);
    const order = deletionOrder(await poolTenantTables(admin, schema));
    const deleted: Record<string, number> = {};
    for (const table of order) {
      const r = await admin.query(`DELETE FROM ${quoteIdent(schema)}.${quoteIdent(table)} WHERE ${quoteIdent(POOL_DEFAULTS.tenantColumn)} = $1`, [tenantId]);
      deleted[table] = r.rowCount ?? 0;
    }
    await admin.query('COMMIT');
    return { schema, order, deleted };
  } catch (e) {
    await admin.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Rows of the tenant left in each tenant table, counted by `auditor` with row_security off (an
 * error if the auditor does not bypass RLS), in a read-only transaction.
 */
export async function countPoolTenantRows(auditor: ClientBase, tenantId: string, schema: string = POOL_DEFAULTS.schema): Promise<Record<string, number>> {
  if (!UUID_PATTERN.test(tenantId)) throw new Error(`pool verification: ${JSON.stringify(tenantId)} is not a tenant id`);
  await auditor.query('BEGIN READ ONLY');
  try {
    await auditor.query('SET LOCAL row_security = off');
    const bypass = (await auditor.query<{ b: boolean }>('SELECT rolbypassrls OR rolsuper AS b FROM pg_roles WHERE rolname = current_user')).rows[0]?.b;
    if (!bypass) throw new Error('the verifying role does not bypass row-level security (needs BYPASSRLS); it could not see every row');
    // A table the count cannot cover (no tenant_id, not declared shared) makes "zero rows left" unprovable.
    await assertPoolCoverage(auditor, schema);
    const counts: Record<string, number> = {};
    for (const { table } of await poolTenantTables(auditor, schema)) {
      counts[table] = (await auditor.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.${quoteIdent(table)} WHERE ${quoteIdent(POOL_DEFAULTS.tenantColumn)} = $1`, [tenantId])).rows[0].n;
    }
    await auditor.query('COMMIT');
    return counts;
  } catch (e) {
    await auditor.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
