// `tenancy fleet plan` on a generated fleet with nothing changed: the time to read and hash every
// synthesized stack and compare it with the control plane's record (one query), in-process and as
// a fresh `tenancy fleet plan --outdir` process. A one-off measurement (issue 14, item 1):
//
//   npm run build && node dist/bench/fleet-plan-bench.js [tenants]     # default 10,000
//
// Starts its own PostgreSQL (test/support/postgres.ts); the registry and output go to BENCH_TMPDIR
// (default /dev/shm if present, else the OS temp dir) and are removed afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { synthesize } from '../lib/app/synthesize';
import { appliedContentOf, recordAppliedStacks } from '../lib/fleet/applied-stacks';
import { planFleet } from '../lib/fleet/plan';
import { readStackArtifacts } from '../lib/fleet/stack-artifact';
import { loadMigrationSets } from '../lib/migrate/migration-set';
import { migrateTargets } from '../lib/migrate/runner';
import { controlPlaneTarget } from '../lib/migrate/targets';
import { PostgresCluster } from '../test/support/postgres';
import { writeRegistry } from './generate-registry';

const REPO_ROOT = join(__dirname, '..', '..');
const ROLE = { user: 'fleet_bench', password: 'fleet-bench-pw' };

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 10000);
  const base = process.env.BENCH_TMPDIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dir = mkdtempSync(join(base, 'tenancy-fleet-plan-'));
  const pg = await PostgresCluster.start();
  try {
    const registry = writeRegistry(dir, size, join(REPO_ROOT, 'platform.yaml'));
    const outdir = join(dir, 'cdktf.out');
    let t = Date.now();
    synthesize({ root: dir, outdir, select: '*' });
    const synthMs = Date.now() - t;

    await pg.createRole(ROLE.user, { password: ROLE.password, attributes: ['CREATEROLE', 'CREATEDB'] });
    await pg.createDatabase('control_plane', { owner: ROLE.user });
    const connection = pg.clientConfig({ ...ROLE, database: 'control_plane' });
    await migrateTargets({ targets: [controlPlaneTarget({ connection })], migrations: loadMigrationSets(join(REPO_ROOT, 'migrations')) });
    const pool = new Pool({ ...connection, max: 2 });
    pool.on('error', () => undefined);
    // The fleet as deployed: every stack recorded as applied.
    await recordAppliedStacks(pool, readStackArtifacts(outdir).map(appliedContentOf), 'bench');

    const runs: number[] = [];
    let summary = {};
    for (let i = 0; i < 3; i++) {
      t = Date.now();
      const plan = await planFleet({ db: pool, outdir });
      runs.push(Date.now() - t);
      summary = plan.summary;
    }
    await pool.end();

    const url = `postgres://${ROLE.user}:${ROLE.password}@${pg.host}:${pg.port}/control_plane?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.tls!.caFile)}`;
    t = Date.now();
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'bin', 'tenancy.js'), 'fleet', 'plan', '--outdir', outdir, '--detailed-exitcode'], { env: { ...process.env, TENANCY_CONTROL_PLANE_URL: url }, encoding: 'utf8' });
    const cliMs = Date.now() - t;
    process.stdout.write(`${JSON.stringify({ tenants: registry.liveTenants, synthSeconds: synthMs / 1000, planSeconds: runs.map((ms) => ms / 1000), cliSeconds: cliMs / 1000, summary, cli: out.split('\n')[0] }, null, 2)}\n`);
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
