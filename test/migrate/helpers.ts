import { join } from 'node:path';
import type { PoolConfig } from 'pg';
import { loadMigrationSets, migrationSetFromFiles, type MigrationSet } from '../../lib/migrate/migration-set';
import { bridgeTarget, type MigrationTarget } from '../../lib/migrate/targets';
import type { PostgresCluster } from '../support/postgres';

export const REPO_MIGRATIONS = join(__dirname, '..', '..', 'migrations');
export const repoSets = () => loadMigrationSets(REPO_MIGRATIONS);

/** A set built in memory, e.g. set({ '0001_a.up.sql': 'CREATE TABLE a (id int);' }). */
export const set = (files: Record<string, string>, label = 'test-migrations'): MigrationSet => migrationSetFromFiles(label, files);

/** Slugs t-<prefix>-001 … (valid tenant slugs). */
export const slugs = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);

/** A new database with a bridge schema per slug; returns bridge targets connected as the superuser. */
export async function bridgeFleet(cluster: PostgresCluster, database: string, tenantSlugs: readonly string[]): Promise<{ connection: PoolConfig; targets: MigrationTarget[] }> {
  await cluster.createDatabase(database);
  await cluster.withAdmin(async (c) => {
    await c.query(tenantSlugs.map((s) => `CREATE SCHEMA ${c.escapeIdentifier(`tenant_${s.replace(/-/g, '_')}`)};`).join('\n'));
  }, database);
  const connection = cluster.adminConfig(database);
  return { connection, targets: tenantSlugs.map((slug) => bridgeTarget({ slug, connection })) };
}

/** Rows of tenancy.schema_migrations per target: { tenant_x: [1, 2] }. */
export async function appliedVersions(cluster: PostgresCluster, database: string): Promise<Record<string, number[]>> {
  const exists = await cluster.query<{ t: string | null }>(`SELECT to_regclass('tenancy.schema_migrations')::text AS t`, [], database);
  if (!exists[0].t) return {};
  const rows = await cluster.query<{ target: string; version: number }>('SELECT target, version FROM tenancy.schema_migrations ORDER BY target, version', [], database);
  const out: Record<string, number[]> = {};
  for (const r of rows) (out[r.target] ??= []).push(r.version);
  return out;
}

export async function tablesIn(cluster: PostgresCluster, database: string, schema: string): Promise<string[]> {
  const rows = await cluster.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema], database);
  return rows.map((r) => r.t);
}
