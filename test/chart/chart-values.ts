import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

/**
 * Static checks of the Helm charts: every `.Values` reference in a template exists in values.yaml
 * (Helm itself renders a misspelt reference as nothing, even under `helm lint --strict`), and the
 * value-path helpers other tests use to check that the values a construct passes to the chart
 * exist in its values.yaml.
 */

export const CHART_DIR = join(__dirname, '..', '..', 'charts', 'tenant-app');

type Obj = Record<string, unknown>;

export const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses one YAML document strictly (no duplicate keys, YAML 1.1 like Helm); throws on any error or warning. */
export function parseYamlStrict(text: string, what: string): unknown {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) throw new Error(`${what}: ${problems.map((e) => e.message).join('\n')}`);
  return doc.toJS();
}

/** The chart's values.yaml as an object. */
export function loadChartValues(chartDir = CHART_DIR): Obj {
  const values = parseYamlStrict(readFileSync(join(chartDir, 'values.yaml'), 'utf8'), 'values.yaml');
  if (!isMap(values)) throw new Error('values.yaml: not a mapping');
  return values;
}

/** The chart's Chart.yaml as an object. */
export function loadChartYaml(chartDir = CHART_DIR): Obj {
  const chart = parseYamlStrict(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'), 'Chart.yaml');
  if (!isMap(chart)) throw new Error('Chart.yaml: not a mapping');
  return chart;
}

/** Template files of a chart: file name (e.g. "deployment.yaml", "_helpers.tpl") to text. */
export function loadTemplates(chartDir = CHART_DIR): Map<string, string> {
  const dir = join(chartDir, 'templates');
  return new Map(
    readdirSync(dir)
      .filter((f) => /\.(ya?ml|tpl|txt)$/.test(f))
      .sort()
      .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
  );
}

const join_ = (segments: readonly string[]) => segments.join('.');

/**
 * Every path of a values object, dotted: intermediate mappings and leaves alike
 * (`{ a: { b: 1 } }` gives `a` and `a.b`). Lists and scalars are leaves: a list value is
 * replaced whole by Helm, never merged, so its items have no paths.
 */
export function valuePathsOf(values: object): string[] {
  const out: string[] = [];
  const walk = (v: unknown, prefix: string[]) => {
    if (!isMap(v)) return;
    for (const [k, child] of Object.entries(v)) {
      const path = [...prefix, k];
      out.push(join_(path));
      walk(child, path);
    }
  };
  walk(values, []);
  return out.sort();
}

/** Paths of the leaves only (values that are not non-empty mappings). */
export function leafPathsOf(values: object): string[][] {
  const out: string[][] = [];
  const walk = (v: unknown, prefix: string[]) => {
    if (isMap(v) && Object.keys(v).length > 0) {
      for (const [k, child] of Object.entries(v)) walk(child, [...prefix, k]);
    } else if (prefix.length > 0) {
      out.push(prefix);
    }
  };
  walk(values, []);
  return out;
}

export interface PathCheckOptions {
  /**
   * Paths under which any key is accepted. By default: every mapping that is empty in the
   * chart's values (nodeSelector, affinity, podAnnotations, ...), whose keys are free-form.
   */
  readonly freeForm?: readonly string[];
}

/** What is wrong with passing `values` to a chart whose defaults are `chartValues`; empty when nothing is. */
export function pathProblems(values: object, chartValues: object, options: PathCheckOptions = {}): string[] {
  const freeForm = new Set(options.freeForm ?? valuePathsOf(chartValues).filter((p) => {
    const v = lookup(chartValues, p.split('.'));
    return isMap(v) && Object.keys(v).length === 0;
  }));
  const problems: string[] = [];
  for (const path of leafPathsOf(values)) {
    const given = lookup(values, path);
    if (given === null || given === undefined) continue; // null deletes a default in Helm
    // A key under a free-form mapping is accepted as it is.
    if (path.some((_, i) => i < path.length - 1 && freeForm.has(join_(path.slice(0, i + 1))))) continue;
    let chart: unknown = chartValues;
    let missingAt = -1;
    for (let i = 0; i < path.length; i++) {
      if (!isMap(chart) || !Object.prototype.hasOwnProperty.call(chart, path[i])) {
        missingAt = i;
        break;
      }
      chart = chart[path[i]];
    }
    if (missingAt >= 0) {
      const parent = join_(path.slice(0, missingAt));
      const parentValue = lookup(chartValues, path.slice(0, missingAt));
      problems.push(
        missingAt > 0 && !isMap(parentValue)
          ? `${join_(path)}: ${parent} is not a mapping in the chart's values.yaml (it is ${describe(parentValue)})`
          : `${join_(path)}: no such value in the chart's values.yaml`,
      );
    } else if (isMap(chart) && Object.keys(chart).length > 0 && !isMap(given)) {
      problems.push(`${join_(path)}: the chart's values.yaml has a mapping here, not ${describe(given)}`);
    } else if (Array.isArray(chart) && !Array.isArray(given)) {
      problems.push(`${join_(path)}: the chart's values.yaml has a list here, not ${describe(given)}`);
    }
  }
  return problems;
}

/**
 * Throws unless every value in `values` (e.g. what a construct passes to the Helm release)
 * exists in `chartValues` (the chart's values.yaml, see {@link loadChartValues}): a misspelt
 * path would otherwise be ignored silently by Helm.
 */
export function assertPathsExist(values: object, chartValues: object, options: PathCheckOptions = {}): void {
  const problems = pathProblems(values, chartValues, options);
  if (problems.length > 0) {
    throw new Error(`values that the chart does not have:\n  ${problems.join('\n  ')}`);
  }
}

function lookup(values: unknown, path: readonly string[]): unknown {
  let v = values;
  for (const k of path) {
    if (!isMap(v)) return undefined;
    v = v[k];
  }
  return v;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isMap(v)) return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Template text with `{{/* ... *\/}}` comments blanked out (newlines kept, so line numbers stay). */
export function stripTemplateComments(text: string): string {
  return text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, (c) => c.replace(/[^\n]/g, ' '));
}

