// Every policy rule, table-driven: a compliant fixture that synthesizes with the rule applied
// (and checked: "pass", not "not applicable") and a non-compliant one that fails the synth with
// the rule's id and the construct path (warnings: printed, not failing). Non-compliant fixtures
// are mostly the sample tenants with one escape hatch used (addOverride, a construct built by
// hand, a registry entry changed without the registry's checks): the rules are the last line of
// defence behind the registry and the constructs.
import { DbInstance } from '@cdktf/provider-aws/lib/db-instance';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { HelmProvider } from '@cdktf/provider-helm/lib/provider';
import { TerraformStack, Testing } from 'cdktf';
import { BridgeTenant } from '../../lib/bridge-tenant';
import { ALL_RULES, PACKS } from '../../lib/policy/packs';
import { PolicyAspect, STALE_SUPPRESSION_RULE_ID } from '../../lib/policy/policy-aspect';
import { PACK_NAMES, type PolicyRule } from '../../lib/policy/policy-rule';
import { NoPlaintextDbPasswordRule } from '../../lib/policy/rules/no-plaintext-db-password';
import { NoPublicDatabaseRule } from '../../lib/policy/rules/no-public-database';
import { TenantTagsRule } from '../../lib/policy/rules/tenant-tags';
import { SiloTenant } from '../../lib/silo-tenant';
import { tenantTags } from '../../lib/tenant-tags';
import { bareStack, find, overrideReleaseValues, sample, synth, tenantStack, type Fixture } from './fixtures';

const silo = (s: { tenancy: unknown }) => s.tenancy as SiloTenant;
const instance = (s: { tenancy: unknown }) => silo(s).database.instance;
const OTHER_KEY = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-0000000000aa';
const gdprPool = () => sample('acme', { dataResidency: 'us', compliance: { ...sample('acme').compliance, gdpr: true } });
const gdprSilo = () => sample('mediwell', { compliance: { ...sample('mediwell').compliance, gdpr: true } });

interface RuleCase {
  readonly id: string;
  /** What the non-compliant fixture does. */
  readonly breaks: string;
  readonly pass: () => Fixture;
  readonly fail: () => Fixture;
}

