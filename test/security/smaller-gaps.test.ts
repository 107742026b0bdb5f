// Reproduces: three smaller gaps. (1) The CLI, worker, hooks and compliance report connect to the
// control plane in plaintext when its URL says nothing about TLS (node-postgres's default), so
// every placement, the audit trail and the lifecycle state cross the network in the clear. (2) A
// placement holding a secret under any key but a top-level lowercase "password" ({"db":
// {"Password": …}}, "api_key", "token", …) is stored. (3) Production code carries a test-only
// fault hook: TENANCY_FAULT_EXIT=<step> in the worker's environment makes it exit mid-job. Fails on
// 0f20909 (main before the fix): `tenancy status` against a plaintext server succeeded, the
// nested and differently-cased secret keys were inserted, and lib/onboarding/job-runner.ts read
// process.env.TENANCY_FAULT_EXIT.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { registerStatusCommand } from '../../lib/cli/status-command';
import { collectEvidence } from '../../lib/compliance/evidence';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import { controlPlaneConnection, ControlPlaneTlsError } from '../../lib/control-plane/connection';
import { migrateTargets } from '../../lib/migrate/runner';
import { controlPlaneTarget } from '../../lib/migrate/targets';
import { lifecycleConfig, LifecycleConfigError } from '../../lib/onboarding/config';
import type { Tenant } from '../../lib/registry/tenant-schema';
import { repoSets } from '../migrate/helpers';
import { runCommand } from '../support/cli';
import { repoRoot } from '../support/pool-db';
import { usePostgres } from '../support/postgres';

/** A server that accepts plaintext logins over TCP (as a misconfigured or local one would). */
const pg = usePostgres({ ssl: false });
const MASTER = { user: 'cp_master', password: 'cp-master-pw (test only)' };
const plaintextUrl = () => `postgres://${MASTER.user}:${encodeURIComponent(MASTER.password)}@127.0.0.1:${pg().port}/control_plane`;

beforeAll(async () => {
  await pg().createRole(MASTER.user, { password: MASTER.password, attributes: ['CREATEROLE', 'CREATEDB'] });
  await pg().createDatabase('control_plane', { owner: MASTER.user });
  // Over the Unix socket: local, no network to protect.
  const socketUrl = `postgres://${MASTER.user}@/control_plane?host=${encodeURIComponent(pg().socketDir)}&port=${pg().port}`;
  const run = await migrateTargets({ targets: [controlPlaneTarget({ connection: controlPlaneConnection(socketUrl) })], migrations: repoSets() });
  expect(run.summary.ok).toBe(true);
}, 120_000);

