import type { IConstruct } from 'constructs';
import { TerraformDataSource, TerraformProvider, TerraformResource, type TerraformStack } from 'cdktf';
import { parse as parseYaml } from 'yaml';
import type { PolicyContext, TenantProfile } from './policy-rule';

type Json = Record<string, any>;
type Element = { readonly node: IConstruct; readonly address: string; readonly config: Json };

/**
 * The policy rules' view of one stack: what Terraform will actually get. Rules read the
 * synthesized configuration (tokens resolved, escape-hatch overrides merged) rather than
 * construct properties, so an `addOverride` or a hand-edited construct cannot slip past them:
 * they are the last line of defence after the registry and the constructs' own checks.
 * Everything is computed once per stack and cached.
 */
export class StackInspector implements PolicyContext {
  private readonly configs = new Map<IConstruct, Json | null>();
  private full?: Json;
  private readonly values = new Map<IConstruct, Json | null>();
  private index?: Map<string, IConstruct[]>;
  private addresses?: Map<string, IConstruct>;

  /**
   * @param shareWithSynthesis hand the configuration computed here to the stack's next
   *   toTerraform() (the policy aspect does, during synthesis); off for inspections outside a synth.
   */
  constructor(
    readonly stack: TerraformStack,
    readonly scope: 'tenant' | 'platform',
    readonly tenant?: TenantProfile,
    private readonly shareWithSynthesis = false,
  ) {}

  typeOf(node: IConstruct): string | undefined {
    if (node instanceof TerraformResource || node instanceof TerraformDataSource || node instanceof TerraformProvider) return node.terraformResourceType;
    return undefined;
  }

  config(node: IConstruct): Json | undefined {
    const cached = this.configs.get(node);
    if (cached !== undefined) return cached ?? undefined;
    const type = this.typeOf(node);
    let config: Json | undefined;
    if (type !== undefined) {
      const tf = this.synthesized();
      if (node instanceof TerraformProvider) {
        const alias = node.alias;
        config = ((tf.provider?.[type] ?? []) as Json[]).find((p) => (p.alias ?? undefined) === (alias ?? undefined));
      } else if (node instanceof TerraformDataSource) config = tf.data?.[type]?.[node.friendlyUniqueId];
      else config = tf.resource?.[type]?.[(node as TerraformResource).friendlyUniqueId];
      if (config) {
        config = { ...config };
        delete config['//'];
      }
    }
    this.configs.set(node, config ?? null);
    return config;
  }

  /**
   * The stack's Terraform configuration, exactly as synthesis writes it. It is computed once, when
   * a rule first needs it (the construct tree is complete by then: aspects run at synth). With
   * `shareWithSynthesis`, the stack's next toTerraform() — the synthesis right after the policy
   * checks — returns it instead of resolving every element a second time, so checking costs next
   * to nothing (one shot: any later call computes afresh).
   */
  private synthesized(): Json {
    if (this.full) return this.full;
    const stack = this.stack as TerraformStack & { toTerraform: () => Json };
    const tf = stack.toTerraform();
    this.full = tf;
    if (this.shareWithSynthesis) {
      Object.defineProperty(stack, 'toTerraform', {
        configurable: true,
        writable: true,
        value: () => {
          this.discardShared();
          return tf;
        },
      });
    }
    return tf;
  }

  /** Drops the configuration handed to the next toTerraform(), if not taken yet (the synth stopped before writing). */
  discardShared(): void {
    if (Object.prototype.hasOwnProperty.call(this.stack, 'toTerraform')) delete (this.stack as { toTerraform?: unknown }).toTerraform;
  }

  /** Terraform address of an element: `aws_kms_key.name`, `data.aws_eks_cluster.name`, `aws` or `aws.alias`. */
  addressOf(node: IConstruct): string | undefined {
    const type = this.typeOf(node);
    if (type === undefined) return undefined;
    if (node instanceof TerraformProvider) return node.alias ? `${type}.${node.alias}` : type;
    if (node instanceof TerraformDataSource) return `data.${type}.${node.friendlyUniqueId}`;
    return `${type}.${(node as TerraformResource).friendlyUniqueId}`;
  }

  elements(type: string): readonly Element[] {
    return (this.buildIndex().get(type) ?? []).map((node) => ({ node, address: this.addressOf(node)!, config: this.config(node) ?? {} }));
  }

