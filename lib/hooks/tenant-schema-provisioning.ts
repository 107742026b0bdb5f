import type { ClientBase } from 'pg';
import { scramSha256Verifier } from '../db/scram';
import { quoteIdent, quoteLiteral, tenantSqlNames } from '../db/sql';

/** A tenant's schema and login role in a database: bridge (the shared bridge cluster) or silo (its own). */
export interface TenantSchemaProvisioning {
  readonly slug: string;
  /** Password of the tenant's login role (from its Secrets Manager secret; never logged). */
  readonly password: string;
  /** The database: the bridge cluster's tenants database, or the silo tenant's own. */
  readonly database: string;
}

/**
 * The statements that provision a tenant's schema, idempotently: the schema `tenant_<slug>`
 * (owned by the master user, who runs the migrations), the login role `tenant_<slug>_app` with
 * data privileges only on that schema and search_path pinned to it, and `public` locked down
 * (CVE-2018-1058: no role may create objects in a schema others resolve names in). Run as the
 * cluster's master user, in one transaction.
 */
export function tenantSchemaProvisioningSql(p: TenantSchemaProvisioning): string[] {
  const { schema, role } = tenantSqlNames(p.slug);
  const s = quoteIdent(schema);
  const r = quoteIdent(role);
  const db = quoteIdent(p.database);
  return [
    // The role, then the schema, owned by the master user: the tenant can neither drop it nor
    // change its privileges.
    // Role attributes are the defaults (no SUPERUSER, REPLICATION, BYPASSRLS: only a superuser
    // could grant those, and RDS's master user is not one); an existing role that has any of them
    // was changed by hand and is refused rather than trusted.
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN
         CREATE ROLE ${r} LOGIN NOCREATEDB NOCREATEROLE NOINHERIT;
       END IF;
       IF EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)} AND (rolsuper OR rolbypassrls OR rolreplication)) THEN
         RAISE EXCEPTION 'role % is a superuser or has BYPASSRLS or REPLICATION; refusing to provision it', ${quoteLiteral(role)};
       END IF;
     END $$`,
    // A SCRAM verifier, not the password: the server (and its statement log) never sees it.
    `ALTER ROLE ${r} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${quoteLiteral(scramSha256Verifier(p.password))}`,
    `ALTER ROLE ${r} SET search_path = ${s}`,
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    // Data access only: migrations run as the master user, who owns the tables.
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
    // CVE-2018-1058: nobody creates in public; the database is not open to every role.
    `REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
    `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${db} TO ${r}`,
  ];
}

/** Provisions a tenant's schema and role in one transaction on `admin` (the master user of the tenant's database). */
export async function provisionTenantSchema(admin: ClientBase, p: TenantSchemaProvisioning): Promise<void> {
  const statements = tenantSchemaProvisioningSql(p);
  await admin.query('BEGIN');
  try {
    // Concurrent provisioning of two tenants races on REVOKE/GRANT of the database and public schema.
    await admin.query("SELECT pg_advisory_xact_lock(hashtext('tenancy.provision'))");
    for (const sql of statements) await admin.query(sql);
    await admin.query('COMMIT');
  } catch (e) {
    await admin.query('ROLLBACK').catch(() => undefined);
    throw new Error(`provisioning tenant ${p.slug} in database ${p.database} failed: ${redact(e, p.password)}`);
  }
}

/** The error message with the password removed, in case PostgreSQL echoes a statement. */
export function redact(e: unknown, secret: string): string {
  const message = e instanceof Error ? e.message : String(e);
  return secret ? message.split(secret).join('***') : message;
}
