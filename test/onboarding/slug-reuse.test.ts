// Reproduces: a tenant offboarded and then onboarded again with the same slug is refused.
// Fails on 5599394 (before the fix): tenancy.tenants.slug was UNIQUE across offboarded tenants,
// takenNames() counted them ("slug … is already used by a tenant of the control plane"), their
// domain claims were kept for ever, and the offboarded registry entry stayed in tenants/ holding the slug.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { registerAuditLogCommand } from '../../lib/cli/audit-log-command';
import { registerStatusCommand } from '../../lib/cli/status-command';
import { submitOffboarding } from '../../lib/offboarding/submit';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import { OnboardingRequestError, type OnboardingRequest } from '../../lib/onboarding/request';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { runLifecycleJob } from '../../lib/onboarding/worker';
import { TenantResolutionError, TenantRouter } from '../../lib/runtime/router';
import { StaticSecretResolver } from '../../lib/runtime/secret-resolver';
import { runCommand, type CliIo } from '../support/cli';
import { useLifecycleTestbed } from '../support/lifecycle';

/**
 * A customer offboarded and onboarded again with the same slug, on the control plane and both
 * registry sources (real PostgreSQL, Redis, the local Stripe server, the local deployer): the new
 * tenant (a new id) becomes active, the old one stays recorded as offboarded with its audit trail
 * intact and its registry entry archived, and two live tenants never share a slug.
 */
const bed = useLifecycleTestbed({ git: true });
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;
const cp = (sql: string, params: unknown[] = []) => bed().pg.query(sql, params, 'control_plane');
const git = (...args: string[]) => execFileSync('git', ['-C', bed().root, ...args], { encoding: 'utf8' });
const request = (slug: string, email: string): OnboardingRequest => ({ email, company: 'Comeback Co', slug, plan: 'pro', model: 'bridge', region: 'us-east-1', paymentMethod: 'pm_card_visa' });

async function onboard(services: LifecycleServices, req: OnboardingRequest): Promise<string> {
  const s = await submitOnboarding(services, noQueue, req);
  const r = await runLifecycleJob(services, s.job.id);
  if (r.outcome !== 'succeeded') throw new Error(`onboarding ${req.slug}: ${r.error}`);
  return s.tenantId;
}

async function offboard(services: LifecycleServices, slug: string): Promise<void> {
  const s = await submitOffboarding(services, noQueue, slug, { reason: 'test' });
  const r = await runLifecycleJob(services, s.job.id);
  if (r.outcome !== 'succeeded') throw new Error(`offboarding ${slug}: ${r.error}`);
}

/** The audit trail of a tenant: every entry with its chain hash (append-only: these never change). */
const trail = (tenantId: string) => cp('SELECT seq::text, action, hash FROM tenancy.audit_log WHERE tenant_id = $1 ORDER BY seq', [tenantId]);

/** The runtime's view: which tenant a Host resolves to (a fresh router each time, no cache). */
async function routedByHost(services: LifecycleServices, slug: string) {
  const router = new TenantRouter({ controlPlane: services.pool, secrets: new StaticSecretResolver(new Map()), baseDomain: 'saas.example.com', connectionBudget: 2, statusListener: false });
  try {
    return await router.resolve({ host: `${slug}.saas.example.com` });
  } finally {
    await router.close();
  }
}

const verifyAuditLog = () =>
  runCommand((program: Command, io: CliIo) => registerAuditLogCommand(program.command('audit'), io), ['audit', 'log', '--verify', '--json'], { env: bed().childEnv() });