const cases: RuleCase[] = [
  // tenancy
  { id: 'TENANCY-TAG-1', breaks: 'the provider default_tags removed', pass: () => tenantStack(sample('globex')), fail: () => tenantStack(sample('globex'), (s) => s.aws.addOverride('default_tags', undefined)) },
  { id: 'TENANCY-TAG-1', breaks: "a resource's tags re-attribute it", pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => silo(s).database.key.addOverride('tags', { 'tenancy:tenant-id': '00000000-0000-4000-8000-000000000999' })) },
  { id: 'TENANCY-TAG-2', breaks: "the platform release labels another tenant's id", pass: () => tenantStack(sample('globex')), fail: () => tenantStack(sample('globex'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.tenant.id = '00000000-0000-4000-8000-000000000999'))) },
  { id: 'TENANCY-SECRET-1', breaks: 'a master password in the configuration', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => instance(s).addOverride('password', 'hunter2hunter2')) },
  { id: 'TENANCY-SECRET-2', breaks: 'a literal credentials secret value', pass: () => tenantStack(sample('globex')), fail: () => tenantStack(sample('globex'), (s) => (s.tenancy as BridgeTenant).credentials.value.addOverride('secret_string', '{"username":"tenant_globex_app","password":"hunter2hunter2"}')) },
  { id: 'TENANCY-SECRET-2', breaks: 'a password in Helm values', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => overrideReleaseValues(s, 'tenant-app', (v) => void (v.extraEnv = [{ name: 'DB_URL', value: 'postgres://app:hunter2hunter2@db.internal:5432/app' }]))) },
  { id: 'TENANCY-RDS-1', breaks: 'a public database', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => instance(s).addOverride('publicly_accessible', true)) },
  { id: 'TENANCY-K8S-1', breaks: 'Helm deploys without a platform release', pass: () => tenantStack(sample('globex')), fail: () => bareStack(sample('globex'), (s) => new HelmProvider(s, 'helm', {})) },
  { id: 'TENANCY-K8S-2', breaks: 'default deny lets egress through', pass: () => tenantStack(sample('globex')), fail: () => tenantStack(sample('globex'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.networkPolicy.defaultDeny.egress = false))) },
  { id: 'TENANCY-K8S-3', breaks: 'egress to 0.0.0.0/0', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void v.egress.push({ cidr: '0.0.0.0/0', ports: [443] }))) },
  { id: 'TENANCY-K8S-3', breaks: 'ingress from a tenant namespace', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.ingressControllerNamespace = 'tenant-globex'))) },
  { id: 'TENANCY-K8S-4', breaks: 'no quota', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void delete v.quota)) },
  { id: 'TENANCY-K8S-4', breaks: 'NodePort services allowed', pass: () => tenantStack(sample('tinyco')), fail: () => tenantStack(sample('tinyco'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.quota.hard['services.nodeports'] = '5'))) },
  { id: 'TENANCY-K8S-5', breaks: 'no maximum per container', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void delete v.limits.max)) },
  { id: 'TENANCY-K8S-6', breaks: 'Pod Security privileged', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.podSecurity.enforce = 'privileged'))) },
  { id: 'TENANCY-K8S-7', breaks: 'the tenant role may delete NetworkPolicies', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void v.rbac.rules.push({ apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['delete'] }))) },
  { id: 'TENANCY-K8S-7', breaks: 'a wildcard on nodes', pass: () => tenantStack(sample('acme')), fail: () => tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void v.rbac.rules.push({ apiGroups: [''], resources: ['nodes'], verbs: ['*'] }))) },
  {
    id: STALE_SUPPRESSION_RULE_ID,
    breaks: 'a suppression that matches nothing',
    pass: () => tenantStack(sample('globex', { compliance: { ...sample('globex').compliance, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: 'partner range SEC-1, reviewed quarterly' }] } }), (s) =>
      overrideReleaseValues(s, 'tenant-platform', (v) => void v.egress.push({ cidr: '100.64.0.0/10', ports: [443] }))),
    fail: () => tenantStack(sample('globex', { compliance: { ...sample('globex').compliance, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: 'partner range SEC-1, reviewed quarterly' }] } })),
  },
  // soc2
  { id: 'SOC2-RDS-1', breaks: 'no deletion protection', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => instance(s).addOverride('deletion_protection', false)) },
  { id: 'SOC2-RDS-2', breaks: '7 days of backups on enterprise (35)', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => instance(s).addOverride('backup_retention_period', 7)) },
  { id: 'SOC2-RDS-3', breaks: 'a key without rotation', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => silo(s).database.key.addOverride('enable_key_rotation', false)) },
  {
    id: 'SOC2-RDS-4',
    breaks: 'the parameter group does not force SSL',
    pass: () => tenantStack(sample('initech')),
    fail: () => tenantStack(sample('initech'), (s) => find(s, DbParameterGroup)[0].addOverride('parameter.0.value', '0')),
  },
  { id: 'SOC2-RDS-4', breaks: 'a bridge workload without TLS', pass: () => tenantStack(sample('globex')), fail: () => tenantStack(sample('globex'), (s) => overrideReleaseValues(s, 'tenant-app', (v) => void (v.database.sslmode = 'disable'))) },
  { id: 'SOC2-RDS-4', breaks: 'PgBouncer to RDS without TLS', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.pgbouncer.ini = String(v.pgbouncer.ini).replace(/server_tls_sslmode = \S+/, 'server_tls_sslmode = prefer')))) },
  { id: 'SOC2-LOG-1', breaks: 'the postgresql log is not exported', pass: () => tenantStack(sample('initech')), fail: () => tenantStack(sample('initech'), (s) => instance(s).addOverride('enabled_cloudwatch_logs_exports', undefined)) },
  // hipaa
  { id: 'HIPAA-SILO-1', breaks: 'the HIPAA tenant on the pool', pass: () => tenantStack(sample('mediwell')), fail: () => tenantStack(sample('mediwell', { model: 'pool' })) },
  { id: 'HIPAA-RDS-1', breaks: "storage encrypted with a key outside the tenant's stack", pass: () => tenantStack(sample('mediwell')), fail: () => tenantStack(sample('mediwell'), (s) => instance(s).addOverride('kms_key_id', OTHER_KEY)) },
  { id: 'HIPAA-RDS-2', breaks: '14 days of backups', pass: () => tenantStack(sample('mediwell')), fail: () => tenantStack(sample('mediwell'), (s) => instance(s).addOverride('backup_retention_period', 14)) },
  { id: 'HIPAA-K8S-1', breaks: 'egress to a partner on 443', pass: () => tenantStack(sample('mediwell')), fail: () => tenantStack(sample('mediwell'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void v.egress.push({ cidr: '203.0.113.0/24', ports: [443] }))) },
  // pci
  { id: 'PCI-SILO-1', breaks: 'the PCI tenant on bridge', pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow', { model: 'bridge' })) },
  { id: 'PCI-RDS-1', breaks: "Performance Insights encrypted with another key", pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow'), (s) => instance(s).addOverride('performance_insights_kms_key_id', OTHER_KEY)) },
  { id: 'PCI-RDS-2', breaks: 'deletion protection off', pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow'), (s) => instance(s).addOverride('deletion_protection', false)) },
  { id: 'PCI-K8S-1', breaks: 'the workload may run on shared nodes', pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow'), (s) => overrideReleaseValues(s, 'tenant-app', (v) => Object.assign(v, { affinity: {}, tolerations: [] }))) },
  { id: 'PCI-K8S-1', breaks: 'PgBouncer may run on shared nodes', pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.placement = { affinity: {}, tolerations: [] }))) },
  { id: 'PCI-K8S-2', breaks: 'egress to the database subnets on SSH too', pass: () => tenantStack(sample('payflow')), fail: () => tenantStack(sample('payflow'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.egress[0].ports = [5432, 22]))) },
  // gdpr
  {
    id: 'GDPR-RES-1',
    breaks: 'a second AWS provider in us-east-1',
    pass: () => tenantStack(sample('berlin-analytics')),
    fail: () => tenantStack(sample('berlin-analytics'), (s) => new AwsProvider(s, 'aws-us', { alias: 'us', region: 'us-east-1', defaultTags: [{ tags: tenantTags(s.tenant) }] })),
  },
  { id: 'GDPR-RES-1', breaks: 'no residency declared', pass: () => tenantStack(sample('berlin-analytics')), fail: () => tenantStack(sample('berlin-analytics', { dataResidency: 'none' })) },
  { id: 'GDPR-ERASE-1', breaks: 'nothing says where the data is', pass: () => tenantStack(sample('berlin-analytics')), fail: () => bareStack(sample('berlin-analytics'), () => undefined) },
  { id: 'GDPR-ERASE-1', breaks: "silo credentials under another key", pass: () => tenantStack(gdprSilo()), fail: () => tenantStack(gdprSilo(), (s) => silo(s).appCredentials.addOverride('kms_key_id', OTHER_KEY)) },
  { id: 'GDPR-ERASE-2', breaks: 'a GDPR tenant on the pool (warning)', pass: () => tenantStack(sample('berlin-analytics')), fail: () => tenantStack(gdprPool()) },
];