describe('the control-plane connection refuses plaintext unless TLS is explicitly disabled', () => {
  const status = (env: NodeJS.ProcessEnv) => runCommand(registerStatusCommand, ['status', '--control-plane-url', plaintextUrl(), '--json'], { env });

  test('tenancy status over plaintext TCP: refused before connecting (exit 2, the opt-out named)', async () => {
    const r = await status({});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/control-plane connection postgres:\/\/cp_master:\*\*\*@127\.0\.0\.1:\d+\/control_plane does not use TLS: add sslmode=verify-full.*TENANCY_INSECURE_NO_TLS=1/);
    expect(r.stderr).not.toContain(MASTER.password);
  });

  test('… and with the explicit local-development opt-out, it connects', async () => {
    const r = await status({ TENANCY_INSECURE_NO_TLS: '1' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  test('the lifecycle configuration (onboard, offboard, worker) refuses it as a usage error', () => {
    const env = { TENANCY_CONTROL_PLANE_URL: plaintextUrl() };
    expect(() => lifecycleConfig(env)).toThrow(LifecycleConfigError);
    expect(() => lifecycleConfig(env)).toThrow(/does not use TLS/);
    expect(lifecycleConfig({ ...env, TENANCY_INSECURE_NO_TLS: '1' }).controlPlaneUrl).toBe(plaintextUrl());
  });

  test('the compliance evidence does not read the control plane in plaintext', async () => {
    const tenant = { id: '5b0f3c9e-0a51-4f7e-9a57-0d7c1f0e2a11', slug: 'acme-corp', model: 'bridge', plan: 'pro', region: 'us-east-1' } as unknown as Tenant;
    const fleet = await collectEvidence([tenant], { controlPlaneUrl: plaintextUrl(), insecureNoTls: false });
    expect(fleet.byTenant.get('acme-corp')!.errors).toEqual([expect.stringMatching(/^control plane: .*does not use TLS/)]);
  });

  test.each([
    ['no sslmode', '', false],
    ['sslmode=disable', '?sslmode=disable', false],
    ['ssl=false', '?ssl=false', false],
    ['sslmode=require', '?sslmode=require', true],
    ['sslmode=verify-full with a CA', '?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fca.pem', true],
    ['a Unix socket', '?host=%2Fvar%2Frun%2Fpostgresql', true],
  ])('%s', (_name, query, accepted) => {
    const url = `postgres://u:p@cp.db.example.internal:5432/control_plane${query}`;
    if (accepted) expect(controlPlaneConnection(url, { env: {} })).toMatchObject({ connectionString: url });
    else expect(() => controlPlaneConnection(url, { env: {} })).toThrow(ControlPlaneTlsError);
    expect(controlPlaneConnection(url, { env: { TENANCY_INSECURE_NO_TLS: '1' } })).toMatchObject({ connectionString: url });
  });
});

describe('the placement CHECK refuses secret-like keys at any depth, in any case', () => {
  let n = 0;
  const insert = async (placement: unknown) => {
    n++;
    const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    return pg().query(
      `INSERT INTO tenancy.tenants (id, slug, model, plan, status, region, placement) VALUES ($1, $2, 'bridge', 'pro', 'active', 'us-east-1', $3)`,
      [id, `placement-${n}`, JSON.stringify(placement)], 'control_plane',
    );
  };

  test.each([
    [{ password: 'x' }],
    [{ Password: 'x' }],
    [{ db: { PASSWORD: 'x' } }],
    [{ db: { user: 'u', passwd: 'x' } }],
    [{ replicas: [{ host: 'h', pwd: 'x' }] }],
    [{ secret: 'x' }],
    [{ client_secret: 'x' }],
    [{ auth: { token: 'x' } }],
    [{ 'API-Key': 'x' }],
    [{ deep: { deeper: { apiKey: 'x' } } }],
    [{ tls: { private_key: '-----BEGIN' } }],
    [{ credentials: { username: 'u' } }],
    [{ aws: { AccessKey: 'AKIA' } }],
    [{ connection_string: 'postgres://u:p@h/db' }],
  ])('refused: %j', async (placement) => {
    await expect(insert(placement)).rejects.toMatchObject({ code: '23514', constraint: 'tenants_placement_no_secrets' });
  });

  test.each([
    [{ host: 'db.internal', port: 5432, database: 'tenants', schema: 'tenant_acme', role: 'tenant_acme_app', secret_ref: 'arn:aws:secretsmanager:us-east-1:1:secret:x', tenant_setting: 'app.tenant_id' }],
    [{ credentials_secret_arn: 'arn:aws:secretsmanager:us-east-1:1:secret:y', token_ref: 'tenancy/acme/token' }],
  ])('accepted (references to secrets): %j', async (placement) => {
    await expect(insert(placement)).resolves.toEqual([]);
  });

  test('ControlPlane.upsertTenant names the key path before writing', async () => {
    const pool = new Pool({ ...controlPlaneConnection(plaintextUrl(), { insecureNoTls: true }), max: 1 });
    try {
      const cp = new ControlPlane(pool, 'test');
      await expect(cp.upsertTenant({ id: '00000000-0000-4000-8000-999999999999', slug: 'placement-cp', model: 'bridge', plan: 'pro', status: 'active', region: 'us-east-1', placement: { host: 'h', replicas: [{ Api_Key: 'x' }] } }))
        .rejects.toThrow('tenant placement-cp: placement must not hold a secret (replicas[0].Api_Key)');
    } finally {
      await pool.end();
    }
  });
});

describe('no test-only fault hook in production code', () => {
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|js)$/.test(f) ? [p] : [];
  });

  test('no file under lib/ or bin/ reads an environment variable whose name contains FAULT', () => {
    const readers = files(join(repoRoot(), 'lib')).concat(files(join(repoRoot(), 'bin'))).flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      // FAULT as a word of the name (TENANCY_FAULT_…, INJECT_FAULT), not inside one (AWS_DEFAULT_REGION).
      const hits = [...text.matchAll(/\benv\s*(?:\.\s*|\[\s*['"`])((?:[A-Za-z0-9]+_)*FAULTS?(?:_[A-Za-z0-9_]*)?)\b/gi), ...text.matchAll(/['"`]((?:[A-Z0-9]+_)*FAULTS?_[A-Z0-9_]*)['"`]/g)];
      return hits.map((m) => `${file.slice(repoRoot().length + 1)}: ${m[1]}`);
    });
    expect(readers).toEqual([]);
  });
});
