// Checks that the baseline is honest: it must synthesize the same Terraform as the library,
// otherwise the time ratio compares different amounts of work.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface StackJson {
  resource?: Record<string, Record<string, Json>>;
  output?: Record<string, Json>;
  provider?: Json;
  terraform?: Json;
}

export interface Divergence {
  readonly stack: string;
  readonly message: string;
}

export interface ComparisonResult {
  readonly stacks: number;
  readonly resources: number;
  readonly divergences: readonly Divergence[];
}

/** Logical ids differ on purpose (construct paths vs flat ids): references are compared by type and attribute only. */
const REFERENCE = /\$\{(aws_[a-z0-9_]+)\.[A-Za-z0-9_-]+(?=[.[}])/g;
const DEPENDS_ON_ENTRY = /^(aws_[a-z0-9_]+)\.[A-Za-z0-9_-]+$/;

/** Strips cdktf metadata ("//" keys), anonymizes logical ids and sorts keys, for comparison. */
function normalize(value: Json, key?: string): Json {
  if (typeof value === 'string') return value.replace(REFERENCE, '${$1.*');
  if (Array.isArray(value)) return value.map((v) => (key === 'depends_on' && typeof v === 'string' ? v.replace(DEPENDS_ON_ENTRY, '$1.*') : normalize(v)));
  if (value && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const k of Object.keys(value).sort()) if (k !== '//') out[k] = normalize(value[k], k);
    return out;
  }
  return value;
}

const canonical = (value: Json) => JSON.stringify(normalize(value));

function readStacks(outdir: string): Map<string, StackJson> {
  const dir = join(outdir, 'stacks');
  const stacks = new Map<string, StackJson>();
  if (!existsSync(dir)) return stacks;
  for (const name of readdirSync(dir).sort()) {
    stacks.set(name, JSON.parse(readFileSync(join(dir, name, 'cdk.tf.json'), 'utf8')) as StackJson);
  }
  return stacks;
}

function countsByType(stack: StackJson): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [type, byName] of Object.entries(stack.resource ?? {})) counts[type] = Object.keys(byName).length;
  return counts;
}

/**
 * Compares two synth outputs stack by stack: the same stacks, the same resource types and
 * counts, and (logical ids aside) the same resource attributes, outputs, providers and backends.
 */
export function compareSynthOutputs(libraryOut: string, baselineOut: string): ComparisonResult {
  const lib = readStacks(libraryOut);
  const base = readStacks(baselineOut);
  const divergences: Divergence[] = [];
  let resources = 0;

  for (const name of new Set([...lib.keys(), ...base.keys()])) {
    const l = lib.get(name);
    const b = base.get(name);
    if (!l || !b) {
      divergences.push({ stack: name, message: `only the ${l ? 'library' : 'baseline'} synthesized this stack` });
      continue;
    }
    const lc = countsByType(l);
    const bc = countsByType(b);
    for (const type of new Set([...Object.keys(lc), ...Object.keys(bc)])) {
      if (lc[type] !== bc[type]) divergences.push({ stack: name, message: `${type}: library ${lc[type] ?? 0}, baseline ${bc[type] ?? 0}` });
    }
    resources += Object.values(lc).reduce((n, c) => n + c, 0);

    // Resource bodies as multisets per type: the logical ids are not comparable, the contents are.
    for (const type of Object.keys(lc)) {
      if (lc[type] !== bc[type]) continue;
      const lb = Object.values(l.resource![type]).map(canonical).sort();
      const bb = Object.values(b.resource![type]).map(canonical).sort();
      const i = lb.findIndex((body, k) => body !== bb[k]);
      if (i >= 0) divergences.push({ stack: name, message: `${type} attributes differ:\n      library:  ${lb[i]}\n      baseline: ${bb[i]}` });
    }
    for (const block of ['output', 'provider', 'terraform'] as const) {
      const lj = canonical(l[block] ?? null);
      const bj = canonical(b[block] ?? null);
      if (lj !== bj) divergences.push({ stack: name, message: `${block} blocks differ:\n      library:  ${lj}\n      baseline: ${bj}` });
    }
  }
  return { stacks: lib.size, resources, divergences };
}
