import type { ClientBase } from 'pg';
import { quoteIdent, tenantSqlNames } from '../db/sql';

/**
 * Erasing a bridge tenant: its schema `tenant_<slug>` and login role `tenant_<slug>_app` on the
 * shared bridge cluster, as the cluster's master user.
 *
 * `DROP SCHEMA … CASCADE` drops whatever depends on the schema's objects, wherever it is: a view
 * in another tenant's schema over this tenant's table, a foreign key from a shared table, a
 * function's argument type. So before dropping, pg_depend is searched for objects *outside* the
 * schema that depend on objects inside it (or on the schema itself); if there is any, nothing is
 * dropped and the step fails naming them: a person decides. Then the role: its remaining
 * privileges and objects in this database (`DROP OWNED`: grants on the database, default
 * privileges) and the role itself.
 *
 * A role is cluster-wide and can own objects in any database it could ever connect to (a large
 * object in `postgres`, left there to make DROP ROLE fail and so block the erasure). pg_shdepend
 * names every database holding something of the role; `DROP OWNED` runs in each of them first.
 */
export interface OutsideDependent {
  readonly dependent: string;
  readonly dependsOn: string;
}

/**
 * Objects outside `schema` that depend on something in it. The dependent object's own schema is
 * resolved per catalog (a view's rewrite rule → the view, a constraint, trigger, default or
 * policy → its table, default privileges → their schema); a dependent of an unknown kind (an
 * extension, an event trigger, …) counts as outside.
 */
export async function dependentsOutsideSchema(client: ClientBase, schema: string): Promise<OutsideDependent[]> {
  const r = await client.query<OutsideDependent>(
    `WITH target AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
     inside AS (
       SELECT 'pg_class'::regclass AS classid, c.oid AS objid FROM pg_class c, target WHERE c.relnamespace = target.oid
       UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t, target WHERE t.typnamespace = target.oid
       UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p, target WHERE p.pronamespace = target.oid
       UNION ALL SELECT 'pg_namespace'::regclass, target.oid FROM target
     ),
     deps AS (
       SELECT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid,
              CASE d.classid
                WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
                WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
                WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
                WHEN 'pg_namespace'::regclass THEN d.objid
                WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class WHERE w.oid = d.objid)
                WHEN 'pg_constraint'::regclass THEN (SELECT coalesce(c.relnamespace, k.connamespace) FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid WHERE k.oid = d.objid)
                WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.oid = d.objid)
                WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
                WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
                WHEN 'pg_default_acl'::regclass THEN (SELECT defaclnamespace FROM pg_default_acl WHERE oid = d.objid)
              END AS dep_namespace
         FROM pg_depend d JOIN inside i ON d.refclassid = i.classid AND d.refobjid = i.objid
        WHERE d.deptype IN ('n', 'a', 'e')
     )
     SELECT DISTINCT pg_describe_object(classid, objid, objsubid) AS dependent, pg_describe_object(refclassid, refobjid, refobjsubid) AS "dependsOn"
       FROM deps, target
      WHERE dep_namespace IS DISTINCT FROM target.oid
      ORDER BY 1, 2`,
    [schema],
  );
  return r.rows;
}

export class OutsideDependentsError extends Error {
  constructor(readonly schema: string, readonly dependents: readonly OutsideDependent[]) {
    super(`refusing to drop schema ${schema}: ${dependents.length} object(s) outside it depend on it (${dependents.slice(0, 5).map((d) => `${d.dependent} → ${d.dependsOn}`).join('; ')}${dependents.length > 5 ? '; …' : ''}); remove or repoint them first`);
    this.name = 'OutsideDependentsError';
  }
}

export interface BridgeErasure {
  readonly schema: string;
  readonly role: string;
  readonly schemaDropped: boolean;
  /** Tables and their row counts at the moment of the drop. */
  readonly tables: Record<string, number>;
  readonly roleDropped: boolean;
  /** Rows of the schema's migration state deleted (tenancy.schema_migrations). */
  readonly migrationRows: number;
}