  referenced(expression: unknown, type: string): Element | undefined {
    if (typeof expression !== 'string') return undefined;
    const m = /^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z0-9_]+(?:\[[0-9]+\])?\}$/.exec(expression);
    if (!m || m[1] !== type) return undefined;
    this.buildIndex();
    const node = this.addresses!.get(`${m[1]}.${m[2]}`);
    return node ? { node, address: `${m[1]}.${m[2]}`, config: this.config(node) ?? {} } : undefined;
  }

  releaseValues(node: IConstruct): Json | undefined {
    if (this.typeOf(node) !== 'helm_release') return undefined;
    const cached = this.values.get(node);
    if (cached !== undefined) return cached ?? undefined;
    const config = this.config(node) ?? {};
    let values: Json = {};
    for (const doc of (Array.isArray(config.values) ? config.values : []) as unknown[]) {
      values = mergeHelmValues(values, parseValuesDocument(doc));
    }
    for (const key of ['set', 'set_sensitive', 'set_list'] as const) {
      for (const entry of (Array.isArray(config[key]) ? config[key] : []) as Json[]) {
        if (typeof entry?.name !== 'string') continue;
        setValuePath(values, entry.name, key === 'set_list' ? entry.value : coerceSetValue(entry.value, entry.type));
      }
    }
    this.values.set(node, values);
    return values;
  }

  releaseChart(node: IConstruct): 'tenant-platform' | 'tenant-app' | 'other' | undefined {
    if (this.typeOf(node) !== 'helm_release') return undefined;
    const chart = String(this.config(node)?.chart ?? '');
    const name = chart.split('/').pop();
    return name === 'tenant-platform' ? 'tenant-platform' : name === 'tenant-app' ? 'tenant-app' : 'other';
  }

  private buildIndex(): Map<string, IConstruct[]> {
    if (this.index) return this.index;
    this.index = new Map();
    this.addresses = new Map();
    for (const node of this.stack.node.findAll()) {
      const type = this.typeOf(node);
      if (type === undefined) continue;
      const list = this.index.get(type) ?? [];
      list.push(node);
      this.index.set(type, list);
      this.addresses.set(this.addressOf(node)!, node);
    }
    return this.index;
  }
}

const isMap = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One values document of a helm_release (JSON or YAML text); anything else counts as empty. */
function parseValuesDocument(doc: unknown): Json {
  if (typeof doc !== 'string') return {};
  try {
    const parsed = JSON.parse(doc) as unknown;
    return isMap(parsed) ? parsed : {};
  } catch {
    try {
      const parsed = parseYaml(doc) as unknown;
      return isMap(parsed) ? parsed : {};
    } catch {
      return {};
    }
  }
}

/** Helm's merge of values documents: maps merge key by key, anything else is replaced, null removes the key. */
export function mergeHelmValues(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = isMap(v) && isMap(out[k]) ? mergeHelmValues(out[k], v) : v;
  }
  return out;
}

/** `--set` typing: true/false and integers become booleans and numbers unless the type is "string". */
function coerceSetValue(value: unknown, type: unknown): unknown {
  if (type === 'string' || typeof value !== 'string') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  if (value === 'null') return null;
  if (/^-?[0-9]+$/.test(value)) return Number(value);
  return value;
}

/** Sets `a.b[0].c` (dots escaped as `\.`) in `values`, as `helm --set` does. */
function setValuePath(values: Json, name: string, value: unknown): void {
  const segments: (string | number)[] = [];
  for (const part of name.split(/(?<!\\)\./)) {
    const m = /^(.*?)((?:\[[0-9]+\])*)$/.exec(part.replace(/\\\./g, '.'))!;
    segments.push(m[1]);
    for (const idx of m[2].match(/[0-9]+/g) ?? []) segments.push(Number(idx));
  }
  let cur: any = values;
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i];
    const nextIsIndex = typeof segments[i + 1] === 'number';
    if (cur[seg] === undefined || cur[seg] === null || typeof cur[seg] !== 'object') cur[seg] = nextIsIndex ? [] : {};
    cur = cur[seg];
  }
  const last = segments[segments.length - 1];
  if (value === null && !Array.isArray(cur)) delete cur[last];
  else cur[last] = value;
}

/** An IPv4 CIDR as a network number and prefix length; undefined when it is not one. */
export function parseCidr(cidr: unknown): { network: number; prefix: number } | undefined {
  if (typeof cidr !== 'string') return undefined;
  const m = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\/([0-9]{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  return { network: ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0, prefix };
}

const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map((c) => parseCidr(c)!);

/** Whether a CIDR lies entirely inside the private (RFC 1918) ranges. */
export function isPrivateCidr(cidr: unknown): boolean {
  const c = parseCidr(cidr);
  if (!c) return false;
  return PRIVATE_RANGES.some((r) => c.prefix >= r.prefix && ((c.network ^ r.network) >>> (32 - r.prefix)) === 0);
}

/** Whether a Terraform value is an expression evaluated at apply (a reference or function call), not a literal. */
export const isExpression = (value: unknown): boolean => typeof value === 'string' && value.includes('${');

/** Reads a nested value. */
export function at(obj: unknown, ...path: (string | number)[]): any {
  let cur: any = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[p];
  }
  return cur;
}
