// Checks that the baseline is honest: it must synthesize the same Terraform as the library,
// otherwise the time ratio compares different amounts of work.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A stack's cdk.tf.json: resource and data blocks by type and logical id; every other block (output, provider, terraform, ...) as a whole. */
interface StackJson {
  resource?: Record<string, Record<string, Json>>;
  data?: Record<string, Record<string, Json>>;
  [block: string]: Json | undefined;
}

export interface Divergence {
  readonly stack: string;
  readonly message: string;
}

export interface ComparisonResult {
  readonly stacks: number;
  readonly resources: number;
  readonly dataSources: number;
  readonly divergences: readonly Divergence[];
}

/**
 * Logical ids differ on purpose (construct paths vs flat ids): references are compared by
 * type and attribute only. A reference is `[data.]<type>.<id>` where the type has an
 * underscore (aws_iam_role, helm_release), not after a dot or a word character (which would
 * make it an attribute or part of a longer name); it is anonymized wherever it stands inside
 * a `${...}` interpolation, including interpolations inside JSON, ini or policy text.
 */
const REFERENCE = /(?<![\w.-])((?:data\.)?[a-z][a-z0-9]*_[a-z0-9_]+)\.[A-Za-z0-9_-]+/g;
const DEPENDS_ON_ENTRY = /^((?:data\.)?[a-z][a-z0-9]*_[a-z0-9_]+)\.[A-Za-z0-9_-]+$/;

/** Anonymizes the references inside every `${...}` of a string (braces nest, e.g. `${jsonencode({...})}`). */
function anonymize(text: string): string {
  let out = '';
  let at = 0;
  for (let start = text.indexOf('${'); start >= 0; start = text.indexOf('${', at)) {
    let depth = 0;
    let end = start + 1;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    out += text.slice(at, start) + text.slice(start, end).replace(REFERENCE, '$1.*');
    at = end;
  }
  return out + text.slice(at);
}

/** Strips cdktf metadata ("//" keys), anonymizes logical ids and sorts keys, for comparison. */
function normalize(value: Json, key?: string): Json {
  if (typeof value === 'string') return anonymize(value);
  if (Array.isArray(value)) return value.map((v) => (key === 'depends_on' && typeof v === 'string' ? v.replace(DEPENDS_ON_ENTRY, '$1.*') : normalize(v)));
  if (value && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const k of Object.keys(value).sort()) if (k !== '//') out[k] = normalize(value[k], k);
    return out;
  }
  return value;
}

