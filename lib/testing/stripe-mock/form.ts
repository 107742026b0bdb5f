import { apiErrors } from './errors';

/**
 * Stripe's wire format for parameters: `application/x-www-form-urlencoded` bodies (POST) and
 * query strings (GET, DELETE) whose keys nest with brackets: `items[0][price]=price_1`,
 * `metadata[tenant_id]=…`, `expand[]=customer`. Decoding gives nested plain objects; numeric
 * keys stay object keys here and become arrays only where the endpoint's schema expects an
 * array (lib/testing/stripe-mock/params.ts), as Stripe does.
 */
export type FormValue = string | FormObject | FormValue[];
export interface FormObject {
  [key: string]: FormValue;
}

/** Decodes a form body or query string (without the leading `?`). */
export function decodeForm(text: string): FormObject {
  const root: FormObject = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = decodeComponent(eq < 0 ? '' : pair.slice(eq + 1));
    assign(root, parseKey(key), value, key);
  }
  return root;
}

/** The segments of a bracketed key: `items[0][price]` → ['items', '0', 'price']; `[]` is ''. */
export function parseKey(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!m) throw apiErrors.invalid(`Invalid parameter name: ${key}`);
  const segments = [m[1]];
  for (const s of m[2].matchAll(/\[([^[\]]*)\]/g)) segments.push(s[1]);
  return segments;
}

/** The name Stripe uses for a parameter in errors: `items[0][price]`. */
export function paramName(path: readonly (string | number)[]): string {
  return path.length === 0 ? '' : `${path[0]}${path.slice(1).map((p) => `[${p}]`).join('')}`;
}

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw apiErrors.invalid(`Invalid URL encoding: ${s}`);
  }
}

function assign(root: FormObject, path: string[], value: string, key: string): void {
  let node: FormObject | FormValue[] = root;
  for (let i = 0; i < path.length; i++) {
    const last = i === path.length - 1;
    const segment = path[i];
    if (Array.isArray(node)) {
      if (segment !== '') throw conflict(key);
      if (last) {
        node.push(value);
        return;
      }
      // `a[][b]=1&a[][c]=2` builds one element until a key repeats (Rack's rule).
      const next = path[i + 1];
      let tail: FormValue | undefined = node[node.length - 1];
      if (tail === undefined || typeof tail !== 'object' || Array.isArray(tail) || next in tail) {
        tail = {};
        node.push(tail);
      }
      node = tail;
      continue;
    }
    if (segment === '') throw conflict(key);
    if (last) {
      if (typeof node[segment] === 'object') throw conflict(key);
      node[segment] = value;
      return;
    }
    const wantArray = path[i + 1] === '';
    const existing: FormValue | undefined = node[segment];
    if (existing === undefined) node[segment] = wantArray ? [] : {};
    else if (typeof existing === 'string' || Array.isArray(existing) !== wantArray) throw conflict(key);
    node = node[segment] as FormObject | FormValue[];
  }
}

const conflict = (key: string) => apiErrors.invalid(`Invalid parameters: ${key} conflicts with another parameter of the same name`, { param: key });
