import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { BridgeFleetFullError, chooseBridgeShard, registryBridgeFill } from '../registry/bridge-shards';
import { checkRegistryRules, type Registry, type TenantLocation } from '../registry/load-registry';
import type { RegistryProblem } from '../registry/registry-error';
import { TenantSchema, type Tenant, type TenantInput } from '../registry/tenant-schema';
import { formatPath } from '../registry/yaml-file';
import { slugFromCompany, uniqueSlug } from './slug';

/**
 * An onboarding request (`tenancy onboard`), validated before anything is written. The request
 * becomes a registry entry, and the entry is checked with the registry's own schema
 * (TenantSchema: email, plan, model, region, slug, compliance fields) and its cross-entry rules
 * (checkRegistryRules: duplicate slugs and domains, HIPAA/PCI only on silo, the plan's models,
 * residency, regions of platform.yaml) against the registry as loaded, plus the slugs and
 * domains the control plane already holds. Nothing is duplicated here except what the registry
 * cannot know: the request's own shape, and a stricter rule for company names (below).
 */

/** Who asked, as given on the command line or by an API. */
export interface OnboardingRequest {
  readonly email: string;
  readonly company: string;
  readonly plan: string;
  readonly model: string;
  readonly region: string;
  readonly dataResidency?: string;
  readonly compliance?: { readonly hipaa?: boolean; readonly pci?: boolean; readonly soc2?: boolean; readonly gdpr?: boolean };
  /** A slug of the caller's choosing; otherwise one is made from the company name. */
  readonly slug?: string;
  /** Label under the platform's base domain. @default the slug */
  readonly subdomain?: string;
  /** The tenant's own domain. */
  readonly customDomain?: string;
  /** Idempotency key: the same key submitted again returns the first request's tenant instead of creating another. */
  readonly requestKey?: string;
  /** A Stripe PaymentMethod (`pm_…`) collected by the signup page: attached to the new customer before the subscription. */
  readonly paymentMethod?: string;
}

/**
 * What a request asks for, as a hash: the same request key may only come back with the same
 * parameters (a retry); with different ones it is a conflict, never the first request's answer.
 * Defaults are applied first, so an omitted default equals it spelled out. The request key itself
 * and the payment method (a credential a retry need not resend; it does not define the tenant) are
 * not part of it.
 */
