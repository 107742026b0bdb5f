// The compliance packs as the last line of defence of `synthesize` (and so `cdktf synth`): the
// sample registry passes with zero errors; a HIPAA tenant on the pool, a namespace without a quota
// or a widened NetworkPolicy each fails the whole synth with the rule id, stack and construct path
// of every finding, and leaves no cdktf.out. Where the registry or the constructs refuse a change
// first, an escape hatch makes it anyway, so that the rule itself is what fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from 'cdktf';
import { synthesize } from '../../lib/app/synthesize';
import { PolicyViolationError } from '../../lib/policy/policy-gate';
import { loadRegistry, type Registry } from '../../lib/registry/load-registry';
import { RegistryError } from '../../lib/registry/registry-error';
import type { Tenant } from '../../lib/registry/tenant-schema';
import * as buildStacksModule from '../../stacks/build-stacks';
import type { TenancyStacks } from '../../stacks/build-stacks';
import { FixtureProject, REPO_ROOT } from '../support/fixture-project';

let project: FixtureProject;
beforeEach(() => (project = FixtureProject.fromSample()));
afterEach(() => {
  jest.restoreAllMocks();
  project.remove();
});

/** Nothing was written: no cdktf.out, no staging directory. */
const nothingWritten = () => {
  expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
  expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
};

/** Runs synthesize and returns the policy error it throws. */
function policyFailure(options: Parameters<typeof synthesize>[0]): PolicyViolationError {
  try {
    synthesize(options);
  } catch (e) {
    if (e instanceof PolicyViolationError) return e;
    throw e;
  }
  throw new Error('synthesize did not fail');
}

/** Changes registry entries without the registry's checks (an entry from another source, or a bug in them). */
function withTenants(registry: Registry, change: Record<string, (t: Tenant) => Tenant>): Registry {
  return { ...registry, tenants: registry.tenants.map((t) => (change[t.slug] ? change[t.slug](t) : t)) };
}

/** Edits the stacks after they are built and before they synthesize (an escape hatch in the app). */
function editStacks(edit: (stacks: TenancyStacks) => void): void {
  const build = buildStacksModule.buildStacks;
  jest.spyOn(buildStacksModule, 'buildStacks').mockImplementation((app, registry, selection) => {
    const stacks = build(app as App, registry, selection);
    edit(stacks);
    return stacks;
  });
}
const tenantStackOf = (stacks: TenancyStacks, slug: string) => stacks.tenants.find((s) => s.tenant.slug === slug)!;

