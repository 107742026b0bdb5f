import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { CHART_DIR, isMap, loadChartValues, loadChartYaml, loadTemplates } from './chart-values';

/**
 * A small renderer for Helm chart templates, for tests on a machine without `helm`.
 *
 * It implements the part of Go's text/template that charts use (actions with `{{-`/`-}}`
 * trimming, comments, pipelines, variables, if/else if/else, with, range, define, include,
 * template) and the Helm/sprig functions listed in FUNCTIONS, with Helm's semantics where
 * they show in the output: values merged over values.yaml (null deletes a default), numbers
 * printed as Go prints a float64, `toYaml` with sorted keys and no trailing newline, missing
 * values printed as "". By default it is strict, like `helm lint --strict`: reading a key that
 * the values do not have is an error, so a misspelt reference fails even inside `with`.
 *
 * It is an approximation of Helm, not Helm: a template that uses a function it does not
 * know fails loudly ("function X not defined") rather than rendering something else.
 */

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Go structs (.Chart, .Release, ...): a missing field is an error even when not strict. */
class GoStruct {
  constructor(readonly fields: Record<string, unknown>) {}
}

// ---------------------------------------------------------------------------------------------
// Lexing: text and actions

interface RawAction {
  readonly text: string;
  readonly line: number;
}
type Item = string | RawAction;

const SPACE = /[ \t\r\n]/;

