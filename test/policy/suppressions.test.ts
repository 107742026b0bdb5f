// Suppressions: explicit, per rule and construct, with a mandatory reason; from the registry
// entry (compliance.suppressions) or on a construct (PolicySuppressions); kept, with the reason,
// for the compliance report.
import { PolicySuppressions } from '../../lib/policy/suppressions';
import { RegistryError } from '../../lib/registry/registry-error';
import { loadRegistry } from '../../lib/registry/load-registry';
import type { TenantStack } from '../../stacks/tenant-stack';
import { FixtureProject } from '../support/fixture-project';
import { overrideReleaseValues, sample, synth, tenantStack } from './fixtures';

const widen = (s: TenantStack) =>
  overrideReleaseValues(s, 'tenant-platform', (v) => void v.egress.push({ cidr: '100.64.0.0/10', ports: [443] }));
const REASON = 'carrier-grade NAT range of the partner VPN, ticket SEC-1234';

describe('a registry suppression', () => {
  const withSuppression = (path: string, rule = 'TENANCY-K8S-3') =>
    sample('globex', { compliance: { ...sample('globex').compliance, suppressions: [{ rule, path, reason: REASON }] } });

  test.each(['namespace', 'namespace/release', 'tenant-globex/namespace', '/namespace/release'])('at %s turns the finding off and keeps it with its reason', (path) => {
    const f = tenantStack(withSuppression(path), widen);
    expect(() => synth(f)).not.toThrow();
    expect(f.policy.result('TENANCY-K8S-3')!.status).toBe('suppressed');
    expect(f.policy.suppressed).toEqual([
      expect.objectContaining({ ruleId: 'TENANCY-K8S-3', path: 'tenant-globex/namespace/release', stack: 'tenant-globex', reason: REASON, source: 'registry', message: expect.stringContaining('100.64.0.0/10') }),
    ]);
    expect(f.policy.findings).toEqual([]);
  });

  test('covers only its rule and its construct: another rule, or another place, still fails', () => {
    expect(() => synth(tenantStack(withSuppression('namespace', 'TENANCY-K8S-2'), widen))).toThrow(/\[TENANCY-K8S-3\] tenant-globex\/namespace\/release/);
    expect(() => synth(tenantStack(withSuppression('app'), widen))).toThrow(/\[TENANCY-K8S-3\] tenant-globex\/namespace\/release/);
  });

  test('without a reason is refused by the policy aspect, and by the registry with file and line', () => {
    expect(() => tenantStack(sample('globex', { compliance: { ...sample('globex').compliance, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: 'because' }] } })))
      .toThrow(/suppressing TENANCY-K8S-3 needs a reason/);
    const project = FixtureProject.fromSample();
    try {
      const globex = project.readTenant('globex');
      project.writeTenant({ ...globex, compliance: { suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: '' }, { rule: 'not a rule', path: 'namespace', reason: REASON }] } });
      let error: unknown;
      try {
        loadRegistry({ root: project.root });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RegistryError);
      const message = (error as Error).message;
      expect(message).toMatch(/globex\.yaml:\d+:\d+: compliance\.suppressions\[0\]\.reason: must say why/);
      expect(message).toMatch(/globex\.yaml:\d+:\d+: compliance\.suppressions\[1\]\.rule: must be a policy rule id/);
    } finally {
      project.remove();
    }
  });

  test('in a registry file, loads and is applied by the tenant stack', () => {
    const project = FixtureProject.fromSample();
    try {
      const globex = project.readTenant('globex');
      project.writeTenant({ ...globex, compliance: { suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: REASON }] } });
      const loaded = loadRegistry({ root: project.root }).tenants.find((t) => t.slug === 'globex')!;
      expect(loaded.compliance).toEqual({ hipaa: false, pci: false, soc2: true, gdpr: false, suppressions: [{ rule: 'TENANCY-K8S-3', path: 'namespace', reason: REASON }] });
      const f = tenantStack(loaded, widen);
      expect(() => synth(f)).not.toThrow();
      expect(f.policy.suppressed.map((s) => s.ruleId)).toEqual(['TENANCY-K8S-3']);
    } finally {
      project.remove();
    }
  });
});

describe('a construct suppression', () => {
  test('covers the construct and what is below it, with its reason', () => {
    const f = tenantStack(sample('globex'), (s) => {
      widen(s);
      PolicySuppressions.add(s.namespace!, [{ rule: 'TENANCY-K8S-3', reason: REASON }]);
    });
    expect(() => synth(f)).not.toThrow();
    expect(f.policy.suppressed).toEqual([expect.objectContaining({ ruleId: 'TENANCY-K8S-3', path: 'tenant-globex/namespace/release', reason: REASON, source: 'construct' })]);
  });

  test('on another construct suppresses nothing', () => {
    const f = tenantStack(sample('globex'), (s) => {
      widen(s);
      PolicySuppressions.add(s.app!, [{ rule: 'TENANCY-K8S-3', reason: REASON }]);
    });
    expect(() => synth(f)).toThrow(/\[TENANCY-K8S-3\]/);
  });

  test('needs a rule id and a reason', () => {
    const f = tenantStack(sample('globex'));
    expect(() => PolicySuppressions.add(f.stack, [{ rule: 'TENANCY-K8S-3', reason: ' ' }])).toThrow(/needs a reason/);
    expect(() => PolicySuppressions.add(f.stack, [{ rule: 'k8s', reason: REASON }])).toThrow(/not a rule id/);
  });
});