test('the sample registry synthesizes with zero policy errors or warnings; each regulated tenant passes its pack', () => {
  const { stacks, warnings } = synthesize({ root: project.root, select: '' });
  expect(warnings).toEqual([]);
  for (const stack of [...stacks.platform, ...stacks.tenants]) {
    const failed = stack.policy.results().filter((r) => r.status === 'fail' || r.status === 'warning');
    expect({ stack: stack.node.id, failed: failed.map((r) => r.rule.id) }).toEqual({ stack: stack.node.id, failed: [] });
  }
  const mediwell = tenantStackOf(stacks, 'mediwell').policy;
  expect(mediwell.results().filter((r) => r.rule.pack === 'hipaa').map((r) => r.status)).toEqual(['pass', 'pass', 'pass', 'pass']);
  expect(tenantStackOf(stacks, 'payflow').policy.results().filter((r) => r.rule.pack === 'pci').map((r) => r.status)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
  expect(tenantStackOf(stacks, 'berlin-analytics').policy.results().filter((r) => r.rule.pack === 'gdpr').map((r) => r.status)).toEqual(['pass', 'pass', 'pass']);
});

test('a HIPAA tenant on the pool: the registry refuses it, and when it gets past the registry the HIPAA rule fails the synth', () => {
  const mediwell = project.readTenant('mediwell');
  project.writeTenant({ ...mediwell, model: 'pool' });
  expect(() => synthesize({ root: project.root })).toThrow(RegistryError);
  nothingWritten();

  project.writeTenant(mediwell);
  const registry = withTenants(loadRegistry({ root: project.root }), { mediwell: (t) => ({ ...t, model: 'pool' }) });
  const error = policyFailure({ root: project.root, registry });
  expect(error.message).toMatch(/\[HIPAA-SILO-1\] tenant-mediwell\/pool: the tenant's data is placed on the pool/);
  expect(error.message).toMatch(/\[HIPAA-SILO-1\] tenant-mediwell: no dedicated database/);
  expect(new Set(error.findings.map((f) => f.ruleId))).toEqual(new Set(['HIPAA-SILO-1']));
  nothingWritten();
});

test('a namespace without a quota fails the synth with TENANCY-K8S-4', () => {
  // TenantNamespace always computes a quota; a values document with `quota: null` removes it (as Helm would).
  editStacks((stacks) => tenantStackOf(stacks, 'acme').namespace!.release.addOverride('values', [JSON.stringify({ quota: null })]));
  const error = policyFailure({ root: project.root });
  expect(error.findings).toEqual([
    expect.objectContaining({ ruleId: 'TENANCY-K8S-4', stack: 'tenant-acme', path: 'tenant-acme/namespace/release', message: expect.stringContaining('values.quota.hard is missing') }),
  ]);
  nothingWritten();
});

test('a NetworkPolicy widened to 0.0.0.0/1: the registry refuses it, and past the registry and the construct (an escape hatch) TENANCY-K8S-3 fails the synth', () => {
  const globex = project.readTenant('globex');
  project.writeTenant({ ...globex, workload: { ...(globex.workload as object), egress: [{ cidr: '0.0.0.0/1', ports: [443] }, { cidr: '128.0.0.0/1', ports: [443] }] } });
  expect(() => synthesize({ root: project.root })).toThrow(/workload\.egress\[0\]\.cidr: overlaps/);
  nothingWritten();

  project.writeTenant(globex);
  editStacks((stacks) => {
    const ns = tenantStackOf(stacks, 'globex').namespace!;
    const egress = [...(ns.values.egress as object[]), { cidr: '0.0.0.0/1', ports: [443] }, { cidr: '128.0.0.0/1', ports: [443] }];
    ns.release.addOverride('values', [JSON.stringify({ ...ns.values, egress })]);
  });
  const error = policyFailure({ root: project.root });
  expect(error.findings.map((f) => [f.ruleId, f.path])).toEqual([
    ['TENANCY-K8S-3', 'tenant-globex/namespace/release'],
    ['TENANCY-K8S-3', 'tenant-globex/namespace/release'],
  ]);
  expect(error.message).toContain('egress to 0.0.0.0/1 opens /1, wider than /16');
  nothingWritten();
});

test('default deny turned off by an override fails with TENANCY-K8S-2; every finding of every stack is listed', () => {
  editStacks((stacks) => {
    tenantStackOf(stacks, 'initech').namespace!.release.addOverride('values', [JSON.stringify({ networkPolicy: { defaultDeny: { ingress: false } } })]);
    tenantStackOf(stacks, 'tinyco').namespace!.release.addOverride('values', [JSON.stringify({ podSecurity: { enforce: 'baseline' } })]);
  });
  const error = policyFailure({ root: project.root });
  expect(error.message).toMatch(/^Policy check failed: 2 errors in 2 stacks/);
  expect(error.message).toContain('[TENANCY-K8S-2] tenant-initech/namespace/release: values.networkPolicy.defaultDeny does not deny ingress');
  expect(error.message).toContain('[TENANCY-K8S-6] tenant-tinyco/namespace/release: Pod Security enforce is "baseline", not "restricted"');
  nothingWritten();
});

test('`cdktf synth` (dist/main.js) exits non-zero, lists the finding and writes nothing', () => {
  const globex = project.readTenant('globex');
  // A public /8: nothing the registry reserves, but wider than the policy allows.
  project.writeTenant({ ...globex, workload: { egress: [{ cidr: '11.0.0.0/8', ports: [443] }] } });
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'main.js')], { cwd: project.root, encoding: 'utf8', env: { ...process.env, CHECKPOINT_DISABLE: '1' } });
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('Synthesis failed; nothing was written.');
  expect(run.stderr).toContain('[TENANCY-K8S-3] tenant-globex/namespace/release: egress to 11.0.0.0/8 opens /8, wider than /16');
  nothingWritten();
});
