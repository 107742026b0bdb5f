import { loadRegistry } from '../../lib/registry/load-registry';
import { RegistryError } from '../../lib/registry/registry-error';
import { FixtureProject, validTenant } from '../support/fixture-project';

describe('workload.values', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.empty()));
  afterEach(() => project.remove());

  test.each(['tenant', 'database', 'serviceAccount', 'securityContext', 'podSecurityContext', 'affinity', 'tolerations', 'nodeSelector'])(
    'may not set %s, which the platform enforces',
    (key) => {
      project.writeTenant(validTenant({ slug: 'acme', workload: { values: { [key]: { x: 1 }, replicaCount: 2 } } }));
      let error: RegistryError | undefined;
      try {
        loadRegistry({ root: project.root });
      } catch (e) {
        error = e as RegistryError;
      }
      expect(error).toBeInstanceOf(RegistryError);
      expect(error!.problems).toEqual([
        expect.objectContaining({ file: 'tenants/acme.yaml', path: `workload.values.${key}`, message: expect.stringMatching(/set by the platform/), line: expect.any(Number) }),
      ]);
    },
  );

  test('other chart values are the tenant\'s to set', () => {
    project.writeTenant(validTenant({ slug: 'acme', workload: { values: { replicaCount: 2, extraEnv: [{ name: 'A', value: 'b' }] } } }));
    expect(loadRegistry({ root: project.root }).tenants[0].workload.values).toEqual({ replicaCount: 2, extraEnv: [{ name: 'A', value: 'b' }] });
  });
});

describe('tenants/<slug>.values.yaml', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.empty()));
  afterEach(() => project.remove());

  test('is merged under the inline workload.values (inline wins, maps merge)', () => {
    project.writeTenant(validTenant({ slug: 'acme', workload: { values: { autoscaling: { maxReplicas: 12 } } } }));
    project.writeTenantFile('acme.values.yaml', 'autoscaling:\n  maxReplicas: 9\n  targetCPUUtilizationPercentage: 60\nextraEnv: [{ name: A, value: b }]\n');
    expect(loadRegistry({ root: project.root }).tenants[0].workload.values).toEqual({
      autoscaling: { maxReplicas: 12, targetCPUUtilizationPercentage: 60 },
      extraEnv: [{ name: 'A', value: 'b' }],
    });
  });

  test.each([
    ['an enforced key', 'acme.values.yaml', 'replicaCount: 2\ntenant:\n  id: x\n', /tenants\/acme\.values\.yaml:2:1: tenant: is set by the platform/],
    ['a values file of no tenant', 'ghost.values.yaml', 'replicaCount: 2\n', /tenants\/ghost\.values\.yaml: values file of an unknown tenant/],
    ['a values file that is not a mapping', 'acme.values.yaml', '- a\n- b\n', /tenants\/acme\.values\.yaml: must be a YAML mapping/],
    ['a values file with duplicate keys', 'acme.values.yaml', 'a: 1\na: 2\n', /tenants\/acme\.values\.yaml:2:1: invalid YAML/],
  ])('rejects %s', (_n, file, text, message) => {
    project.writeTenant(validTenant({ slug: 'acme' }));
    project.writeTenantFile(file, text);
    expect(() => loadRegistry({ root: project.root })).toThrow(message);
  });
});

describe('workload.egress', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.empty()));
  afterEach(() => project.remove());

  test.each<[string, Record<string, unknown>, RegExp]>([
    ['the whole internet', { model: 'silo', workload: { egress: [{ cidr: '0.0.0.0/0', ports: [443] }] } }, /workload\.egress\[0\]\.cidr: must not be the whole internet/],
    ['a malformed CIDR', { workload: { egress: [{ cidr: '10.0.0.0', ports: [443] }] } }, /workload\.egress\[0\]\.cidr: must be an IPv4 CIDR/],
    ['no ports', { workload: { egress: [{ cidr: '192.0.2.0/24', ports: [] }] } }, /workload\.egress\[0\]\.ports/],
    ['a port out of range', { workload: { egress: [{ cidr: '192.0.2.0/24', ports: [70000] }] } }, /workload\.egress\[0\]\.ports\[0\]/],
    ['extra egress for a HIPAA tenant', { model: 'silo', compliance: { hipaa: true }, dataResidency: 'us', workload: { egress: [{ cidr: '192.0.2.0/24', ports: [443] }] } }, /workload\.egress: HIPAA and PCI tenants may reach only their database and DNS/],
  ])('rejects %s', (_n, fields, message) => {
    project.writeTenant(validTenant({ slug: 'acme', ...fields }));
    expect(() => loadRegistry({ root: project.root })).toThrow(message);
  });
});
