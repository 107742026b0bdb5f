import { apiErrors } from './errors';
import { paramName, type FormObject, type FormValue } from './form';

/**
 * The parameters an endpoint accepts, checked the way Stripe checks them: an unknown name is
 * `parameter_unknown`, a missing required one `parameter_missing`, `''` where a value cannot be
 * unset `parameter_invalid_empty`, a non-integer `parameter_invalid_integer`, a value outside an
 * enum an invalid_request_error naming the allowed values. Parameters Stripe has but this server
 * does not model are declared `unsupported()`: using one fails with `mock_not_implemented`, so
 * a typo and an unimplemented feature are never confused, and neither is silently ignored.
 */
export type ParamSpec =
  | { readonly kind: 'string'; readonly maxLength?: number; readonly oneOf?: readonly string[]; readonly emptyable?: boolean; readonly check?: (value: string, param: string) => void }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number; readonly emptyable?: boolean }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'metadata' }
  /** A map of string values under any keys (a meter event's `payload`). */
  | { readonly kind: 'hash'; readonly maxKeyLength?: number; readonly maxValueLength?: number }
  | { readonly kind: 'object'; readonly fields: Fields; readonly emptyable?: boolean }
  | { readonly kind: 'array'; readonly of: ParamSpec; readonly maxItems?: number; readonly emptyable?: boolean }
  /** 'now' or a Unix timestamp (trial_end). */
  | { readonly kind: 'now-or-timestamp' }
  | { readonly kind: 'unsupported' };

export type Field = ParamSpec & { readonly required?: boolean };
export type Fields = Readonly<Record<string, Field>>;

/** Validated parameters: strings, numbers, booleans, arrays, objects; `null` means "unset" (`''`). */
export type Params = Record<string, any>;

export const p = {
  str: (options: Omit<Extract<ParamSpec, { kind: 'string' }>, 'kind'> = {}): ParamSpec => ({ kind: 'string', maxLength: 5000, ...options }),
  oneOf: (values: readonly string[]): ParamSpec => ({ kind: 'string', oneOf: values }),
  int: (options: { min?: number; max?: number; emptyable?: boolean } = {}): ParamSpec => ({ kind: 'integer', ...options }),
  bool: (): ParamSpec => ({ kind: 'boolean' }),
  metadata: (): ParamSpec => ({ kind: 'metadata' }),
  hash: (options: { maxKeyLength?: number; maxValueLength?: number } = {}): ParamSpec => ({ kind: 'hash', ...options }),
  obj: (fields: Fields, options: { emptyable?: boolean } = {}): ParamSpec => ({ kind: 'object', fields, ...options }),
  arr: (of: ParamSpec, options: { maxItems?: number; emptyable?: boolean } = {}): ParamSpec => ({ kind: 'array', of, ...options }),
  nowOrTimestamp: (): ParamSpec => ({ kind: 'now-or-timestamp' }),
  req: <S extends ParamSpec>(spec: S): Field => ({ ...spec, required: true }),
  /** Real Stripe parameters this server does not model. */
  unsupported: (...names: string[]): Fields => Object.fromEntries(names.map((n) => [n, { kind: 'unsupported' } as const])),
  expand: (): ParamSpec => ({ kind: 'array', of: { kind: 'string', maxLength: 5000 } }),
  pagination: (): Fields => ({ limit: { kind: 'integer', min: 1, max: 100 }, starting_after: { kind: 'string' }, ending_before: { kind: 'string' } }),
};

/** Validates decoded form parameters against an endpoint's fields. */
export function validateParams(raw: FormObject, fields: Fields): Params {
  return validateObject(raw, fields, []);
}

function validateObject(raw: FormObject, fields: Fields, path: readonly (string | number)[]): Params {
  for (const key of Object.keys(raw)) {
    if (!Object.prototype.hasOwnProperty.call(fields, key)) throw apiErrors.parameterUnknown(paramName([...path, key]));
  }
  const out: Params = {};
  for (const [key, spec] of Object.entries(fields)) {
    const value = raw[key];
    const here = [...path, key];
    if (value === undefined) {
      if (spec.required) throw apiErrors.parameterMissing(paramName(here));
      continue;
    }
    out[key] = validateValue(value, spec, here, Boolean(spec.required));
  }
  return out;
}