export interface BridgeErasureOptions {
  /** Runs `fn` on a master-user connection to another database of the cluster. Without it, objects of the role elsewhere fail the erasure, naming their databases. */
  readonly inDatabase?: <T>(database: string, fn: (c: ClientBase) => Promise<T>) => Promise<T>;
}

/** Databases other than the current one where the role owns something or holds a privilege (pg_shdepend). */
export async function otherDatabasesOfRole(admin: ClientBase, role: string): Promise<string[]> {
  const r = await admin.query<{ datname: string }>(
    `SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
        AND d.datname <> current_database() ORDER BY 1`,
    [role],
  );
  return r.rows.map((row) => row.datname);
}

/** Drops the tenant's schema (after the dependency check) and role, in one transaction, after its objects in other databases. Idempotent. */
export async function eraseBridgeTenant(admin: ClientBase, slug: string, options: BridgeErasureOptions = {}): Promise<BridgeErasure> {
  const { schema, role } = tenantSqlNames(slug);
  const elsewhere = await otherDatabasesOfRole(admin, role);
  if (elsewhere.length > 0) {
    if (!options.inDatabase) throw new Error(`role ${role} owns objects or holds privileges in database(s) ${elsewhere.join(', ')}; erase them there first (DROP OWNED BY ${role} in each)`);
    await grantMembership(admin, role);
    for (const database of elsewhere) {
      await options.inDatabase(database, async (c) => {
        await c.query("SET lock_timeout = '10s'");
        await c.query(`DROP OWNED BY ${quoteIdent(role)}`);
      });
    }
  }
  await admin.query('BEGIN');
  try {
    await admin.query("SET LOCAL lock_timeout = '10s'");
    const exists = (await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount! > 0;
    const tables: Record<string, number> = {};
    if (exists) {
      const outside = await dependentsOutsideSchema(admin, schema);
      if (outside.length > 0) throw new OutsideDependentsError(schema, outside);
      const rels = await admin.query<{ relname: string }>("SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p') ORDER BY relname", [schema]);
      for (const { relname } of rels.rows) {
        tables[relname] = (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.${quoteIdent(relname)}`)).rows[0].n;
      }
      await admin.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
    }
    // The migration runner's state of the schema (lib/migrate: tenancy.schema_migrations in this database) goes with it.
    const state = await admin.query("SELECT to_regclass('tenancy.schema_migrations') IS NOT NULL AS present");
    const migrationRows = state.rows[0].present ? (await admin.query('DELETE FROM tenancy.schema_migrations WHERE target = $1', [schema])).rowCount ?? 0 : 0;
    const roleExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount! > 0;
    if (roleExists) {
      const refused = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1 AND (rolsuper OR rolreplication)', [role]);
      if (refused.rowCount) throw new Error(`role ${role} is a superuser or has REPLICATION; refusing to drop it`);
      await grantMembership(admin, role);
      await admin.query(`DROP OWNED BY ${quoteIdent(role)}`);
      await admin.query(`DROP ROLE ${quoteIdent(role)}`);
    }
    await admin.query('COMMIT');
    return { schema, role, schemaDropped: exists, tables, roleDropped: roleExists, migrationRows };
  } catch (e) {
    await admin.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** DROP OWNED needs the privileges of the role: the master user (CREATEROLE) grants itself membership first. */
async function grantMembership(admin: ClientBase, role: string): Promise<void> {
  const member = (await admin.query<{ m: boolean }>("SELECT pg_has_role(current_user, $1, 'USAGE') AS m", [role])).rows[0].m;
  if (!member) await admin.query(`GRANT ${quoteIdent(role)} TO CURRENT_USER`);
}

/** After the fact: neither the schema nor the role exists. */
export async function verifyBridgeErased(admin: ClientBase, slug: string): Promise<{ schemaExists: boolean; roleExists: boolean }> {
  const { schema, role } = tenantSqlNames(slug);
  const r = await admin.query<{ s: boolean; r: boolean }>('SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1) AS s, EXISTS (SELECT FROM pg_roles WHERE rolname = $2) AS r', [schema, role]);
  return { schemaExists: r.rows[0].s, roleExists: r.rows[0].r };
}