describe('the directory registry (GitOps)', () => {
  const SLUG = 'comeback';
  let services: LifecycleServices;
  let firstId: string;
  let secondId: string;
  let firstTrail: unknown[];

  beforeAll(async () => {
    services = bed().track(await bed().open(), (s) => s.close());
    firstId = await onboard(services, request(SLUG, 'ops@comeback.example'));
  });

  test('while the tenant is live, its slug is refused to another request, and the database refuses a second live row', async () => {
    await expect(submitOnboarding(services, noQueue, request(SLUG, 'other@comeback.example'))).rejects.toThrow(OnboardingRequestError);
    await expect(submitOnboarding(services, noQueue, request(SLUG, 'other@comeback.example'))).rejects.toThrow(/slug: .*already used/);
    await expect(cp(`INSERT INTO tenancy.tenants (id, slug, model, plan, status, region) VALUES (gen_random_uuid(), $1, 'bridge', 'pro', 'provisioning', 'us-east-1')`, [SLUG]))
      .rejects.toThrow(/tenants_live_slug_key/);
  });

  test('offboarding archives the registry entry (committed) out of tenants/, and releases the domain', async () => {
    await offboard(services, SLUG);
    firstTrail = await trail(firstId);
    expect(existsSync(join(bed().root, 'tenants', `${SLUG}.yaml`))).toBe(false);
    const archive = join('tenants', 'offboarded', `${SLUG}.${firstId}.yaml`);
    expect(parse(readFileSync(join(bed().root, archive), 'utf8'))).toMatchObject({ id: firstId, slug: SLUG, status: 'offboarded' });
    expect(git('log', '-1', '--format=%s', '--name-status', '--no-renames').trim().split('\n')).toEqual([`Offboard tenant ${SLUG}`, '', `D\ttenants/${SLUG}.yaml`, `A\t${archive}`]);
    expect(git('status', '--porcelain', '--', 'tenants').trim()).toBe('');
    expect((await services.registry.load()).tenants.map((t) => t.slug)).not.toContain(SLUG);
    expect(await cp('SELECT domain, released_at IS NOT NULL AS released FROM tenancy.tenant_domains WHERE tenant_id = $1', [firstId])).toEqual([{ domain: `${SLUG}.saas.example.com`, released: true }]);
    // Its host is refused as offboarded (not unknown) until a new tenant takes the slug.
    const refused = await routedByHost(services, SLUG).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TenantResolutionError);
    expect(refused).toMatchObject({ code: 'tenant-unavailable' });
  });

  test('the same slug onboards again as a new tenant (new id) to active; the old one stays offboarded', async () => {
    secondId = await onboard(services, request(SLUG, 'ops@comeback.example'));
    expect(secondId).not.toBe(firstId);
    expect(await cp('SELECT id::text, status FROM tenancy.tenants WHERE slug = $1 ORDER BY created_at', [SLUG])).toEqual([
      { id: firstId, status: 'offboarded' },
      { id: secondId, status: 'active' },
    ]);
    expect(await cp('SELECT tenant_id::text, released_at IS NOT NULL AS released FROM tenancy.tenant_domains WHERE domain = $1 ORDER BY created_at', [`${SLUG}.saas.example.com`])).toEqual([
      { tenant_id: firstId, released: true },
      { tenant_id: secondId, released: false },
    ]);
    expect(parse(readFileSync(join(bed().root, 'tenants', `${SLUG}.yaml`), 'utf8'))).toMatchObject({ id: secondId, status: 'active' });
    expect(existsSync(join(bed().root, 'tenants', 'offboarded', `${SLUG}.${firstId}.yaml`))).toBe(true);
    // The new tenant has its own schema and role (the old ones were dropped by the offboarding).
    expect((await services.controlPlane.tenantById(secondId))!.placement).toMatchObject({ schema: 'tenant_comeback', role: 'tenant_comeback_app' });
    expect(await bed().pg.query("SELECT nspname FROM pg_namespace WHERE nspname = 'tenant_comeback'", [], 'tenants')).toHaveLength(1);
  });

  test('lookups by slug resolve to the live tenant; the old one is still there by id', async () => {
    expect((await services.controlPlane.tenantBySlug(SLUG))!.id).toBe(secondId);
    expect((await routedByHost(services, SLUG)).id).toBe(secondId);
    expect((await services.controlPlane.tenantById(firstId))!.status).toBe('offboarded');
    const status = await runCommand(registerStatusCommand, ['status', SLUG, '--json'], { env: bed().childEnv() });
    expect(JSON.parse(status.stdout)).toMatchObject({ id: secondId, status: 'active' });
  });

  test("the old tenant's audit trail is unchanged and the chain verifies", async () => {
    expect(await trail(firstId)).toEqual(firstTrail);
    expect(firstTrail.map((e) => (e as { action: string }).action)).toEqual(expect.arrayContaining(['tenant.registered', 'onboard.succeeded', 'offboard.succeeded', 'tenant.domains_released']));
    const verified = await verifyAuditLog();
    expect(verified).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
  });

  test('a second live tenant with the slug is still refused', async () => {
    await expect(submitOnboarding(services, noQueue, request(SLUG, 'third@comeback.example'))).rejects.toThrow(/slug: .*already used/);
    await expect(cp(`UPDATE tenancy.tenants SET status = 'active' WHERE id = $1`, [firstId])).rejects.toThrow(/tenants_live_slug_key/);
  });

  test('offboarding the new tenant too keeps both archives apart', async () => {
    await offboard(services, SLUG);
    expect(await cp('SELECT id::text, status FROM tenancy.tenants WHERE slug = $1 ORDER BY created_at', [SLUG])).toEqual([
      { id: firstId, status: 'offboarded' },
      { id: secondId, status: 'offboarded' },
    ]);
    for (const id of [firstId, secondId]) {
      expect(parse(readFileSync(join(bed().root, 'tenants', 'offboarded', `${SLUG}.${id}.yaml`), 'utf8'))).toMatchObject({ id, status: 'offboarded' });
    }
    // `tenancy offboard <slug>` again names the newest offboarded tenant: a no-op.
    const again = await submitOffboarding(services, noQueue, SLUG);
    expect(again).toMatchObject({ tenantId: secondId, created: false, queued: { state: 'succeeded' } });
  });
});

describe('the database registry source', () => {
  const SLUG = 'comeback-db';
  let services: LifecycleServices;

  beforeAll(async () => {
    services = bed().track(await bed().open({ registrySource: 'database' }), (s) => s.close());
  });

  test('the offboarded entry is archived (kept, not loaded); the slug onboards again as a new tenant', async () => {
    const firstId = await onboard(services, request(SLUG, 'ops@comeback-db.example'));
    await offboard(services, SLUG);
    expect((await services.registry.load()).tenants.map((t) => t.slug)).not.toContain(SLUG);
    expect(await services.registry.archived(SLUG, firstId)).toMatchObject({ id: firstId, status: 'offboarded' });
    const secondId = await onboard(services, request(SLUG, 'ops@comeback-db.example'));
    expect(await cp('SELECT id::text, entry->>\'status\' AS status, archived_at IS NOT NULL AS archived FROM tenancy.registry_entries WHERE slug = $1 ORDER BY created_at', [SLUG])).toEqual([
      { id: firstId, status: 'offboarded', archived: true },
      { id: secondId, status: 'active', archived: false },
    ]);
    expect((await services.controlPlane.tenantBySlug(SLUG))!).toMatchObject({ id: secondId, status: 'active' });
    expect((await verifyAuditLog()).code).toBe(0);
  });
});
