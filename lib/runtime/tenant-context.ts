import { assertSafeSlug } from '../naming';
import { tenantSqlNames } from '../db/sql';

/**
 * Who a unit of work runs for. The context is applied inside one transaction by
 * {@link withTenant} and never outlives it (see docs/DATA-PLANE.md, "Tenant context").
 */
export type TenantContext =
  /** Rows in the shared pool tables: the transaction-local `app.tenant_id` is what the RLS policy reads. */
  | { readonly model: 'pool'; readonly id: string; readonly slug: string }
  /** A schema on the shared bridge cluster: the transaction-local search_path. @default schema `tenant_<slug>` */
  | { readonly model: 'bridge'; readonly id: string; readonly slug: string; readonly schema?: string }
  /** Its own database: the connection alone selects the tenant; nothing extra is set. */
  | { readonly model: 'silo'; readonly id: string; readonly slug: string };

export type TenantModel = TenantContext['model'];

/** Canonical UUID text (any version; PostgreSQL's uuid type accepts exactly this shape, hyphenated). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Lowercase unquoted-style SQL identifier (schema, role, database names the platform creates). */
export const SQL_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
/** A namespaced custom setting (`x.y`); PostgreSQL refuses set_config on anything else that is not a real GUC. */
export const CUSTOM_SETTING_PATTERN = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;
/** The transaction-local setting that carries the tenant id of pool tenants. */
export const DEFAULT_TENANT_SETTING = 'app.tenant_id';

/** Thrown for a tenant context that must not reach the database (bad id, slug, model or schema). */
export class TenantContextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TenantContextError';
  }
}

/** A validated, normalised copy of `tenant` (id lowercased, bridge schema resolved); throws TenantContextError. */
export function validateTenantContext(tenant: TenantContext): TenantContext {
  if (tenant === null || typeof tenant !== 'object') throw new TenantContextError('tenant context: expected an object');
  const { model, id, slug } = tenant as { model: unknown; id: unknown; slug: unknown };
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) throw new TenantContextError(`tenant context: id ${JSON.stringify(id)} is not a UUID`);
  try {
    assertSafeSlug(slug as string, 'tenant context');
  } catch (e) {
    throw new TenantContextError((e as Error).message);
  }
  const base = { id: id.toLowerCase(), slug: slug as string };
  switch (model) {
    case 'pool':
      return { model, ...base };
    case 'silo':
      return { model, ...base };
    case 'bridge': {
      const schema = (tenant as { schema?: unknown }).schema ?? tenantSqlNames(base.slug).schema;
      if (typeof schema !== 'string' || !SQL_NAME_PATTERN.test(schema) || schema.startsWith('pg_')) {
        throw new TenantContextError(`tenant context ${base.slug}: schema ${JSON.stringify(schema)} is not a lowercase SQL identifier`);
      }
      return { model, ...base, schema };
    }
    default:
      throw new TenantContextError(`tenant context ${base.slug}: model ${JSON.stringify(model)} is not pool, bridge or silo`);
  }
}

export function assertCustomSetting(setting: string, where: string): void {
  if (typeof setting !== 'string' || !CUSTOM_SETTING_PATTERN.test(setting)) {
    throw new TenantContextError(`${where}: setting ${JSON.stringify(setting)} must look like "app.tenant_id"`);
  }
}
