import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TENANT_PLATFORM_CHART_VERSION } from '../../lib/kubernetes/tenant-namespace';
import { PLATFORM_CHART_DIR } from '../kubernetes/platform-release';
import {
  dynamicValueLookups, loadChartYaml, loadTemplates, missingValueRefs, misspellingMutants, namedTemplates, unusedValues,
} from './chart-values';

// Static checks of charts/tenant-platform (no helm binary here). What it renders for each sample
// tenant is tested in test/kubernetes.
describe('charts/tenant-platform', () => {
  test('Chart.yaml: apiVersion v2, tenant-platform, the version the constructs compute values for', () => {
    expect(loadChartYaml(PLATFORM_CHART_DIR)).toMatchObject({ apiVersion: 'v2', name: 'tenant-platform', type: 'application', version: TENANT_PLATFORM_CHART_VERSION });
  });

  test('every template is present', () => {
    for (const f of ['_helpers.tpl', 'namespace.yaml', 'networkpolicies.yaml', 'quota.yaml', 'rbac.yaml', 'secret-sync.yaml', 'pgbouncer.yaml', 'post-apply-job.yaml']) {
      expect(existsSync(join(PLATFORM_CHART_DIR, 'templates', f))).toBe(true);
    }
  });

  test('no template creates a cluster-scoped RBAC object or a Service that leaves the cluster', () => {
    for (const [file, text] of loadTemplates(PLATFORM_CHART_DIR)) {
      expect({ file, clusterRbac: /kind:\s*Cluster(Role|RoleBinding)\b/.test(text) }).toEqual({ file, clusterRbac: false });
      expect({ file, exposed: /type:\s*(LoadBalancer|NodePort)\b/.test(text) }).toEqual({ file, exposed: false });
    }
  });

  test('every .Values reference exists, every value is read, lookups are by path, included templates are defined', () => {
    expect(missingValueRefs(PLATFORM_CHART_DIR)).toEqual([]);
    expect(unusedValues(PLATFORM_CHART_DIR)).toEqual([]);
    expect(dynamicValueLookups(PLATFORM_CHART_DIR)).toEqual([]);
    const { defined, used } = namedTemplates(PLATFORM_CHART_DIR);
    expect([...used].filter((n) => !defined.has(n))).toEqual([]);
  });

  test('misspelling any one reference fails the check', () => {
    const { mutants, missed } = misspellingMutants(PLATFORM_CHART_DIR);
    expect(missed).toEqual([]);
    expect(mutants).toBeGreaterThan(20);
  });
});