function lexTemplate(src: string, file: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNext = false;
  const lineAt = (i: number) => src.slice(0, i).split('\n').length;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    let text = open < 0 ? src.slice(pos) : src.slice(pos, open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    if (open < 0) {
      items.push(text);
      break;
    }
    let start = open + 2;
    if (src[start] === '-' && SPACE.test(src[start + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 1;
    }
    items.push(text);
    // Find the closing delimiter, outside string literals.
    let i = start;
    let quote: string | null = null;
    for (; i < src.length; i++) {
      const ch = src[i];
      if (quote) {
        if (ch === '\\' && quote === '"') i++;
        else if (ch === quote) quote = null;
        continue;
      }
      if (src.startsWith('/*', i)) {
        const endComment = src.indexOf('*/', i + 2);
        if (endComment < 0) throw new TemplateError(`${file}:${lineAt(open)}: unclosed comment`);
        i = endComment + 1;
        continue;
      }
      if (ch === '"' || ch === '`') quote = ch;
      else if (src.startsWith('}}', i)) break;
    }
    if (i >= src.length) throw new TemplateError(`${file}:${lineAt(open)}: unclosed action`);
    let body = src.slice(start, i);
    trimNext = false;
    if (/[ \t\r\n]-$/.test(body)) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    const trimmed = body.trim();
    if (!(trimmed.startsWith('/*') && trimmed.endsWith('*/'))) items.push({ text: trimmed, line: lineAt(open) });
    pos = i + 2;
  }
  return items;
}

// ---------------------------------------------------------------------------------------------
// Parsing actions into pipelines

type Operand =
  | { readonly t: 'dot' }
  | { readonly t: 'field'; readonly fields: readonly string[] }
  | { readonly t: 'var'; readonly name: string; readonly fields: readonly string[] }
  | { readonly t: 'lit'; readonly value: unknown }
  | { readonly t: 'fn'; readonly name: string }
  | { readonly t: 'sub'; readonly pipe: Pipeline; readonly fields: readonly string[] };

interface Pipeline {
  readonly decl?: { readonly vars: readonly string[]; readonly assign: boolean };
  readonly cmds: readonly (readonly Operand[])[];
}

type Node =
  | { readonly k: 'text'; readonly text: string }
  | { readonly k: 'out'; readonly pipe: Pipeline; readonly where: string }
  | { readonly k: 'if' | 'with' | 'range'; readonly pipe: Pipeline; readonly body: Node[]; readonly orElse: Node[]; readonly where: string }
  | { readonly k: 'template'; readonly name: string; readonly pipe?: Pipeline; readonly where: string };

interface Token {
  readonly t: 'str' | 'num' | 'ident' | 'field' | 'var' | 'dot' | '|' | '(' | ')' | ',' | ':=' | '=';
  readonly v: string;
  /** Whitespace before the token (field chains must not have any). */
  readonly spaced: boolean;
}

function tokenize(s: string, where: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    let spaced = false;
    while (i < s.length && SPACE.test(s[i])) {
      i++;
      spaced = true;
    }
    if (i >= s.length) break;
    const rest = s.slice(i);
    let m: RegExpMatchArray | null;
    const push = (t: Token['t'], v: string, len: number) => {
      out.push({ t, v, spaced: spaced || out.length === 0 });
      i += len;
    };
    if (rest[0] === '"') {
      m = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (!m) throw new TemplateError(`${where}: unterminated string`);
      push('str', JSON.parse(m[0].replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')), m[0].length);
    } else if (rest[0] === '`') {
      const end = rest.indexOf('`', 1);
      if (end < 0) throw new TemplateError(`${where}: unterminated raw string`);
      push('str', rest.slice(1, end), end + 1);
    } else if ((m = /^:=/.exec(rest))) push(':=', ':=', 2);
    else if ('|(),='.includes(rest[0])) push(rest[0] as Token['t'], rest[0], 1);
    else if ((m = /^\$[A-Za-z0-9_]*/.exec(rest))) push('var', m[0], m[0].length);
    else if ((m = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) push('field', m[0].slice(1), m[0].length);
    else if (rest[0] === '.') push('dot', '.', 1);
    else if ((m = /^[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/.exec(rest))) push('num', m[0], m[0].length);
    else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) push('ident', m[0], m[0].length);
    else throw new TemplateError(`${where}: unexpected ${JSON.stringify(rest[0])} in action`);
  }
  return out;
}

function parsePipeline(tokens: Token[], where: string): Pipeline {
  let pos = 0;
  const peek = () => tokens[pos];
  const fieldsAfter = (): string[] => {
    const fields: string[] = [];
    while (peek()?.t === 'field' && !peek().spaced) fields.push(tokens[pos++].v);
    return fields;
  };
  const pipeline = (inParens: boolean): Pipeline => {
    let decl: Pipeline['decl'];
    // `$x :=`, `$x =`, `$i, $v :=`
    const save = pos;
    const vars: string[] = [];
    while (peek()?.t === 'var') {
      vars.push(tokens[pos++].v);
      if (peek()?.t === ',') pos++;
      else break;
    }
    if (vars.length > 0 && (peek()?.t === ':=' || peek()?.t === '=')) {
      decl = { vars, assign: tokens[pos++].t === '=' };
    } else {
      pos = save;
    }
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    for (;;) {
      const tok = peek();
      if (!tok || (inParens && tok.t === ')')) break;
      pos++;
      if (tok.t === '|') {
        if (cmd.length === 0) throw new TemplateError(`${where}: missing command before |`);
        cmds.push(cmd);
        cmd = [];
        continue;
      }
      switch (tok.t) {
        case 'str':
          cmd.push({ t: 'lit', value: tok.v });
          break;
        case 'num':
          cmd.push({ t: 'lit', value: Number(tok.v) });
          break;
        case 'dot':
          cmd.push({ t: 'dot' });
          break;
        case 'field': {
          const fields = [tok.v, ...fieldsAfter()];
          cmd.push({ t: 'field', fields });
          break;
        }
        case 'var':
          cmd.push({ t: 'var', name: tok.v, fields: fieldsAfter() });
          break;
        case 'ident':
          if (tok.v === 'true' || tok.v === 'false') cmd.push({ t: 'lit', value: tok.v === 'true' });
          else if (tok.v === 'nil') cmd.push({ t: 'lit', value: null });
          else cmd.push({ t: 'fn', name: tok.v });
          break;
        case '(': {
          const sub = pipeline(true);
          if (peek()?.t !== ')') throw new TemplateError(`${where}: unclosed (`);
          pos++;
          cmd.push({ t: 'sub', pipe: sub, fields: fieldsAfter() });
          break;
        }
        default:
          throw new TemplateError(`${where}: unexpected ${tok.v}`);
      }
    }
    if (cmd.length > 0) cmds.push(cmd);
    if (cmds.length === 0) throw new TemplateError(`${where}: missing value`);
    return { decl, cmds };
  };
  const p = pipeline(false);
  if (pos < tokens.length) throw new TemplateError(`${where}: unexpected ${tokens[pos].v}`);
  return p;
}

interface Parsed {
  readonly nodes: Node[];
  readonly defines: Map<string, Node[]>;
}

function parseTemplate(src: string, file: string): Parsed {
  const items = lexTemplate(src, file);
  const defines = new Map<string, Node[]>();
  let pos = 0;
  const where = (a: RawAction) => `${file}:${a.line}`;
  const keyword = (a: RawAction) => /^([a-z]+)\b\s*([\s\S]*)$/.exec(a.text) ?? [a.text, '', ''];

  // Parses nodes until `end` or `else ...`; returns the nodes and the action that stopped them.
  const list = (stops: boolean): { nodes: Node[]; stop?: RawAction } => {
    const nodes: Node[] = [];
    while (pos < items.length) {
      const item = items[pos++];
      if (typeof item === 'string') {
        if (item) nodes.push({ k: 'text', text: item });
        continue;
      }
      const [, kw, rest] = keyword(item);
      if (kw === 'end' || kw === 'else') {
        if (!stops) throw new TemplateError(`${where(item)}: unexpected {{${kw}}}`);
        return { nodes, stop: item };
      }
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        nodes.push(control(kw, rest, item));
      } else if (kw === 'define') {
        const m = /^"([^"]+)"$/.exec(rest.trim());
        if (!m) throw new TemplateError(`${where(item)}: define needs a quoted name`);
        const body = list(true);
        if (!body.stop || keyword(body.stop)[1] !== 'end') throw new TemplateError(`${where(item)}: define "${m[1]}" has no end`);
        defines.set(m[1], body.nodes);
      } else if (kw === 'template') {
        const m = /^"([^"]+)"\s*([\s\S]*)$/.exec(rest.trim());
        if (!m) throw new TemplateError(`${where(item)}: template needs a quoted name`);
        nodes.push({ k: 'template', name: m[1], pipe: m[2] ? parsePipeline(tokenize(m[2], where(item)), where(item)) : undefined, where: where(item) });
      } else if (kw === 'block' || kw === 'break' || kw === 'continue') {
        throw new TemplateError(`${where(item)}: {{${kw}}} is not supported by this renderer`);
      } else {
        nodes.push({ k: 'out', pipe: parsePipeline(tokenize(item.text, where(item)), where(item)), where: where(item) });
      }
    }
    if (stops) throw new TemplateError(`${file}: unexpected end of template (missing {{end}})`);
    return { nodes };
  };

  const control = (kw: 'if' | 'with' | 'range', rest: string, item: RawAction): Node => {
    const pipe = parsePipeline(tokenize(rest, where(item)), where(item));
    const body = list(true);
    let orElse: Node[] = [];
    const [, stopKw, stopRest] = keyword(body.stop!);
    if (stopKw === 'else') {
      const chained = /^(if|with)\b\s*([\s\S]*)$/.exec(stopRest);
      if (chained && chained[1] === kw) {
        // `else if x` / `else with x`: a nested block that shares this block's end.
        orElse = [control(kw as 'if' | 'with', chained[2], body.stop!)];
        return { k: kw, pipe, body: body.nodes, orElse, where: where(item) };
      }
      if (stopRest.trim()) throw new TemplateError(`${where(body.stop!)}: unexpected else ${stopRest}`);
      const elseBody = list(true);
      if (keyword(elseBody.stop!)[1] !== 'end') throw new TemplateError(`${where(elseBody.stop!)}: expected {{end}}`);
      orElse = elseBody.nodes;
    }
    return { k: kw, pipe, body: body.nodes, orElse, where: where(item) };
  };

  const { nodes } = list(false);
  return { nodes, defines };
}