function validateValue(value: FormValue, spec: ParamSpec, path: readonly (string | number)[], required: boolean): unknown {
  const name = paramName(path);
  if (spec.kind === 'unsupported') throw apiErrors.notImplemented(`the parameter ${name}`, name);
  const emptyable = 'emptyable' in spec && spec.emptyable === true;
  if (value === '' && spec.kind !== 'string') {
    if ((emptyable || spec.kind === 'metadata') && !required) return null;
    throw apiErrors.parameterInvalidEmpty(name);
  }
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string') throw apiErrors.invalid(`Invalid string: ${JSON.stringify(value)}`, { param: name });
      if (value === '') {
        if (spec.emptyable && !required) return null;
        throw apiErrors.parameterInvalidEmpty(name);
      }
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        throw apiErrors.invalid(`Invalid string: ${value.slice(0, 20)}...; must be at most ${spec.maxLength} characters`, { param: name });
      }
      if (spec.oneOf && !spec.oneOf.includes(value)) throw apiErrors.invalidEnum(name, value, spec.oneOf);
      spec.check?.(value, name);
      return value;
    }
    case 'integer': {
      if (typeof value !== 'string' || !/^-?[0-9]+$/.test(value)) throw apiErrors.parameterInvalidInteger(name, typeof value === 'string' ? value : JSON.stringify(value));
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw apiErrors.parameterInvalidInteger(name, value);
      if (spec.min !== undefined && n < spec.min) throw apiErrors.invalid(`This value must be greater than or equal to ${spec.min}.`, { param: name });
      if (spec.max !== undefined && n > spec.max) throw apiErrors.invalid(`This value must be less than or equal to ${spec.max}.`, { param: name });
      return n;
    }
    case 'boolean': {
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw apiErrors.invalid(`Invalid boolean: ${typeof value === 'string' ? value : JSON.stringify(value)}`, { param: name });
    }
    case 'now-or-timestamp': {
      if (value === 'now') return 'now';
      if (typeof value === 'string' && /^[0-9]+$/.test(value)) return Number(value);
      throw apiErrors.invalid(`Invalid ${name}: must be 'now' or a Unix timestamp`, { param: name });
    }
    case 'metadata': {
      if (typeof value === 'string' || Array.isArray(value)) throw apiErrors.invalid('Invalid object', { param: name });
      const entries = Object.entries(value);
      if (entries.length > 50) throw apiErrors.invalid('You can only specify up to 50 metadata keys.', { param: name });
      const out: Record<string, string | null> = {};
      for (const [k, v] of entries) {
        if (typeof v !== 'string') throw apiErrors.invalid(`Invalid value type: metadata values must be strings (${paramName([...path, k])})`, { param: paramName([...path, k]) });
        if (k.length > 40) throw apiErrors.invalid(`Metadata key ${JSON.stringify(k)} is too long: keys can be at most 40 characters.`, { param: paramName([...path, k]) });
        if (v.length > 500) throw apiErrors.invalid(`Metadata value for key ${JSON.stringify(k)} is too long: values can be at most 500 characters.`, { param: paramName([...path, k]) });
        out[k] = v === '' ? null : v;
      }
      return out;
    }
    case 'hash': {
      if (typeof value === 'string' || Array.isArray(value)) throw apiErrors.invalid('Invalid object', { param: name });
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(value)) {
        const at = paramName([...path, k]);
        if (typeof v !== 'string') throw apiErrors.invalid(`Invalid string: ${JSON.stringify(v)}`, { param: at });
        if (spec.maxKeyLength !== undefined && k.length > spec.maxKeyLength) throw apiErrors.invalid(`Invalid key: ${k.slice(0, 20)}...; keys can be at most ${spec.maxKeyLength} characters`, { param: at });
        if (spec.maxValueLength !== undefined && v.length > spec.maxValueLength) throw apiErrors.invalid(`Invalid string: ${v.slice(0, 20)}...; must be at most ${spec.maxValueLength} characters`, { param: at });
        out[k] = v;
      }
      return out;
    }
    case 'object': {
      if (typeof value === 'string' || Array.isArray(value)) throw apiErrors.invalid('Invalid object', { param: name });
      return validateObject(value, spec.fields, path);
    }
    case 'array': {
      let items: FormValue[];
      if (Array.isArray(value)) items = value;
      else if (typeof value === 'object' && Object.keys(value).every((k) => /^(0|[1-9][0-9]*)$/.test(k))) {
        items = Object.keys(value).map(Number).sort((a, b) => a - b).map((k) => value[String(k)]);
      } else throw apiErrors.invalid('Invalid array', { param: name });
      if (spec.maxItems !== undefined && items.length > spec.maxItems) throw apiErrors.invalid(`Invalid array: must have at most ${spec.maxItems} elements`, { param: name });
      return items.map((item, i) => validateValue(item, spec.of, [...path, i], true));
    }
  }
}

/** Exactly one of `names` may be given (Stripe's parameters_exclusive). */
export function exclusive(params: Params, names: readonly string[]): void {
  if (names.filter((n) => params[n] !== undefined && params[n] !== null).length > 1) throw apiErrors.parametersExclusive(names);
}

/** Checks an absolute http(s) URL (success_url, cancel_url). */
export function checkUrl(value: string, param: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw apiErrors.urlInvalid(param);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw apiErrors.urlInvalid(param);
}