const ruleById = new Map(ALL_RULES.map((r) => [r.id, r]));

test('every rule of every pack has a case, and every case names a rule', () => {
  expect([...new Set(cases.map((c) => c.id))].sort()).toEqual(ALL_RULES.map((r) => r.id).sort());
});

describe.each(cases)('$id: $breaks', ({ id, pass, fail }) => {
  const rule = ruleById.get(id)!;

  test('the compliant fixture synthesizes, with the rule checked and passed', () => {
    const f = pass();
    expect(() => synth(f)).not.toThrow();
    expect(f.policy.result(id)).toMatchObject({ status: 'pass', findings: [] });
    expect(f.policy.result(id)!.checked).toBeGreaterThan(0);
  });

  if (rule.level === 'error') {
    test('the non-compliant fixture fails the synth with the rule id and the construct path', () => {
      const f = fail();
      expect(() => synth(f)).toThrow(new RegExp(`\\[${id}\\] ${f.stack.node.id}(/[^:]*)?: `));
      expect(f.policy.result(id)!.status).toBe('fail');
    });
  } else {
    test('the non-compliant fixture synthesizes with a warning of the rule', () => {
      const f = fail();
      expect(() => synth(f)).not.toThrow();
      expect(f.policy.warnings().map((w) => w.ruleId)).toContain(id);
      expect(f.policy.result(id)!.status).toBe('warning');
    });
  }
});