// ---------------------------------------------------------------------------------------------
// Values as Go sees them

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === false || v === 0 || v === '' ||
  (Array.isArray(v) && v.length === 0) || (isMap(v) && Object.keys(v).length === 0);

const truth = (v: unknown): boolean => (v instanceof GoStruct ? true : !isEmpty(v));

/** How Go's fmt prints a float64 (%v, i.e. %g with the shortest precision): 1e+06, 0.5, 1e-05. */
export function goFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const [mantissa, expText] = n.toExponential().split('e');
  const exp = Number(expText);
  // strconv.FormatFloat(n, 'g', -1, 64): the exponent form below 1e-4 and from 1e6 on.
  if (exp >= -4 && exp < 6) return String(n);
  return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** How text/template prints a value (and Helm: a missing value prints as ""). */
function goString(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goStringNested).join(' ')}]`;
  if (v instanceof GoStruct) return `{${Object.values(v.fields).map(goStringNested).join(' ')}}`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goStringNested(v[k])}`).join(' ')}]`;
  return String(v);
}
const goStringNested = (v: unknown) => (v === undefined || v === null ? '<nil>' : goString(v));

/** Helm's toYaml: sigs.k8s.io/yaml output (sorted keys, unindented sequences), without the final newline. */
function toYaml(v: unknown): string {
  if (v === undefined) return '';
  return stringify(v, { version: '1.1', indentSeq: false, sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
}

const FUNCTIONS: Record<string, (...args: any[]) => unknown> = {
  // text/template builtins
  not: (v) => !truth(v),
  and: (...args) => args.find((a) => !truth(a)) ?? args[args.length - 1],
  or: (...args) => args.find((a) => truth(a)) ?? args[args.length - 1],
  eq: (a, ...bs) => bs.some((b) => a === b || (a == null && b == null)),
  ne: (a, b) => !(a === b || (a == null && b == null)),
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : isMap(v) ? Object.keys(v).length : fail(`len of ${typeof v}`)),
  print: (...args) => args.map(goString).join(''),
  printf: (format: string, ...args) => sprintf(format, args),
  // sprig / Helm
  default: (d, ...given) => (given.length === 0 || isEmpty(given[0]) ? d : given[0]),
  empty: (v) => isEmpty(v),
  quote: (...args) => args.filter((a) => a !== undefined && a !== null).map((a) => JSON.stringify(goString(a))).join(' '),
  squote: (...args) => args.filter((a) => a !== undefined && a !== null).map((a) => `'${goString(a)}'`).join(' '),
  required: (msg: string, v) => {
    if (v === undefined || v === null || v === '') throw new TemplateError(msg);
    return v;
  },
  fail: (msg: string) => {
    throw new TemplateError(msg);
  },
  toYaml,
  indent: (n: number, s: string) => goString(s).split('\n').map((l) => ' '.repeat(n) + l).join('\n'),
  nindent: (n: number, s: string) => `\n${goString(s).split('\n').map((l) => ' '.repeat(n) + l).join('\n')}`,
  trunc: (n: number, s: string) => (n >= 0 ? s.slice(0, n) : s.slice(Math.max(0, s.length + n))),
  trimSuffix: (suffix: string, s: string) => (s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s),
  trimPrefix: (prefix: string, s: string) => (s.startsWith(prefix) ? s.slice(prefix.length) : s),
  trim: (s: string) => goString(s).trim(),
  replace: (from: string, to: string, s: string) => goString(s).split(from).join(to),
  contains: (substr: string, s: string) => goString(s).includes(substr),
  hasPrefix: (prefix: string, s: string) => goString(s).startsWith(prefix),
  hasSuffix: (suffix: string, s: string) => goString(s).endsWith(suffix),
  lower: (s: string) => goString(s).toLowerCase(),
  upper: (s: string) => goString(s).toUpperCase(),
  toString: (v: unknown) => goString(v),
  list: (...args) => args,
  prepend: (list: unknown, v) => (Array.isArray(list) ? [v, ...list] : fail(`prepend: cannot prepend to ${list === null || list === undefined ? 'nil' : typeof list}`)),
  append: (list: unknown, v) => (Array.isArray(list) ? [...list, v] : fail(`append: cannot append to ${list === null || list === undefined ? 'nil' : typeof list}`)),
  hasKey: (m: unknown, k: string) => isMap(m) && Object.prototype.hasOwnProperty.call(m, k),
  sha256sum: (s: unknown) => createHash('sha256').update(goString(s)).digest('hex'),
};

function fail(msg: string): never {
  throw new TemplateError(msg);
}

function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([%vsdqt])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    if (verb === 'q') return JSON.stringify(goString(a));
    if (verb === 'd') return typeof a === 'number' && Number.isInteger(a) ? String(a) : `%!d(${goString(a)})`;
    return a === undefined || a === null ? '%!v(<nil>)' : goString(a);
  });
}

// ---------------------------------------------------------------------------------------------
// Execution

interface Scope {
  readonly dot: unknown;
  /** Innermost frame last; `$` lives in the first frame. */
  readonly vars: Map<string, unknown>[];
}

class Executor {
  constructor(
    private readonly defines: Map<string, Node[]>,
    private readonly strict: boolean,
  ) {}

  /** file:line of the action being executed. */
  private where = '';
  private depth = 0;

  run(nodes: Node[], dot: unknown): string {
    return this.exec(nodes, { dot, vars: [new Map([['$', dot]])] });
  }

  private err(e: unknown): never {
    if (e instanceof TemplateError && /^\S+:\d+: /.test(e.message)) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new TemplateError(`${this.where}: ${msg}`);
  }

  private exec(nodes: Node[], scope: Scope): string {
    let out = '';
    for (const n of nodes) {
      if (n.k === 'text') {
        out += n.text;
        continue;
      }
      this.where = n.where;
      try {
        switch (n.k) {
          case 'out': {
            const v = this.pipeline(n.pipe, scope);
            if (!n.pipe.decl) out += goString(v);
            break;
          }
          case 'if':
          case 'with': {
            const inner: Scope = { dot: scope.dot, vars: [...scope.vars, new Map()] };
            const v = this.pipeline(n.pipe, inner);
            if (truth(v)) out += this.exec(n.body, n.k === 'with' ? { ...inner, dot: v } : inner);
            else out += this.exec(n.orElse, { dot: scope.dot, vars: [...scope.vars, new Map()] });
            break;
          }
          case 'range': {
            const frame = new Map<string, unknown>();
            const inner: Scope = { dot: scope.dot, vars: [...scope.vars, frame] };
            const decl = n.pipe.decl;
            const v = this.pipeline({ cmds: n.pipe.cmds }, inner);
            let entries: [unknown, unknown][];
            if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
            else if (isMap(v)) entries = Object.keys(v).sort().map((k) => [k, v[k]]);
            else if (typeof v === 'number' && Number.isInteger(v)) entries = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
            else if (v === undefined || v === null) entries = [];
            else throw new TemplateError(`range can't iterate over ${goString(v)}`);
            if (entries.length === 0) {
              out += this.exec(n.orElse, { dot: scope.dot, vars: [...scope.vars, new Map()] });
              break;
            }
            for (const [key, elem] of entries) {
              const iter = new Map<string, unknown>();
              if (decl?.vars.length === 1) iter.set(decl.vars[0], elem);
              if (decl?.vars.length === 2) {
                iter.set(decl.vars[0], key);
                iter.set(decl.vars[1], elem);
              }
              out += this.exec(n.body, { dot: elem, vars: [...scope.vars, iter] });
            }
            break;
          }
          case 'template': {
            const data = n.pipe ? this.pipeline(n.pipe, scope) : undefined;
            out += this.include(n.name, data);
            break;
          }
        }
      } catch (e) {
        this.err(e);
      }
    }
    return out;
  }

  include(name: string, data: unknown): string {
    const body = this.defines.get(name);
    if (!body) throw new TemplateError(`no template "${name}" associated with template`);
    if (++this.depth > 100) throw new TemplateError(`include: template "${name}" nests too deeply (recursion?)`);
    const saved = this.where;
    try {
      return this.run(body, data);
    } finally {
      this.depth--;
      this.where = saved;
    }
  }

  private pipeline(p: Pipeline, scope: Scope): unknown {
    let value: unknown;
    let first = true;
    for (const cmd of p.cmds) {
      value = this.command(cmd, scope, first ? [] : [value]);
      first = false;
    }
    if (p.decl) {
      const name = p.decl.vars[p.decl.vars.length - 1];
      if (p.decl.assign) {
        const frame = [...scope.vars].reverse().find((f) => f.has(name));
        if (!frame) throw new TemplateError(`undefined variable: ${name}`);
        frame.set(name, value);
      } else {
        scope.vars[scope.vars.length - 1].set(name, value);
      }
    }
    return value;
  }

  private command(cmd: readonly Operand[], scope: Scope, piped: unknown[]): unknown {
    const [head, ...rest] = cmd;
    if (head.t === 'fn') {
      const args = [...rest.map((a) => this.arg(a, scope)), ...piped];
      if (head.name === 'include') {
        if (typeof args[0] !== 'string') throw new TemplateError('include: the name must be a string');
        return this.include(args[0], args[1]);
      }
      if (head.name === 'tpl') throw new TemplateError('tpl is not supported by this renderer');
      const fn = FUNCTIONS[head.name];
      if (!fn) throw new TemplateError(`function "${head.name}" not defined`);
      return fn(...args);
    }
    if (rest.length > 0 || piped.length > 0) throw new TemplateError(`can't give argument to non-function ${describeOperand(head)}`);
    return this.arg(head, scope);
  }

  private arg(a: Operand, scope: Scope): unknown {
    switch (a.t) {
      case 'lit':
        return a.value;
      case 'dot':
        return scope.dot;
      case 'field':
        return this.fields(scope.dot, a.fields);
      case 'var': {
        const frame = [...scope.vars].reverse().find((f) => f.has(a.name));
        if (!frame) throw new TemplateError(`undefined variable: ${a.name}`);
        return this.fields(frame.get(a.name), a.fields);
      }
      case 'fn':
        return this.command([a], scope, []);
      case 'sub':
        return this.fields(this.pipeline(a.pipe, scope), a.fields);
    }
  }

  private fields(v: unknown, names: readonly string[]): unknown {
    let cur = v;
    for (const name of names) {
      if (cur instanceof GoStruct) {
        if (!(name in cur.fields)) throw new TemplateError(`can't evaluate field ${name}`);
        cur = cur.fields[name];
      } else if (isMap(cur)) {
        if (Object.prototype.hasOwnProperty.call(cur, name)) cur = cur[name];
        else if (this.strict) throw new TemplateError(`map has no entry for key "${name}"`);
        else cur = undefined;
      } else if (cur === undefined || cur === null) {
        throw new TemplateError(`nil pointer evaluating interface {}.${name}`);
      } else {
        throw new TemplateError(`can't evaluate field ${name} in type ${Array.isArray(cur) ? 'slice' : typeof cur}`);
      }
    }
    return cur;
  }
}