export function requestFingerprint(req: OnboardingRequest): string {
  const text = (v: string | undefined) => (typeof v === 'string' ? v.trim() : null);
  const canonical = {
    email: text(req.email)?.toLowerCase() ?? null,
    company: text(req.company),
    plan: text(req.plan),
    model: text(req.model),
    region: text(req.region),
    dataResidency: text(req.dataResidency) ?? 'none',
    compliance: { hipaa: false, pci: false, soc2: true, gdpr: false, ...req.compliance },
    slug: text(req.slug),
    subdomain: text(req.subdomain)?.toLowerCase() ?? null,
    customDomain: text(req.customDomain)?.toLowerCase() ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}


/** One thing wrong with a request, named by the request field. */
export interface RequestProblem {
  readonly field: string;
  readonly message: string;
}

export class OnboardingRequestError extends Error {
  constructor(readonly problems: readonly RequestProblem[]) {
    super(`invalid onboarding request:\n${problems.map((p) => `  ${p.field ? `${p.field}: ` : ''}${p.message}`).join('\n')}`);
    this.name = 'OnboardingRequestError';
  }
}

/**
 * A request key already used by a request with other parameters: an invalid request (CLI exit 2,
 * field `requestKey`), not the first request's answer.
 */
export class RequestKeyConflictError extends OnboardingRequestError {
  constructor(readonly requestKey: string, readonly earlierJob: string) {
    super([{ field: 'requestKey', message: `${JSON.stringify(requestKey)} was already used by onboarding job ${earlierJob} with different parameters; use a new key for a new request` }]);
    this.name = 'RequestKeyConflictError';
  }
}

/**
 * Company names go into emails, Stripe, invoices and logs. The registry refuses control and
 * bidi characters; a request is stricter: letters and marks of any script, digits, spaces and
 * ordinary punctuation only, and no SQL comment or statement separators. ("O'Reilly & Söhne
 * (Nord) GmbH" passes; "x'); DROP TABLE t;--", "<script>", "{{ .Values }}" do not.)
 */
const COMPANY_CHARS = /^[\p{L}\p{M}\p{N} .,&'’()+\-/!#@:]+$/u;
const COMPANY_SEQUENCES = /--|\/\*|\*\/|^[\s\-+=@]/;

const RequestSchema = z.strictObject({
  email: z.string().max(254),
  company: z
    .string()
    .max(200)
    .refine((s) => COMPANY_CHARS.test(s.trim()) && !COMPANY_SEQUENCES.test(s.trim()), {
      message: "may contain letters, digits, spaces and . , & ' ( ) + - / ! # @ : only (no quotes-and-semicolons, markup, templates or SQL comments)",
    }),
  plan: z.string().max(40),
  model: z.string().max(40),
  region: z.string().max(40),
  dataResidency: z.string().max(10).optional(),
  compliance: z.strictObject({ hipaa: z.boolean().optional(), pci: z.boolean().optional(), soc2: z.boolean().optional(), gdpr: z.boolean().optional() }).optional(),
  slug: z.string().max(63).optional(),
  subdomain: z.string().max(63).optional(),
  customDomain: z.string().max(253).optional(),
  requestKey: z.string().regex(/^[A-Za-z0-9._:-]{8,128}$/, { message: 'must be 8-128 characters: letters, digits and . _ : -' }).optional(),
  paymentMethod: z.string().regex(/^pm_[A-Za-z0-9_]{1,100}$/, { message: 'must be a Stripe PaymentMethod id (pm_…)' }).optional(),
});

/** Request field of a registry entry path. */
const FIELD_OF: Record<string, string> = { adminEmail: 'email', 'domain.subdomain': 'subdomain', 'domain.custom': 'customDomain' };
const fieldOf = (path: readonly PropertyKey[]) => {
  const p = formatPath(path);
  return FIELD_OF[p] ?? p;
};

/** What the control plane already holds besides the registry (concurrent requests, tenants registered by post-apply). */
export interface TakenNames {
  readonly slugs: ReadonlySet<string>;
  readonly domains: ReadonlySet<string>;
}

export interface ValidatedOnboarding {
  /** The entry as validated (defaults applied). */
  readonly tenant: Tenant;
  /** The entry as written to the registry (YAML or the database): explicit, no defaults left to chance. */
  readonly entry: TenantInput & { id: string; slug: string };
  /** Domains it claims: `<subdomain or slug>.<baseDomain>` and the custom domain. */
  readonly domains: readonly string[];
  readonly requestKey?: string;
  readonly paymentMethod?: string;
}

/**
 * Validates a request against the registry; throws {@link OnboardingRequestError} with every
 * problem. Generates the id (a random UUID) and, unless given, the slug (from the company name,
 * unique among the registry's and the control plane's slugs and domains).
 */
export function validateOnboardingRequest(input: unknown, registry: Registry, taken: TakenNames = { slugs: new Set(), domains: new Set() }, id: string = randomUUID()): ValidatedOnboarding {
  const problems: RequestProblem[] = [];
  const shape = RequestSchema.safeParse(input);
  if (!shape.success) {
    problems.push(...shape.error.issues.map((i) => ({
      field: i.code === 'unrecognized_keys' ? i.keys.join(', ') : formatPath(i.path),
      message: i.code === 'unrecognized_keys' ? 'unknown field' : i.message,
    })));
    // Only a refinement failed (e.g. the company's characters): check the rest too, to report every problem at once.
    if (!shape.error.issues.every((i) => i.code === 'custom')) throw new OnboardingRequestError(problems);
  }
  const req = (shape.success ? shape.data : input) as z.output<typeof RequestSchema>;
  const base = registry.platform.baseDomain;
  const registrySlugs = new Set(registry.tenants.map((t) => t.slug));
  const registryDomains = new Set(registry.tenants.flatMap((t) => domainsOf(t, base)));
  const slugTaken = (s: string) => registrySlugs.has(s) || taken.slugs.has(s) || (!req.subdomain && (registryDomains.has(`${s}.${base}`) || taken.domains.has(`${s}.${base}`)));
  const slug = req.slug ?? uniqueSlug(slugFromCompany(req.company), slugTaken);

  const entry = {
    id,
    slug,
    company: req.company.trim(),
    adminEmail: req.email,
    plan: req.plan,
    model: req.model,
    region: req.region,
    dataResidency: req.dataResidency ?? 'none',
    compliance: { hipaa: false, pci: false, soc2: true, gdpr: false, ...req.compliance },
    ...(req.subdomain || req.customDomain ? { domain: { ...(req.subdomain ? { subdomain: req.subdomain } : {}), ...(req.customDomain ? { custom: req.customDomain } : {}) } } : {}),
    status: 'provisioning',
  } as TenantInput & { id: string; slug: string };

  const parsed = TenantSchema.safeParse(entry);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) if (!problems.some((p) => p.field === fieldOf(issue.path))) problems.push({ field: fieldOf(issue.path), message: issue.message });
    throw new OnboardingRequestError(problems);
  }
  if (problems.length > 0) throw new OnboardingRequestError(problems);
  let tenant = parsed.data;
  // A bridge tenant of a region with listed shards gets one: here provisionally, from the registry
  // (a full fleet is a request problem); submitOnboarding decides it for good under the control
  // plane's placement lock (bridge-placement.ts).
  if (tenant.model === 'bridge' && registry.platform.regions[tenant.region]?.bridgeShards) {
    try {
      const shard = chooseBridgeShard(registry.platform, tenant, registryBridgeFill(registry.tenants, tenant.region));
      entry.placement = { bridgeShard: shard.id };
      tenant = { ...tenant, placement: { bridgeShard: shard.id } };
    } catch (e) {
      if (!(e instanceof BridgeFleetFullError)) throw e;
      throw new OnboardingRequestError([{ field: 'region', message: e.message }]);
    }
  }

  // The registry's cross-entry rules, with the request as the last entry: duplicates are reported on it.
  const registryProblems: RegistryProblem[] = [];
  const here = (file: string): TenantLocation => ({ file, problem: (path, message) => ({ file, path: fieldOf(path), message }) });
  checkRegistryRules(
    [...registry.tenants.map((t) => ({ tenant: t, yaml: here(`tenants/${t.slug}.yaml`), fileSlug: t.slug })), { tenant, yaml: here('request'), fileSlug: tenant.slug }],
    registry.platform,
    registryProblems,
  );
  for (const p of registryProblems) problems.push(p.file === 'request' ? { field: p.path, message: p.message } : { field: '', message: `the registry: ${p.file}: ${p.path}: ${p.message}` });

  const domains = domainsOf(tenant, base);
  if (taken.slugs.has(tenant.slug)) problems.push({ field: 'slug', message: `slug ${JSON.stringify(tenant.slug)} is already used by a tenant of the control plane` });
  for (const d of domains) if (taken.domains.has(d)) problems.push({ field: d === tenant.domain.custom ? 'customDomain' : tenant.domain.subdomain ? 'subdomain' : 'slug', message: `domain ${JSON.stringify(d)} is already used by a tenant of the control plane` });
  if (problems.length > 0) throw new OnboardingRequestError(problems);
  return { tenant, entry, domains, requestKey: req.requestKey, paymentMethod: req.paymentMethod };
}

/** The domains a tenant answers on. */
export function domainsOf(t: Pick<Tenant, 'slug' | 'domain'>, baseDomain: string): string[] {
  return [`${t.domain.subdomain ?? t.slug}.${baseDomain}`, ...(t.domain.custom ? [t.domain.custom] : [])];
}
