import { CONTRACT_PATHS, assertPathsExist, loadChartValues, pathProblems, valuePathsOf, valueRefsOf } from './chart-values';

describe('valuePathsOf', () => {
  test('lists intermediate mappings and leaves; lists and scalars are leaves', () => {
    expect(valuePathsOf({ a: { b: 1, c: { d: 'x' } }, e: [{ f: 1 }], g: {} })).toEqual(['a', 'a.b', 'a.c', 'a.c.d', 'e', 'g']);
  });

  test('on the chart values', () => {
    const paths = valuePathsOf(loadChartValues());
    expect(paths).toEqual(expect.arrayContaining([...CONTRACT_PATHS]));
    expect(paths).toContain('podSecurityContext.seccompProfile.type');
  });
});

describe('assertPathsExist', () => {
  const chart = loadChartValues();

  test('accepts values the chart has, including null (which deletes a default)', () => {
    expect(() => assertPathsExist({ tenant: { id: 'x' }, database: { schema: 'tenant_acme', port: 6432 }, ingress: { className: null } }, chart)).not.toThrow();
  });

  test('names every misspelt path', () => {
    expect(() => assertPathsExist({ tenant: { slgu: 'acme' }, databse: { host: 'h' }, ingress: { tls: { secretName: 'x' } } }, chart)).toThrow(
      'values that the chart does not have:\n  tenant.slgu: no such value in the chart\'s values.yaml\n  databse.host: no such value in the chart\'s values.yaml\n  ingress.tls.secretName: no such value in the chart\'s values.yaml',
    );
  });

  test('a mapping where the chart has a scalar, and the reverse', () => {
    expect(pathProblems({ image: { tag: { name: 'x' } } }, chart)).toEqual(['image.tag.name: image.tag is not a mapping in the chart\'s values.yaml (it is string "")']);
    expect(pathProblems({ resources: '500m' }, chart)).toEqual(['resources: the chart\'s values.yaml has a mapping here, not string "500m"']);
    expect(pathProblems({ tolerations: { key: 'x' } }, chart)).toEqual(['tolerations.key: tolerations is not a mapping in the chart\'s values.yaml (it is a list)']);
    expect(pathProblems({ extraEnv: 'A=b' }, chart)).toEqual(['extraEnv: the chart\'s values.yaml has a list here, not string "A=b"']);
  });

  test('keys under free-form mappings (empty in values.yaml) are accepted; the set can be given', () => {
    const values = { nodeSelector: { 'kubernetes.io/os': 'linux' }, podAnnotations: { a: 'b' }, affinity: { nodeAffinity: {} } };
    expect(pathProblems(values, chart)).toEqual([]);
    expect(pathProblems(values, chart, { freeForm: ['nodeSelector'] })).toEqual([
      'podAnnotations.a: no such value in the chart\'s values.yaml',
      'affinity.nodeAffinity: no such value in the chart\'s values.yaml',
    ]);
  });

  test('list values are not walked into', () => {
    expect(pathProblems({ extraEnv: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }, chart)).toEqual([]);
  });
});

describe('valueRefsOf', () => {
  test('finds .Values and $.Values references with their lines, not those in comments', () => {
    const text = '{{/* .Values.in.comment */}}\nimage: {{ .Values.image.repository }}\n{{- range .Values.ingress.extraHosts }}{{ $.Values.ingress.path }}{{ end }}';
    expect(valueRefsOf(text, 't.yaml')).toEqual([
      { file: 't.yaml', line: 2, path: 'image.repository' },
      { file: 't.yaml', line: 3, path: 'ingress.extraHosts' },
      { file: 't.yaml', line: 3, path: 'ingress.path' },
    ]);
  });
});