export interface ValueRef {
  readonly file: string;
  readonly line: number;
  /** Dotted path after `.Values.`, e.g. `image.repository`. */
  readonly path: string;
}

const VALUE_REF = /\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g;

/** Every `.Values.x.y` (and `$.Values.x.y`) reference in template text, outside comments. */
export function valueRefsOf(text: string, file = '<template>'): ValueRef[] {
  const stripped = stripTemplateComments(text);
  const refs: ValueRef[] = [];
  for (const m of stripped.matchAll(VALUE_REF)) {
    const line = stripped.slice(0, m.index).split('\n').length;
    refs.push({ file, line, path: m[1].slice(1) });
  }
  return refs;
}

/** References in `templates` (file name to text) to values that `values` does not define. */
export function missingRefsIn(templates: ReadonlyMap<string, string>, values: object): ValueRef[] {
  const known = new Set(valuePathsOf(values));
  return [...templates].flatMap(([file, text]) => valueRefsOf(text, file)).filter((r) => !known.has(r.path));
}

/** References in a chart's templates to values that its values.yaml does not define. */
export function missingValueRefs(chartDir = CHART_DIR): ValueRef[] {
  return missingRefsIn(loadTemplates(chartDir), loadChartValues(chartDir));
}

/** Leaf paths of values.yaml that no template reads, neither directly nor through a parent (e.g. `toYaml .Values.resources`). */
export function unusedValues(chartDir = CHART_DIR): string[] {
  const refs = [...loadTemplates(chartDir)].flatMap(([file, text]) => valueRefsOf(text, file)).map((r) => r.path);
  return leafPathsOf(loadChartValues(chartDir))
    .map(join_)
    .filter((leaf) => !refs.some((r) => leaf === r || leaf.startsWith(`${r}.`)));
}

/** Uses of `.Values` that the reference check cannot follow (dynamic lookups such as `index .Values "x"`). */
export function dynamicValueLookups(chartDir = CHART_DIR): ValueRef[] {
  return [...loadTemplates(chartDir)].flatMap(([file, text]) => {
    const stripped = stripTemplateComments(text);
    return [...stripped.matchAll(/\.Values(?![.A-Za-z0-9_])/g)].map((m) => ({
      file,
      line: stripped.slice(0, m.index).split('\n').length,
      path: '',
    }));
  });
}

/** Names of templates defined (`define "x"`) and included (`include "x"` / `template "x"`) in a chart. */
export function namedTemplates(chartDir = CHART_DIR): { defined: Set<string>; used: Set<string> } {
  const all = [...loadTemplates(chartDir).values()].map(stripTemplateComments).join('\n');
  return {
    defined: new Set([...all.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1])),
    used: new Set([...all.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)].map((m) => m[1])),
  };
}

/**
 * The values the tenant construct passes (the chart's contract with lib/): each of these
 * paths exists in values.yaml with a safe default.
 */
export const CONTRACT_PATHS: readonly string[] = [
  'tenant.id', 'tenant.slug', 'tenant.plan', 'tenant.model',
  'image.repository', 'image.tag', 'image.pullPolicy',
  'replicaCount',
  'resources.requests.cpu', 'resources.requests.memory', 'resources.limits.cpu', 'resources.limits.memory',
  'service.port',
  'ingress.enabled', 'ingress.className', 'ingress.host', 'ingress.tlsSecretName',
  'autoscaling.enabled', 'autoscaling.minReplicas', 'autoscaling.maxReplicas', 'autoscaling.targetCPUUtilizationPercentage',
  'podDisruptionBudget.enabled', 'podDisruptionBudget.minAvailable',
  'database.host', 'database.port', 'database.name', 'database.sslmode', 'database.schema', 'database.credentialsSecret', 'database.tenantSetting',
  'serviceAccount.name', 'serviceAccount.automountToken',
  'nodeSelector', 'tolerations', 'affinity',
  'podSecurityContext', 'securityContext',
  'extraEnv',
  'probes.path',
];

/**
 * Misspells each `.Values` reference of a chart in turn (`x` appended) and reports how many
 * mutants were made and which ones the static check missed (it should miss none).
 */
export function misspellingMutants(chartDir = CHART_DIR): { mutants: number; missed: string[] } {
  const templates = loadTemplates(chartDir);
  const values = loadChartValues(chartDir);
  let mutants = 0;
  const missed: string[] = [];
  for (const [file, text] of templates) {
    for (const ref of new Set(valueRefsOf(text, file).map((r) => r.path))) {
      const typo = `${ref}x`;
      const mutated = new Map(templates).set(file, text.split(`.Values.${ref}`).join(`.Values.${typo}`));
      if (!missingRefsIn(mutated, values).some((r) => r.path === typo)) missed.push(`${file}: ${typo}`);
      mutants++;
    }
  }
  return { mutants, missed };
}