describe.each(ALL_RULES.map((r) => [r.id, r] as [string, PolicyRule]))('%s', (_id, rule) => {
  test('has a pack, a level, a one-line explanation and a requirement in the reference', () => {
    expect(rule.id).toMatch(/^[A-Z0-9]+(-[A-Z0-9]+)+$/);
    expect(PACK_NAMES).toContain(rule.pack);
    expect(rule.id.startsWith(`${rule.pack === 'soc2' ? 'SOC2' : rule.pack!.toUpperCase()}-`)).toBe(true);
    expect(rule.explanation.length).toBeGreaterThan(40);
    expect(rule.explanation).not.toContain('\n');
    expect(rule.requirement?.anchor).toMatch(/^[a-z0-9-]+$/);
    expect(PACKS[rule.pack!].rules).toContain(rule);
  });
});

// The rules as they were first written, on stacks built from raw resources: the ids and exports still work.
describe('the original rules on raw resources', () => {
  type Raw = (s: TerraformStack) => void;
  const db = (extra: Record<string, unknown>): Raw => (s) =>
    new DbInstance(s, 'db', { instanceClass: 'db.t3.micro', engine: 'postgres', publiclyAccessible: false, manageMasterUserPassword: true, ...extra });
  const raw: [PolicyRule, Raw, Raw][] = [
    [TenantTagsRule, () => undefined, (s) => new AwsProvider(s, 'aws-untagged', { region: 'us-east-1', alias: 'untagged', defaultTags: [{ tags: { team: 'x' } }] })],
    [NoPlaintextDbPasswordRule, db({}), db({ manageMasterUserPassword: undefined, password: 'hunter2hunter2' })],
    [NoPlaintextDbPasswordRule, (s) => new RdsCluster(s, 'c', { engine: 'aurora-postgresql', manageMasterUserPassword: true }), (s) => new RdsCluster(s, 'c', { engine: 'aurora-postgresql', masterPassword: 'hunter2hunter2' })],
    [NoPublicDatabaseRule, db({}), db({ publiclyAccessible: true })],
    [NoPublicDatabaseRule, (s) => new RdsClusterInstance(s, 'i', { clusterIdentifier: 'c', instanceClass: 'db.r6g.large', engine: 'aurora-postgresql', publiclyAccessible: false }), (s) => new RdsClusterInstance(s, 'i', { clusterIdentifier: 'c', instanceClass: 'db.r6g.large', engine: 'aurora-postgresql' })],
  ];
  const run = (rule: PolicyRule, fixture: Raw) => {
    const stack = new TerraformStack(Testing.app(), 'policy');
    new AwsProvider(stack, 'aws', { region: 'us-east-1', defaultTags: [{ tags: tenantTags(sample('acme')) }] });
    fixture(stack);
    PolicyAspect.applyTo(stack, [rule]);
    return stack;
  };
  test.each(raw)('%#: compliant passes, non-compliant fails with [id] policy/…', (rule, pass, failing) => {
    expect(() => Testing.synth(run(rule, pass), true)).not.toThrow();
    expect(() => Testing.synth(run(rule, failing), true)).toThrow(new RegExp(`\\[${rule.id}\\] policy/`));
  });
});
