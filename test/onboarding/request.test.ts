import type { Registry } from '../../lib/registry/load-registry';
import { SLUG_PATTERN } from '../../lib/registry/tenant-schema';
import { OnboardingRequestError, validateOnboardingRequest, type OnboardingRequest } from '../../lib/onboarding/request';
import { slugFromCompany, uniqueSlug } from '../../lib/onboarding/slug';
import { loadSampleRegistry } from '../support/sample-registry';

/**
 * Onboarding requests are validated with the registry's own schema and rules, against the tests'
 * sample registry (acme, globex, initech, … in test/fixtures/sample-project/tenants/) and what the control plane holds.
 */
const registry: Registry = loadSampleRegistry();
const ok: OnboardingRequest = { email: 'admin@newco.example', company: 'NewCo Labs', plan: 'pro', model: 'bridge', region: 'us-east-1' };

function problems(input: unknown, taken = { slugs: new Set<string>(), domains: new Set<string>() }): { field: string; message: string }[] {
  try {
    validateOnboardingRequest(input, registry, taken);
  } catch (e) {
    if (e instanceof OnboardingRequestError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('slugs from company names', () => {
  test.each([
    ['NewCo Labs', 'newco-labs'],
    ['Café Zürich GmbH', 'cafe-zurich-gmbh'],
    ['Straße & Søn A/S', 'strasse-son-a-s'],
    ["Robert'); DROP TABLE tenants;--", 'robert-drop-table-tenants'],
    ['3M Company', 't-3m-company'],
    ['X', 'x-co'],
    ['株式会社', 'tenant'],
    ['Admin', 'admin-co'],
    ['The Extraordinarily Long Name Of A Holding Company International', 'the-extraordinarily-long-name'],
  ])('%s → %s', (company, slug) => {
    expect(slugFromCompany(company)).toBe(slug);
    expect(slug).toMatch(SLUG_PATTERN);
  });

  test('unique: a taken slug gets the first free -N suffix, within 30 characters', () => {
    expect(uniqueSlug('acme', (s) => ['acme', 'acme-2'].includes(s))).toBe('acme-3');
    const long = 'the-extraordinarily-long-name';
    const next = uniqueSlug(long, (s) => s === long);
    expect(next).toBe('the-extraordinarily-long-2');
    expect(next.length).toBeLessThanOrEqual(30);
  });
});

describe('a valid request', () => {
  test('becomes a registry entry with a generated id and slug, status provisioning', () => {
    const v = validateOnboardingRequest(ok, registry, undefined, '5d0f3a8e-6a43-4c4c-9a7e-0b3f1f6c2a10');
    expect(v.entry).toEqual({
      id: '5d0f3a8e-6a43-4c4c-9a7e-0b3f1f6c2a10', slug: 'newco-labs', company: 'NewCo Labs', adminEmail: 'admin@newco.example', plan: 'pro', model: 'bridge',
      region: 'us-east-1', dataResidency: 'none', compliance: { hipaa: false, pci: false, soc2: true, gdpr: false }, status: 'provisioning',
    });
    expect(v.domains).toEqual(['newco-labs.saas.example.com']);
  });

  test('a company whose slug is taken gets the next one', () => {
    expect(validateOnboardingRequest({ ...ok, company: 'Acme' }, registry).tenant.slug).toBe('acme-2');
    expect(validateOnboardingRequest({ ...ok, company: 'Acme' }, registry, { slugs: new Set(['acme-2']), domains: new Set() }).tenant.slug).toBe('acme-3');
  });

  test("O'Reilly & Söhne (Nord) GmbH is a company name", () => {
    expect(problems({ ...ok, company: "O'Reilly & Söhne (Nord) GmbH" })).toEqual([]);
  });
});

describe('rejected requests, with the field named', () => {
  test.each<[string, Partial<OnboardingRequest> & Record<string, unknown>, string, RegExp]>([
    ['a duplicate slug', { slug: 'acme' }, 'slug', /slug "acme" is already used by tenants\/acme\.yaml/],
    ['a duplicate subdomain', { subdomain: 'globex' }, 'subdomain', /domain "globex\.saas\.example\.com" is already used/],
    ['a duplicate custom domain', { customDomain: 'portal.initech.example' }, 'customDomain', /domain "portal\.initech\.example" is already used/],
    ['an invalid email', { email: 'not-an-email' }, 'email', /must be an email address/],
    ['an email with a header injected', { email: 'a@b.example\r\nBcc: victim@example.com' }, 'email', /must be an email address/],
    ['an unknown plan', { plan: 'platinum' }, 'plan', /Invalid option/],
    ['an unknown model', { model: 'hybrid' }, 'model', /Invalid option/],
    ['HIPAA on pool', { model: 'pool', compliance: { hipaa: true } }, 'model', /HIPAA tenants must use the silo model/],
    ['PCI on bridge', { compliance: { pci: true } }, 'model', /PCI tenants must use the silo model/],
    ['a model the plan does not allow', { plan: 'free' }, 'model', /plan "free" allows pool, not bridge/],
    ['a region outside the residency', { dataResidency: 'eu' }, 'region', /outside the tenant's data residency "eu"/],
    ['a region not in platform.yaml', { region: 'ap-south-1' }, 'region', /not a region of platform\.yaml/],
    ['GDPR without residency', { compliance: { gdpr: true } }, 'dataResidency', /GDPR tenants must declare a data residency/],
    ['SQL in the slug', { slug: "acme'; DROP SCHEMA public CASCADE; --" }, 'slug', /must be 3-30 characters/],
    ['a path in the slug', { slug: '../etc' }, 'slug', /must be 3-30 characters/],
    ['an underscore in the slug', { slug: 'tenant_x' }, 'slug', /must be 3-30 characters/],
    ['a reserved slug', { slug: 'postgres' }, 'slug', /reserved/],
    ['uppercase in the slug', { slug: 'Acme' }, 'slug', /must be 3-30 characters/],
    ['a homoglyph in the slug', { slug: 'аcme' }, 'slug', /must be 3-30 characters/],
    ['SQL in the company name', { company: "Robert'); DROP TABLE tenancy.tenants;--" }, 'company', /may contain letters, digits/],
    ['markup in the company name', { company: '<script>alert(1)</script>' }, 'company', /may contain letters, digits/],
    ['a template in the company name', { company: '{{ .Values.secret }}' }, 'company', /may contain letters, digits/],
    ['a YAML line in the company name', { company: 'Acme\nstatus: active' }, 'company', /may contain letters, digits/],
    ['a bidi override in the company name', { company: 'Acme\u202eevil' }, 'company', /may contain letters, digits/],
    ['a formula in the company name', { company: '=HYPERLINK("http://x")' }, 'company', /may contain letters, digits/],
    ['an unknown field', { status: 'active' }, 'status', /unknown field/],
    ['a canary mark (the operator chooses who is deployed first)', { canary: true }, 'canary', /unknown field/],
  ])('%s', (_name, change, field, message) => {
    const found = problems({ ...ok, ...change });
    expect(found).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.stringMatching(message) })]));
  });

  test('a slug or domain the control plane holds (a concurrent request) is refused', () => {
    expect(problems({ ...ok, slug: 'newco' }, { slugs: new Set(['newco']), domains: new Set() })).toEqual([
      expect.objectContaining({ field: 'slug', message: expect.stringMatching(/already used by a tenant of the control plane/) }),
    ]);
    expect(problems({ ...ok, customDomain: 'app.newco.example' }, { slugs: new Set(), domains: new Set(['app.newco.example']) })).toEqual([
      expect.objectContaining({ field: 'customDomain' }),
    ]);
  });

  test('every problem is reported at once', () => {
    const found = problems({ ...ok, email: 'x', plan: 'platinum', slug: 'A' });
    expect(found.map((p) => p.field).sort()).toEqual(['email', 'plan', 'slug']);
    expect(problems({ ...ok, email: 'x', company: 'Bad <Co>' }).map((p) => p.field).sort()).toEqual(['company', 'email']);
  });
});
