// Migration 0009 (credits) goes down and up again as the RDS-style master role, and the runtime
// role's privileges are the ones the credits code needs, no more.
import { join } from 'node:path';
import { loadMigrationSets } from '../../lib/migrate/migration-set';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { usePostgres } from '../support/postgres';
import { repoRoot } from '../support/pool-db';
import { creditsControlPlane, CREDITS_MASTER, CREDITS_MIGRATION } from './credits-fixture';

jest.setTimeout(120_000);

const pg = usePostgres();
const DB = 'credits_migration';
const CREDIT_TABLES = ['credit_accounts', 'credit_entries', 'credit_low_notices'];

const tables = async () =>
  (await pg().query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'tenancy' AND tablename LIKE 'credit%' ORDER BY 1", [], DB)).map((r) => r.t);

test('0009 reverts cleanly and applies again', async () => {
  const cp = await creditsControlPlane(pg(), DB);
  await cp.close();
  expect(await tables()).toEqual(CREDIT_TABLES);
  const migrate = (direction: 'up' | 'down', toVersion: number) => migrateTargets({
    targets: [controlPlaneTarget({ connection: pg().clientConfig({ ...CREDITS_MASTER, database: DB }) })],
    migrations: loadMigrationSets(join(repoRoot(), 'migrations')),
    direction,
    toVersion,
  });
  const down = await migrate('down', CREDITS_MIGRATION - 1);
  expect(down.results.map((r) => r.error ?? r.status)).toEqual(['applied']);
  expect(await tables()).toEqual([]);
  const up = await migrate('up', CREDITS_MIGRATION);
  expect(up.results.map((r) => r.error ?? r.status)).toEqual(['applied']);
  expect(await tables()).toEqual(CREDIT_TABLES);
});

test('the runtime role: entries and notices SELECT and INSERT only (notices: UPDATE of the mail columns), accounts no DELETE', async () => {
  const privileges = await pg().query<{ t: string; p: string[] }>(
    `SELECT c.relname AS t, array_remove(ARRAY[${['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'].map((p) => `CASE WHEN has_table_privilege('tenancy_control_plane', c.oid, '${p}') THEN '${p}' END`).join(', ')}], NULL) AS p
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tenancy' AND c.relname = ANY($1) ORDER BY 1`,
    [CREDIT_TABLES], DB,
  );
  expect(privileges).toEqual([
    { t: 'credit_accounts', p: ['SELECT', 'INSERT', 'UPDATE'] },
    { t: 'credit_entries', p: ['SELECT', 'INSERT'] },
    { t: 'credit_low_notices', p: ['SELECT', 'INSERT'] },
  ]);
  const noticeColumns = await pg().query<{ c: string }>(
    `SELECT attname AS c FROM pg_attribute WHERE attrelid = 'tenancy.credit_low_notices'::regclass AND attnum > 0 AND NOT attisdropped
        AND has_column_privilege('tenancy_control_plane', attrelid, attnum, 'UPDATE') ORDER BY 1`, [], DB,
  );
  expect(noticeColumns.map((r) => r.c)).toEqual(['mail_attempts', 'mail_claimed_until', 'mail_error', 'mail_sent_at']);
});
