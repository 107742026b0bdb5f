/**
 * A provisioned pool database on a test cluster: provisionPool (roles, schema, grants), the
 * migrations of migrations/pool applied the way the runner applies them (as the owner role,
 * search_path = pool, one transaction), then enforcePoolRls. Used by test/pool, test/runtime and
 * bench/rls-bench.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Client } from 'pg';
import { quoteIdent } from '../../lib/db/sql';
import { assertPoolCoverage } from '../../lib/pool/coverage';
import { enforcePoolRls, POOL_DEFAULTS, provisionPool } from '../../lib/pool/provision';
import type { PostgresCluster } from './postgres';

/** The repository root (works from test/support under ts-jest and from dist/test/support). */
export function repoRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no repository root above ${__dirname}`);
  }
}

/** The `.up.sql` files of migrations/pool, in version order. */
export function poolMigrationFiles(): { version: number; file: string; sql: string }[] {
  const dir = join(repoRoot(), 'migrations', 'pool');
  return readdirSync(dir)
    .map((name) => ({ name, m: /^([0-9]+)_[a-z0-9_]+\.up\.sql$/.exec(name) }))
    .filter((f) => f.m)
    .map((f) => ({ version: Number(f.m![1]), file: join(dir, f.name), sql: readFileSync(join(dir, f.name), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/** Applies migrations/pool as the owner role with search_path = pool, then enforces RLS and coverage (as the runner does), in one transaction. */
export async function applyPoolMigrations(admin: Client, options: { schema?: string; ownerRole?: string; extraSql?: readonly string[] } = {}): Promise<void> {
  const schema = options.schema ?? POOL_DEFAULTS.schema;
  await admin.query('BEGIN');
  try {
    await admin.query(`SET LOCAL ROLE ${quoteIdent(options.ownerRole ?? POOL_DEFAULTS.ownerRole)}`);
    await admin.query(`SET LOCAL search_path = ${quoteIdent(schema)}`);
    for (const m of poolMigrationFiles()) await admin.query(m.sql);
    for (const sql of options.extraSql ?? []) await admin.query(sql);
    await enforcePoolRls(admin, schema);
    await assertPoolCoverage(admin, schema, poolMigrationFiles());
    await admin.query('COMMIT');
  } catch (e) {
    await admin.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export const POOL_APP_PASSWORD = 'pool app password (test only)';

/** Creates database `database`, provisions it (app role password {@link POOL_APP_PASSWORD}) and applies the pool migrations. */
export async function createPoolDatabase(pg: PostgresCluster, database = 'pool'): Promise<void> {
  await pg.createDatabase(database);
  await pg.withAdmin(async (admin) => {
    await provisionPool(admin, { appPassword: POOL_APP_PASSWORD });
    await applyPoolMigrations(admin);
  }, database);
}
