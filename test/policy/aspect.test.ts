// The policy aspect itself: what the rules read is what synthesis writes (computed once), a rule
// that throws is a finding rather than a crash, a second synth adds nothing, and platform stacks
// pass the tenancy and soc2 packs.
import { App, TerraformStack, Testing } from 'cdktf';
import { PolicyAspect } from '../../lib/policy/policy-aspect';
import { PolicyGate, PolicyViolationError } from '../../lib/policy/policy-gate';
import type { PolicyRule } from '../../lib/policy/policy-rule';
import { PlatformStack } from '../../stacks/platform-stack';
import { TenantStack } from '../../stacks/tenant-stack';
import { overrideReleaseValues, registry, sample, tenantStack } from './fixtures';

afterEach(() => jest.restoreAllMocks());

test('the rules read the configuration synthesis writes, resolved once for both', () => {
  const f = tenantStack(sample('initech'));
  const spy = jest.spyOn(TerraformStack.prototype, 'toTerraform');
  const synthesized = JSON.parse(Testing.synth(f.stack, true));
  expect(spy).toHaveBeenCalledTimes(1);
  spy.mockRestore();
  // Afterwards the stack computes afresh, and to the same configuration.
  expect(JSON.parse(Testing.synth(f.stack))).toEqual(synthesized);
  expect(f.policy.result('SOC2-RDS-2')).toMatchObject({ status: 'pass', checked: 1 });
});

test('a synth stopped by a policy error leaves no stale configuration behind', () => {
  const f = tenantStack(sample('acme'), (s) => overrideReleaseValues(s, 'tenant-platform', (v) => void (v.podSecurity.enforce = 'baseline')));
  expect(() => Testing.synth(f.stack, true)).toThrow(/\[TENANCY-K8S-6\]/);
  (f.stack as TenantStack).namespace!.release.values = ['{"changed":true}'];
  expect(JSON.parse(Testing.synth(f.stack)).resource.helm_release.namespace_release_41C7013E.values).toEqual(['{"changed":true}']);
});

test('a rule that throws becomes a finding of that rule instead of a crash', () => {
  const broken: PolicyRule = { id: 'TEST-BROKEN-1', explanation: 'a rule whose check throws, to see it reported', level: 'error', check: () => { throw new Error('boom'); } };
  const stack = new TerraformStack(Testing.app(), 'tenant-x');
  const aspect = PolicyAspect.applyTo(stack, [broken]);
  expect(() => Testing.synth(stack, true)).toThrow(/\[TEST-BROKEN-1\] tenant-x: the check could not run: boom/);
  expect(aspect.result('TEST-BROKEN-1')!.status).toBe('fail');
});

test('a second synth of the same stack adds no finding', () => {
  const f = tenantStack(sample('acme', { compliance: { ...sample('acme').compliance, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: 'nothing to suppress here, on purpose' }] } }));
  Testing.synth(f.stack, true);
  const first = f.policy.results().map((r) => [r.rule.id, r.status, r.checked]);
  Testing.synth(f.stack, true);
  expect(f.policy.results().map((r) => [r.rule.id, r.status, r.checked])).toEqual(first);
  expect(f.policy.findings.map((x) => x.ruleId)).toEqual(['TENANCY-SUPPRESS-1']);
});

test('a suppression of a rule the stack does not run is reported as stale', () => {
  const f = tenantStack(sample('acme', { compliance: { ...sample('acme').compliance, suppressions: [{ rule: 'HIPAA-SILO-1', path: 'pool', reason: 'acme is not a HIPAA tenant at all' }] } }));
  Testing.synth(f.stack, true);
  expect(f.policy.warnings()).toEqual([expect.objectContaining({ ruleId: 'TENANCY-SUPPRESS-1', path: 'tenant-acme/pool', message: expect.stringContaining('no rule HIPAA-SILO-1 applies to this stack') })]);
});

test('platform stacks pass the tenancy and soc2 packs; their databases are checked', () => {
  const stack = new PlatformStack(Testing.app(), { platform: registry.platform, region: 'us-east-1' });
  expect(() => Testing.synth(stack, true)).not.toThrow();
  const checked = Object.fromEntries(stack.policy.results().map((r) => [r.rule.id, r.status]));
  expect(checked).toMatchObject({ 'TENANCY-RDS-1': 'pass', 'TENANCY-SECRET-1': 'pass', 'SOC2-RDS-1': 'pass', 'SOC2-RDS-2': 'pass', 'SOC2-RDS-3': 'pass', 'SOC2-RDS-4': 'pass', 'SOC2-LOG-1': 'pass', 'TENANCY-TAG-1': 'not-applicable' });
});

test('under a PolicyGate, the app fails once with the errors of every stack', () => {
  const app = new App({ outdir: Testing.app().outdir });
  PolicyGate.attach(app);
  const a = new TenantStack(app, { tenant: sample('acme'), platform: registry.platform });
  const b = new TenantStack(app, { tenant: sample('globex'), platform: registry.platform });
  for (const s of [a, b]) overrideReleaseValues(s, 'tenant-platform', (v) => void (v.podSecurity.warn = 'privileged'));
  let error: unknown;
  try {
    app.synth();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(PolicyViolationError);
  expect((error as PolicyViolationError).findings.map((f) => f.stack)).toEqual(['tenant-acme', 'tenant-globex']);
});