function describeOperand(a: Operand): string {
  switch (a.t) {
    case 'field':
      return `.${a.fields.join('.')}`;
    case 'var':
      return a.name + a.fields.map((f) => `.${f}`).join('');
    case 'lit':
      return JSON.stringify(a.value);
    default:
      return a.t;
  }
}

// ---------------------------------------------------------------------------------------------
// Helm: values, built-in objects, rendering a chart

/** Helm's coalescing of user values over chart defaults: mappings merge, anything else replaces, null deletes. */
export function mergeValues(defaults: unknown, overrides: unknown): unknown {
  if (!isMap(defaults) || !isMap(overrides)) return overrides === undefined ? defaults : overrides;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null) delete out[k];
    else out[k] = k in defaults ? mergeValues(defaults[k], v) : v;
  }
  return out;
}

export interface RenderOptions {
  readonly releaseName?: string;
  readonly namespace?: string;
  /** Reading a value that does not exist is an error (like `helm lint --strict`). @default true */
  readonly strict?: boolean;
  /** Chart directory. @default charts/tenant-app */
  readonly chartDir?: string;
  /** Templates to render instead of the chart's files (file name to text), for tests of the renderer. */
  readonly templates?: Map<string, string>;
}

export interface RenderedChart {
  /** Rendered text of each template file that produced output (partials `_*.tpl` excluded), NOTES.txt included. */
  readonly files: Record<string, string>;
  /** Every Kubernetes object of the YAML templates, parsed (YAML 1.1, no duplicate keys), empty documents dropped. */
  readonly manifests: Record<string, any>[];
  /** The merged values the templates saw. */
  readonly values: Record<string, unknown>;
}

