import { TemplateError, goFloat, mergeValues, renderChart } from './render';

/** Renders one template (as templates/t.txt, with `helpers` as _helpers.tpl); `values` are .Values.t. */
function run(template: string, values: Record<string, unknown> = {}, strict = true, helpers = ''): string {
  const templates = new Map([['_helpers.tpl', helpers], ['t.txt', template]]);
  return renderChart({ t: values }, { templates, strict }).files['t.txt'] ?? '';
}

describe('the test renderer follows text/template and Helm', () => {
  test('trim markers remove all whitespace on their side, newlines included', () => {
    expect(run('a  \n {{- "b" -}} \n  c')).toBe('abc');
    expect(run('a {{ "b" }} c')).toBe('a b c');
    expect(run('{{- /* a comment */ -}}\n  x')).toBe('x');
    expect(run('{{-3}}')).toBe('-3');
  });

  test('if / else if / else, with / else, range with variables, over lists and sorted maps', () => {
    const t = '{{ if .Values.t.a }}A{{ else if .Values.t.b }}B{{ else }}C{{ end }}';
    expect(run(t, { a: 1, b: 1 })).toBe('A');
    expect(run(t, { a: 0, b: 'x' })).toBe('B');
    expect(run(t, { a: '', b: [] })).toBe('C');
    expect(run('{{ with .Values.t.m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } })).toBe('v');
    expect(run('{{ with .Values.t.m }}{{ .k }}{{ else }}none{{ end }}', { m: {} })).toBe('none');
    expect(run('{{ range $i, $v := .Values.t.l }}{{ $i }}={{ $v }}{{ $.Values.t.s }};{{ end }}', { l: ['a', 'b'], s: '!' })).toBe('0=a!;1=b!;');
    expect(run('{{ range $k, $v := .Values.t.m }}{{ $k }}{{ $v }}{{ end }}', { m: { b: 2, a: 1 } })).toBe('a1b2');
    expect(run('{{ range .Values.t.l }}x{{ else }}empty{{ end }}', { l: [] })).toBe('empty');
    expect(run('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}')).toBe('2');
  });

  test('pipelines pass the value as the last argument; parentheses; include of a define', () => {
    expect(run('{{ .Values.t.s | default "d" | quote }}', { s: '' })).toBe('"d"');
    expect(run('{{ default "d" .Values.t.s }}', { s: 'v' })).toBe('v');
    expect(run('{{ (printf "%s-%s" "a" "b") | upper }}')).toBe('A-B');
    expect(run('{{ include "x" .Values.t | nindent 2 }}', { n: 'v' }, true, '{{- define "x" -}}\nn: {{ .n }}\n{{- end }}')).toBe('\n  n: v');
    expect(run('{{ "abcdef-" | trunc 7 | trimSuffix "-" }}')).toBe('abcdef');
    expect(run('{{ contains "app" "tenant-app" }} {{ not "" }} {{ and 1 0 }} {{ or 0 "x" }} {{ eq "a" "b" "a" }}')).toBe('true true 0 x true');
  });

  test('toYaml sorts keys and does not indent lists, without a final newline; nindent', () => {
    expect(run('k:{{ toYaml .Values.t.m | nindent 2 }}', { m: { b: [1, 'on'], a: { c: true } } })).toBe('k:\n  a:\n    c: true\n  b:\n  - 1\n  - "on"');
    expect(run('{{ toYaml .Values.t.m }}', { m: {} })).toBe('{}');
  });

  test('numbers print as Go prints a float64', () => {
    expect([5432, 0.5, 1e6, 1234567, 123456, 1e-5, 0.0001, -2].map(goFloat)).toEqual(['5432', '0.5', '1e+06', '1.234567e+06', '123456', '1e-05', '0.0001', '-2']);
    expect(run('{{ .Values.t.n }} {{ .Values.t.n | quote }}', { n: 1000000 })).toBe('1e+06 "1e+06"');
  });

  test('required fails on nil and "", not on false or 0', () => {
    expect(() => run('{{ required "need s" .Values.t.s }}', { s: '' })).toThrow(/need s/);
    expect(run('{{ required "need b" .Values.t.b }}{{ required "need n" .Values.t.n }}', { b: false, n: 0 })).toBe('false0');
  });

  test('strict: a missing key is an error; not strict: it prints as nothing; a nil map is always an error', () => {
    expect(() => run('{{ .Values.t.nope }}', {})).toThrow(/t\.txt:1: map has no entry for key "nope"/);
    expect(run('[{{ .Values.t.nope }}]', {}, false)).toBe('[]');
    expect(() => run('{{ .Values.t.nope.deeper }}', {}, false)).toThrow(/nil pointer evaluating interface \{\}\.deeper/);
    expect(() => run('{{ .Chart.Nope }}')).toThrow(/can't evaluate field Nope/);
  });

  test('unknown functions and unbalanced blocks fail loudly', () => {
    expect(() => run('{{ b64enc "x" }}')).toThrow(/function "b64enc" not defined/);
    expect(run('{{ "abc" | sha256sum }}')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(() => run('{{ if true }}x')).toThrow(TemplateError);
    expect(() => run('x{{ end }}')).toThrow(/unexpected \{\{end\}\}/);
  });

  test('values: mappings merge, lists and scalars replace, null deletes', () => {
    expect(mergeValues({ a: { b: 1, c: 2 }, l: [1, 2], d: 'x' }, { a: { c: 3 }, l: [9], d: null })).toEqual({ a: { b: 1, c: 3 }, l: [9] });
  });

  test('a rendered YAML document that does not parse is an error', () => {
    const templates = new Map([['bad.yaml', 'apiVersion: v1\nkind: ConfigMap\ndata:\n  a: 1\n   b: 2\n']]);
    expect(() => renderChart({}, { templates })).toThrow(/does not parse/);
    const dup = new Map([['dup.yaml', 'apiVersion: v1\nkind: ConfigMap\nkind: Secret\n']]);
    expect(() => renderChart({}, { templates: dup })).toThrow(/does not parse/);
  });
});
