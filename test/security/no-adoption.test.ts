// Reproduces: onboarding adopts what it did not create. A new tenant whose slug equals an old
// tenant's (a name that normalizes to it, after an offboarding whose erasure did not finish) is
// handed the leftover schema with its data and the leftover role; a request key reused with other
// parameters returns the first request's tenant; names that identity and mail systems trust
// (login, sso, mta-sts, autodiscover, …) can be claimed as a tenant's subdomain.
// Fails on 0f20909 (main before the fix): provisioning the new tenant succeeded on the old schema
// (its rows readable by the new tenant's role), the conflicting request key answered with the
// first tenant (created: false), and `login`, `sso`, `mta-sts`, `autodiscover` were accepted.
import type { Client } from 'pg';
import { attributionOf, provisionTenantSchema } from '../../lib/hooks/tenant-schema-provisioning';
import type { LifecycleQueue } from '../../lib/onboarding/queue';
import { OnboardingRequestError, RequestKeyConflictError, validateOnboardingRequest, type OnboardingRequest } from '../../lib/onboarding/request';
import type { LifecycleServices } from '../../lib/onboarding/services';
import { slugFromCompany } from '../../lib/onboarding/slug';
import { submitOnboarding } from '../../lib/onboarding/submit';
import { PLAN_PROFILES } from '../../lib/plans';
import { loadRegistry } from '../../lib/registry/load-registry';
import { MASTERS, useLifecycleTestbed } from '../support/lifecycle';

const bed = useLifecycleTestbed({ smtp: false });
const OLD = { id: '7e0c5a52-8d7a-4a3b-9c55-000000000001', password: 'old-acme-pw (test only)' };
const NEW = { id: '7e0c5a52-8d7a-4a3b-9c55-000000000002', password: 'new-acme-pw (test only)' };
/** A queue that accepts nothing: these tests look at what submitting answers. */
const noQueue = { enqueue: async () => ({ id: '', state: 'not-queued' }) } as unknown as LifecycleQueue;

async function asBridgeMaster<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await bed().pg.connect({ user: MASTERS.bridge.user, password: MASTERS.bridge.password, database: MASTERS.bridge.database });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const provision = (slug: string, tenant: { id: string; password: string }, adoptUnattributed = false) => asBridgeMaster((c) => provisionTenantSchema(c, {
  slug, tenantId: tenant.id, password: tenant.password, database: MASTERS.bridge.database, limits: PLAN_PROFILES.pro.databaseRole, adoptUnattributed,
}));
const q = (sql: string) => bed().pg.query(sql, [], MASTERS.bridge.database);
const comments = async (slug: string) => (await q(`SELECT (SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'tenant_${slug.replace(/-/g, '_')}') AS schema,
  (SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'tenant_${slug.replace(/-/g, '_')}_app') AS role`))[0];

describe('provisioning refuses a schema or role it did not create for this tenant', () => {
  beforeAll(async () => {
    // The old tenant "ACME Corp" (slug acme-corp), offboarded, its erasure not finished: schema, data and role remain.
    await provision('acme-corp', OLD);
    // Created by the master user, as the migrations do.
    await asBridgeMaster((c) => c.query("CREATE TABLE tenant_acme_corp.customers (name text); INSERT INTO tenant_acme_corp.customers VALUES ('old tenant data')"));
  });

  test('a new tenant whose name normalizes to the old slug is refused; nothing changes', async () => {
    expect(slugFromCompany('Acme  Corp.')).toBe('acme-corp');
    await expect(provision('acme-corp', NEW)).rejects.toThrow(/role tenant_acme_corp_app already exists and is not attributed to tenant 7e0c5a52-8d7a-4a3b-9c55-000000000002 \(it carries 'tenancy:tenant-id=7e0c5a52-8d7a-4a3b-9c55-000000000001'\); refusing to adopt it/);
    // Still the old tenant's: its comment, its password; the new password opens nothing.
    expect(await comments('acme-corp')).toEqual({ schema: attributionOf(OLD.id), role: attributionOf(OLD.id) });
    await expect(bed().pg.connect({ user: 'tenant_acme_corp_app', password: NEW.password, database: MASTERS.bridge.database })).rejects.toThrow(/password authentication failed/);
    // Even with adoption of unattributed objects allowed: these carry another tenant's id.
    await expect(provision('acme-corp', NEW, true)).rejects.toThrow(/not attributed to tenant/);
  });

  test('a leftover schema alone (its role already dropped) is refused too', async () => {
    await asBridgeMaster(async (c) => {
      await c.query('GRANT tenant_acme_corp_app TO CURRENT_USER');
      await c.query('DROP OWNED BY tenant_acme_corp_app');
      await c.query('DROP ROLE tenant_acme_corp_app');
    });
    await expect(provision('acme-corp', NEW)).rejects.toThrow(/schema tenant_acme_corp already exists and is not attributed to tenant 7e0c5a52-8d7a-4a3b-9c55-000000000002/);
    expect(await q("SELECT 1 FROM pg_roles WHERE rolname = 'tenant_acme_corp_app'")).toEqual([]);
    expect(await q('SELECT name FROM tenant_acme_corp.customers')).toEqual([{ name: 'old tenant data' }]);
  });

  test('an unattributed schema (made by hand or by an older version) is refused unless the tenant is already known as provisioned', async () => {
    await asBridgeMaster((c) => c.query('CREATE SCHEMA tenant_legacy'));
    await expect(provision('legacy', NEW)).rejects.toThrow(/schema tenant_legacy already exists and is not attributed to tenant .* \(it carries no tenant id\)/);
    await provision('legacy', NEW, true);
    expect(await comments('legacy')).toEqual({ schema: attributionOf(NEW.id), role: attributionOf(NEW.id) });
    // Once attributed, a rerun for the same tenant is idempotent, and another tenant is refused.
    await provision('legacy', NEW);
    await expect(provision('legacy', OLD, true)).rejects.toThrow(/not attributed to tenant 7e0c5a52-8d7a-4a3b-9c55-000000000001/);
  });

  test('a tenant role cannot rewrite its own attribution', async () => {
    const c = await bed().pg.connect({ user: 'tenant_legacy_app', password: NEW.password, database: MASTERS.bridge.database });
    try {
      await expect(c.query(`COMMENT ON ROLE tenant_legacy_app IS '${attributionOf(OLD.id)}'`)).rejects.toThrow(/must have CREATEROLE privilege|permission denied/);
      await expect(c.query(`COMMENT ON SCHEMA tenant_legacy IS '${attributionOf(OLD.id)}'`)).rejects.toThrow(/must be owner of schema/);
    } finally {
      await c.end();
    }
  });
});

