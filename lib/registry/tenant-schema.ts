import { z } from 'zod';
import { cdktfNumberTokenIn } from '../terraform-literal';
import { WorkloadValuesSchema } from './workload-values';

/**
 * The tenant registry's schema: one YAML file per tenant under `tenants/`.
 *
 * The slug is the most dangerous field: it becomes a PostgreSQL schema and role name
 * (`tenant_<slug>`), a Kubernetes namespace (`tenant-<slug>`), an RDS identifier, an
 * IAM/KMS/Secrets Manager name, a subdomain label and part of a Terraform resource name.
 * One pattern has to be safe for all of them, so it is the intersection of their rules:
 * lowercase ASCII letters and digits, single hyphens between them, starting with a
 * letter, 3–30 characters. Hyphens map to underscores in SQL names; since `_` is not
 * allowed in a slug, that mapping never makes two slugs collide.
 */
export const SLUG_PATTERN = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,29}$/;
export const SLUG_MAX_LENGTH = 30;

/**
 * Slugs and subdomain labels that would shadow a platform name, a PostgreSQL role, or a name that
 * identity and mail systems trust under the platform's domain (a tenant at `login.` or `sso.`
 * phishes every tenant; `mta-sts.`, `autodiscover.`, `autoconfig.` are fetched by mail clients and
 * servers). The one list for the registry loader and onboarding requests (both validate with
 * this schema; lib/onboarding/slug.ts avoids it when generating slugs).
 */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  // the platform and its infrastructure
  'platform', 'admin', 'api', 'app', 'www', 'status', 'console', 'dashboard', 'system', 'default',
  'public', 'root', 'postgres', 'pgbouncer', 'template', 'internal', 'kube', 'cluster',
  'monitoring', 'billing', 'control-plane', 'shared', 'pool', 'bridge', 'silo',
  'static', 'cdn', 'assets', 'media', 'files', 'download', 'downloads', 'docs', 'help', 'support',
  'blog', 'metrics', 'grafana', 'health',
  'webhook', 'webhooks', 'portal', 'pay', 'payment', 'payments', 'checkout', 'invoice', 'invoices',
  // identity
  'login', 'logout', 'signin', 'signup', 'sign-in', 'sign-up', 'register', 'auth', 'oauth', 'oauth2',
  'oidc', 'sso', 'saml', 'adfs', 'sts', 'idp', 'identity', 'account', 'accounts', 'id', 'secure',
  'security', 'password', 'passwords', 'mfa', 'verify', 'ldap', 'kerberos', 'vpn',
  // mail, DNS and other well-known hosts
  'mail', 'email', 'webmail', 'smtp', 'smtps', 'imap', 'imaps', 'pop', 'pop3', 'pop3s', 'mx',
  'mta-sts', 'autodiscover', 'autoconfig', 'postmaster', 'hostmaster', 'webmaster', 'abuse',
  'noreply', 'no-reply', 'ns', 'ns1', 'ns2', 'ns3', 'ns4', 'dns', 'ftp', 'sftp', 'ssh', 'git',
  'wpad', 'isatap', 'localhost',
]);

/**
 * Identifiers (id, slug, domains) are built into names and values unescaped, so none may hold a
 * number that cdktf reads as one of its encoded tokens ("x-8109562212591421e283"): it would put one
 * of the stack's Terraform references in its place, or fail every tenant's synth.
 */
const noCdktfToken = (s: string, ctx: z.RefinementCtx) => {
  const run = cdktfNumberTokenIn(s.toLowerCase());
  if (run) ctx.addIssue({ code: 'custom', message: `must not contain "${run}": cdktf reads that number as one of its encoded tokens and would put a Terraform reference in its place` });
};

export const PLANS = ['free', 'starter', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

export const MODELS = ['silo', 'bridge', 'pool'] as const;
export type TenancyModel = (typeof MODELS)[number];

export const STATUSES = ['provisioning', 'active', 'suspended', 'offboarding', 'offboarded'] as const;
export type TenantStatus = (typeof STATUSES)[number];

/** Where a tenant's data may live; `none` places no constraint on the region. */
export const RESIDENCIES = ['none', 'eu', 'us', 'ca', 'uk', 'au', 'jp'] as const;
export type DataResidency = (typeof RESIDENCIES)[number];

/** AWS region prefixes each residency allows. */
export const RESIDENCY_REGION_PREFIXES: Readonly<Record<DataResidency, readonly string[]>> = {
  none: [''],
  eu: ['eu-'],
  us: ['us-east-', 'us-west-'],
  ca: ['ca-'],
  uk: ['eu-west-2'],
  au: ['ap-southeast-2', 'ap-southeast-4'],
  jp: ['ap-northeast-1', 'ap-northeast-3'],
};

/** The shard of a bridge tenant without a placement: the one bridge cluster of earlier versions. */
export const DEFAULT_BRIDGE_SHARD = 'default';
/** A bridge shard id: 1-16 lowercase letters and digits with single inner hyphens, starting with a letter (it becomes part of RDS, DNS and output names). */
export const BRIDGE_SHARD_ID = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,15}$/;
export const BRIDGE_SHARD_ID_MESSAGE = 'must be a shard id: 1-16 lowercase letters and digits with single inner hyphens, starting with a letter';

