import { assertSafeSlug, tenantNames } from '../naming';

/**
 * SQL identifiers and literals. Every name that reaches SQL goes through quoteIdent, even
 * names derived from a validated slug: the slug is checked again here, at the boundary.
 */

/** Longest PostgreSQL identifier (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63;

/** A double-quoted identifier; refuses empty, over-long and NUL-containing names instead of truncating them. */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`SQL identifier ${JSON.stringify(name)} is empty`);
  if (name.includes('\0')) throw new Error(`SQL identifier ${JSON.stringify(name)} contains NUL`);
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) throw new Error(`SQL identifier ${JSON.stringify(name)} is longer than ${MAX_IDENTIFIER_BYTES} bytes (PostgreSQL would truncate it)`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** A single-quoted string literal (standard_conforming_strings on, as in every supported PostgreSQL). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('SQL literal contains NUL');
  return `'${value.replace(/'/g, "''")}'`;
}

/** The PostgreSQL names of a tenant (schema, silo database, login role), the slug re-validated. */
export function tenantSqlNames(slug: string): { schema: string; database: string; role: string } {
  assertSafeSlug(slug, 'SQL');
  const names = tenantNames(slug);
  return { schema: names.schema, database: names.database, role: names.role };
}