/** Renders a chart with `values` merged over its values.yaml, as `helm template` would (see the caveats above). */
export function renderChart(values: Record<string, unknown> = {}, options: RenderOptions = {}): RenderedChart {
  const chartDir = options.chartDir ?? CHART_DIR;
  const chart = loadChartYaml(chartDir);
  const merged = mergeValues(loadChartValues(chartDir), values) as Record<string, unknown>;
  const templates = options.templates ?? loadTemplates(chartDir);
  const chartName = String(chart.name);

  const parsed = new Map<string, Parsed>();
  const defines = new Map<string, Node[]>();
  for (const [file, text] of templates) {
    const p = parseTemplate(text, `${chartName}/templates/${file}`);
    parsed.set(file, p);
    for (const [name, body] of p.defines) defines.set(name, body);
  }

  const kube = { Version: 'v1.30.0', Major: '1', Minor: '30', GitVersion: 'v1.30.0' };
  const files: Record<string, string> = {};
  const manifests: Record<string, any>[] = [];
  for (const [file, p] of parsed) {
    if (basename(file).startsWith('_')) continue;
    const path = `${chartName}/templates/${file}`;
    const root = new GoStruct({
      Values: merged,
      Chart: new GoStruct({
        Name: chart.name, Version: chart.version, AppVersion: chart.appVersion ?? '', Description: chart.description ?? '',
        Type: chart.type ?? 'application', KubeVersion: chart.kubeVersion ?? '', APIVersion: chart.apiVersion,
      }),
      Release: new GoStruct({
        Name: options.releaseName ?? 'tenant-app', Namespace: options.namespace ?? 'default', Service: 'Helm',
        IsInstall: true, IsUpgrade: false, Revision: 1,
      }),
      Capabilities: new GoStruct({ KubeVersion: new GoStruct(kube), APIVersions: [] }),
      Template: new GoStruct({ Name: path, BasePath: `${chartName}/templates` }),
    });
    const text = new Executor(defines, options.strict ?? true).run(p.nodes, root);
    if (!text.trim()) continue;
    files[file] = text;
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of parseAllDocuments(text, { version: '1.1', uniqueKeys: true })) {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new TemplateError(`${path}: the rendered YAML does not parse: ${problems.map((e) => e.message).join('; ')}\n${text}`);
      const obj = doc.toJS();
      if (obj === null || obj === undefined) continue;
      if (!isMap(obj) || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
        throw new TemplateError(`${path}: a rendered document is not a Kubernetes object (apiVersion and kind):\n${text}`);
      }
      manifests.push(obj);
    }
  }
  return { files, manifests, values: merged };
}

/** The one rendered object of `kind`; throws if there is not exactly one. */
export function onlyManifest(rendered: RenderedChart, kind: string): Record<string, any> {
  const all = rendered.manifests.filter((m) => m.kind === kind);
  if (all.length !== 1) throw new Error(`expected one ${kind}, rendered ${all.length} (kinds: ${rendered.manifests.map((m) => m.kind).join(', ')})`);
  return all[0];
}