const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJsonText(text: string): Json | undefined {
  if (!/^\s*[[{]/.test(text)) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

const show = (v: Json | undefined, max = 200) => {
  const text = v === undefined ? '(absent)' : JSON.stringify(v);
  return text.length > max ? `${text.slice(0, max)}…` : text;
};

/** A path into a value: `a.b[0]`, and `(JSON)` where it goes into a string holding JSON. */
const step = (path: string, key: string) => (!path ? key : path.endsWith(')') ? `${path} ${key}` : `${path}.${key}`);

/**
 * Where two normalized values first differ, as `path: library …, baseline …`. Strings holding
 * JSON (Helm values, IAM policies) are followed into; other long strings are shown around the
 * first character that differs.
 */
function describeDifference(a: Json | undefined, b: Json | undefined, path: string): string {
  if (typeof a === 'string' && typeof b === 'string') {
    const [ja, jb] = [parseJsonText(a), parseJsonText(b)];
    if (ja !== undefined && jb !== undefined && JSON.stringify(ja) !== JSON.stringify(jb)) return describeDifference(ja, jb, `${path} (JSON)`);
    if (a.length <= 120 && b.length <= 120) return `${path}: library ${show(a)}, baseline ${show(b)}`;
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    const around = (t: string) => show(t.slice(Math.max(0, i - 40), i + 80), 400);
    return `${path}, from character ${i}: library …${around(a)}, baseline …${around(b)}`;
  }
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return describeDifference(a[k], b[k], step(path, k));
    }
    return `${path}: the same keys in another order: library ${show(Object.keys(a))}, baseline ${show(Object.keys(b))}`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: library ${a.length} entries ${show(a)}, baseline ${b.length} entries ${show(b)}`;
    const i = a.findIndex((v, k) => JSON.stringify(v) !== JSON.stringify(b[k]));
    return describeDifference(a[i], b[i], `${path}[${i}]`);
  }
  return `${path}: library ${show(a)}, baseline ${show(b)}`;
}

function readStacks(outdir: string): Map<string, StackJson> {
  const dir = join(outdir, 'stacks');
  const stacks = new Map<string, StackJson>();
  if (!existsSync(dir)) return stacks;
  for (const name of readdirSync(dir).sort()) {
    stacks.set(name, JSON.parse(readFileSync(join(dir, name, 'cdk.tf.json'), 'utf8')) as StackJson);
  }
  return stacks;
}

/**
 * Compares the resource or data blocks of a stack: the same types and counts, and per type the
 * same bodies as multisets (the logical ids are not comparable, the contents are). Returns how
 * many blocks the library emitted.
 */
function compareBlocks(kind: 'resource' | 'data', l: StackJson, b: StackJson, diverge: (message: string) => void): number {
  const what = kind === 'data' ? 'data source' : 'resource';
  const lt = l[kind] ?? {};
  const bt = b[kind] ?? {};
  let count = 0;
  for (const type of [...new Set([...Object.keys(lt), ...Object.keys(bt)])].sort()) {
    const lb = Object.values(lt[type] ?? {}).map((body) => normalize(body));
    const bb = Object.values(bt[type] ?? {}).map((body) => normalize(body));
    count += lb.length;
    if (lb.length !== bb.length) {
      diverge(`${what} ${type}: library ${lb.length}, baseline ${bb.length}`);
      continue;
    }
    const byText = (bodies: Json[]) => bodies.map((body) => ({ body, text: JSON.stringify(body) })).sort((x, y) => (x.text < y.text ? -1 : x.text > y.text ? 1 : 0));
    const [ls, bs] = [byText(lb), byText(bb)];
    const i = ls.findIndex((x, k) => x.text !== bs[k].text);
    if (i >= 0) diverge(`${what} ${type} differs at ${describeDifference(ls[i].body, bs[i].body, '')}`);
  }
  return count;
}

/**
 * Compares two synth outputs stack by stack: the same stacks; the same resource and data source
 * types and counts and (logical ids aside) the same attributes; and the same other blocks
 * (outputs, providers, backends and required providers, and anything else a stack emits).
 */
export function compareSynthOutputs(libraryOut: string, baselineOut: string): ComparisonResult {
  const lib = readStacks(libraryOut);
  const base = readStacks(baselineOut);
  const divergences: Divergence[] = [];
  let resources = 0;
  let dataSources = 0;

  for (const name of new Set([...lib.keys(), ...base.keys()])) {
    const l = lib.get(name);
    const b = base.get(name);
    if (!l || !b) {
      divergences.push({ stack: name, message: `only the ${l ? 'library' : 'baseline'} synthesized this stack` });
      continue;
    }
    const diverge = (message: string) => divergences.push({ stack: name, message });
    resources += compareBlocks('resource', l, b, diverge);
    dataSources += compareBlocks('data', l, b, diverge);
    for (const block of [...new Set([...Object.keys(l), ...Object.keys(b)])].sort()) {
      if (block === 'resource' || block === 'data' || block === '//') continue;
      const [lj, bj] = [normalize(l[block] ?? null), normalize(b[block] ?? null)];
      if (JSON.stringify(lj) !== JSON.stringify(bj)) diverge(`${block} block differs at ${describeDifference(lj, bj, block)}`);
    }
  }
  return { stacks: lib.size, resources, dataSources, divergences };
}