describe('request keys', () => {
  let services: LifecycleServices;
  beforeAll(async () => {
    services = bed().track(await bed().open(), (s) => s.close());
  });
  const request: OnboardingRequest = { email: 'ops@keyed.example', company: 'Keyed Industries', plan: 'pro', model: 'pool', region: 'us-east-1', requestKey: 'keyed-signup-0001' };

  test('the same key with the same parameters returns the first answer; with other parameters it is a conflict', async () => {
    const first = await submitOnboarding(services, noQueue, request);
    expect(first).toMatchObject({ slug: 'keyed-industries', created: true });
    // A retry: spelled-out defaults and a payment method do not make it another request.
    const retry = await submitOnboarding(services, noQueue, { ...request, compliance: { soc2: true }, dataResidency: 'none', paymentMethod: 'pm_card_visa' });
    expect(retry).toMatchObject({ tenantId: first.tenantId, created: false });

    const tenantsBefore = await bed().pg.query('SELECT id, slug, plan FROM tenancy.tenants ORDER BY id', [], MASTERS.controlPlane.database);
    for (const other of [{ plan: 'enterprise' }, { company: 'Someone Else Ltd' }, { email: 'attacker@elsewhere.example' }, { model: 'bridge' }]) {
      const attempt = submitOnboarding(services, noQueue, { ...request, ...other });
      await expect(attempt).rejects.toBeInstanceOf(RequestKeyConflictError);
      await expect(attempt).rejects.toBeInstanceOf(OnboardingRequestError); // the CLI's exit 2, field requestKey
      await expect(attempt).rejects.toThrow(/requestKey: "keyed-signup-0001" was already used by onboarding job .* with different parameters/);
    }
    expect(await bed().pg.query('SELECT id, slug, plan FROM tenancy.tenants ORDER BY id', [], MASTERS.controlPlane.database)).toEqual(tenantsBefore);
  });
});

describe('reserved subdomains', () => {
  const names = ['login', 'auth', 'sso', 'oauth', 'admin', 'api', 'www', 'mail', 'smtp', 'imap', 'pop3', 'mta-sts', 'autodiscover', 'autoconfig', 'status', 'billing', 'help', 'support', 'docs', 'static', 'cdn', 'app', 'dashboard', 'console'];

  test.each(names)('%s is refused as a slug and as a subdomain, and never generated from a company name', (name) => {
    const registry = loadRegistry({ root: bed().root, tenantsDir: `${bed().root}/tenants` });
    const problems = (input: Partial<OnboardingRequest>): string[] => {
      try {
        validateOnboardingRequest({ email: 'a@b.example', company: 'Reserved Probe', plan: 'pro', model: 'pool', region: 'us-east-1', ...input }, registry, { slugs: new Set(), domains: new Set() });
        return [];
      } catch (e) {
        if (e instanceof OnboardingRequestError) return e.problems.map((p) => `${p.field}: ${p.message}`);
        throw e;
      }
    };
    if (name.length >= 3) expect(problems({ slug: name })).toContain('slug: is reserved by the platform');
    expect(problems({ subdomain: name })).toContain('subdomain: is reserved by the platform');
    expect(slugFromCompany(name)).not.toBe(name);
  });
});