export const REGION_PATTERN = /^(?:us|eu|ap|ca|sa|me|af|il|mx)-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]$/;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
/** Kubernetes quantities, e.g. `500m`, `2`, `16Gi`. */
const QUANTITY = /^[0-9]+(?:\.[0-9]+)?(?:m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;

const quantity = (what: string) =>
  z.string().regex(QUANTITY, { message: `${what} must be a Kubernetes quantity such as "500m", "4" or "16Gi"` });

/** Policy rule ids look like TENANCY-K8S-2 or HIPAA-SILO-1 (lib/policy/rules). */
export const POLICY_RULE_ID_PATTERN = /^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$/;

export const SuppressionSchema = z
  .strictObject({
    rule: z.string().regex(POLICY_RULE_ID_PATTERN, { message: 'must be a policy rule id such as "TENANCY-K8S-3"' }).describe('Id of the policy rule to suppress (README "Compliance").'),
    path: z
      .string()
      .trim()
      .min(1, { message: 'must name the construct, e.g. "namespace/release" (the stack itself: "tenant-<slug>")' })
      .max(500)
      .regex(/^[A-Za-z0-9_./-]+$/, { message: 'must be a construct path such as "namespace/release"' })
      .describe('Construct path the suppression covers, relative to the tenant stack (it covers the constructs below it too).'),
    reason: z.string().trim().min(10, { message: 'must say why, for the auditor (at least 10 characters)' }).max(1000).describe('Why the rule does not apply here; shown in the compliance report.'),
  })
  .describe('A policy finding accepted on purpose: explicit, per rule and construct, with a reason.');

export const ComplianceSchema = z
  .strictObject({
    hipaa: z.boolean().default(false).describe('Stores PHI under a HIPAA BAA: requires the silo model.'),
    pci: z.boolean().default(false).describe('Stores cardholder data in PCI DSS scope: requires the silo model and dedicated nodes.'),
    soc2: z.boolean().default(true).describe('Included in SOC 2 Type II evidence (every tenant is, by default).'),
    gdpr: z.boolean().default(false).describe('Holds personal data of EU data subjects: erasure and residency rules apply.'),
    suppressions: z.array(SuppressionSchema).max(50).optional().describe('Policy findings accepted on purpose; each is listed, with its reason, in the compliance report.'),
  })
  .describe('Compliance regimes that apply to this tenant.');

export const DomainSchema = z
  .strictObject({
    subdomain: z
      .string()
      .regex(DNS_LABEL, { message: 'must be one DNS label: lowercase letters, digits and inner hyphens, at most 63 characters' })
      .refine((s) => !RESERVED_SLUGS.has(s), { message: 'is reserved by the platform' })
      .superRefine(noCdktfToken)
      .optional()
      .describe('Label under the platform base domain; defaults to the slug.'),
    custom: z
      .string()
      .regex(DOMAIN, { message: 'must be a lowercase fully qualified domain name such as "app.example.com"' })
      .superRefine(noCdktfToken)
      .optional()
      .describe("The tenant's own domain, CNAMEd to the platform."),
  })
  .describe("How the tenant's users reach it.");

/** An IPv4 CIDR block, each number without leading zeros (some parsers read "010" as octal). */
export const CIDR_PATTERN = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(?:3[0-2]|[12]?\d)$/;

export const EgressSchema = z
  .strictObject({
    cidr: z
      .string()
      .regex(CIDR_PATTERN, { message: 'must be an IPv4 CIDR such as "203.0.113.0/24"' })
      .refine((c) => !c.endsWith('/0'), { message: 'must not be the whole internet; list the destinations' })
      .describe('Destination network; never link-local or metadata addresses, loopback, the cluster ranges or the database subnets unless platform.yaml kubernetes.egress.allow lists it.'),
    ports: z.array(z.int().min(1).max(65535)).min(1).max(20).describe('TCP ports allowed to it.'),
  })
  .describe('A destination outside the cluster the workload may reach.');

export const WorkloadSchema = z
  .strictObject({
    egress: z
      .array(EgressSchema)
      .max(20)
      .optional()
      .describe('Destinations beyond the database and DNS the workload may reach; not allowed for HIPAA and PCI tenants.'),
    replicas: z.int().min(0).max(100).optional().describe('Replica count of the tenant workload; defaults to the plan.'),
    values: WorkloadValuesSchema.optional().describe(
      'Helm values for the tenant chart, merged over chart defaults and plan values: only the values a tenant may set (README "Workload values"); hosts, annotations and images are checked against platform.yaml.',
    ),
  })
  .describe('Overrides for the tenant workload.');

export const QuotaSchema = z
  .strictObject({
    cpu: quantity('cpu').optional().describe('Total CPU limit of the namespace.'),
    memory: quantity('memory').optional().describe('Total memory limit of the namespace.'),
    storage: quantity('storage').optional().describe('Total requested persistent storage of the namespace.'),
    pods: z.int().min(1).max(1000).optional().describe('Maximum number of pods.'),
  })
  .describe('Quota overrides, each within the plan ceiling.');

export const PlacementSchema = z
  .strictObject({
    bridgeShard: z.string().regex(BRIDGE_SHARD_ID, { message: BRIDGE_SHARD_ID_MESSAGE }).describe('Bridge shard (platform.yaml regions.<region>.bridgeShards) holding the tenant\'s schema.'),
  })
  .describe('Where the platform placed the tenant: written once by onboarding, never changed by an edit (it would move the data). Bridge tenants only; unset: the default shard.');

export const TenantSchema = z
  .strictObject({
    id: z
      .uuid({ message: 'must be a UUID (it is immutable: it keys the Terraform state and billing)' })
      .refine((s) => !/^(?:0{8}-0{4}-0{4}-0{4}-0{12}|f{8}-f{4}-f{4}-f{4}-f{12})$/i.test(s), { message: 'must be a generated UUID, not the nil or max UUID' })
      .superRefine(noCdktfToken)
      // One spelling everywhere: the id keys the state file, so case must not start a new state.
      .transform((s) => s.toLowerCase())
      .describe('Immutable tenant id (UUID).'),
    slug: z
      .string()
      .regex(SLUG_PATTERN, {
        message: `must be 3-${SLUG_MAX_LENGTH} characters: lowercase letters and digits, single inner hyphens, starting with a letter`,
      })
      .refine((s) => !RESERVED_SLUGS.has(s), { message: 'is reserved by the platform' })
      .superRefine(noCdktfToken)
      .describe('Short name used in schema, role, namespace and resource names.'),
    company: z
      .string()
      .trim()
      .min(1, { message: 'must not be empty' })
      .max(200)
      // Control characters in a display name end up in emails, logs and invoices.
      .refine((s) => !/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(s), { message: 'must not contain control characters' })
      .describe('Company name as shown to people.'),
    adminEmail: z.email({ message: 'must be an email address' }).max(254).describe("Email of the tenant's first administrator."),
    plan: z.enum(PLANS).describe('Commercial plan; it sizes databases, quotas and replicas.'),
    model: z.enum(MODELS).describe('Data isolation model: silo (database), bridge (schema) or pool (rows with RLS).'),
    region: z.string().regex(REGION_PATTERN, { message: 'must be an AWS region such as "us-east-1"' }).describe('AWS region of the tenant.'),
    dataResidency: z.enum(RESIDENCIES).default('none').describe('Jurisdiction the data must stay in.'),
    compliance: ComplianceSchema.default({ hipaa: false, pci: false, soc2: true, gdpr: false }),
    domain: DomainSchema.default({}),
    workload: WorkloadSchema.default({}),
    quotas: QuotaSchema.default({}),
    status: z.enum(STATUSES).default('active').describe('Lifecycle status; offboarded tenants get no stack.'),
    placement: PlacementSchema.optional(),
    canary: z
      .boolean()
      .optional()
      .describe('Deploy this tenant first in every fleet rollout, in the canary wave (`tenancy fleet deploy`); an operator\'s mark, not part of the stack. Unset: false.'),
  })
  .describe('One tenant of the platform.');

/** A tenant after validation and defaulting. */
export type Tenant = z.output<typeof TenantSchema>;
/** A tenant as written in YAML. */
export type TenantInput = z.input<typeof TenantSchema>;

/** The JSON Schema for editors (`# yaml-language-server: $schema=...`). */
export function tenantJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(TenantSchema, {
      io: 'input',
      // The workload values are allowlists (a loose object refined key by key, for the messages):
      // to an editor, a key outside the allowlist is simply not allowed.
      override: (ctx) => {
        const additional = ctx.jsonSchema.additionalProperties;
        if (ctx.jsonSchema.type === 'object' && ctx.jsonSchema.properties && typeof additional === 'object' && Object.keys(additional).length === 0) ctx.jsonSchema.additionalProperties = false;
      },
    }),
    $id: 'https://github.com/cdktf-tenancy/tenant.schema.json',
    title: 'Tenant',
  };
}
