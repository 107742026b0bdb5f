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
