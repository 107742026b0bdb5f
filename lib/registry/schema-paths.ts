import type { z } from 'zod';

/**
 * What a registry schema expects at a field path, for messages: the field names allowed there
 * (for "did you mean") and a short account of a required field (its values or its description).
 * Read from the zod schema itself, so the messages follow the schema.
 */

/** The part of a zod v4 schema definition the walk reads. */
interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly catchall?: z.ZodType;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly items?: readonly z.ZodType[];
  readonly options?: readonly z.ZodType[];
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
  readonly getter?: () => z.ZodType;
  readonly entries?: Record<string, string | number>;
  readonly values?: readonly unknown[];
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Wrappers whose inner schema says what the value is. */
const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch', 'success']);

/** The concrete schemas `schema` may stand for: wrappers, pipes and lazies removed, unions and intersections spread. */
function concrete(schema: z.ZodType, depth = 0): z.ZodType[] {
  const def = defOf(schema);
  if (depth > 20) return [schema];
  if (WRAPPERS.has(def.type) && def.innerType) return concrete(def.innerType, depth + 1);
  // A preprocess pipe's input is a transform; a transform pipe's output is: both sides, the other one matches nothing.
  if (def.type === 'pipe') return [def.in, def.out].flatMap((s) => (s ? concrete(s, depth + 1) : []));
  if (def.type === 'lazy' && def.getter) return concrete(def.getter(), depth + 1);
  if (def.type === 'union' && def.options) return def.options.flatMap((o) => concrete(o, depth + 1));
  if (def.type === 'intersection' && def.left && def.right) return [...concrete(def.left, depth + 1), ...concrete(def.right, depth + 1)];
  return [schema];
}

/** The schemas of the field at `path` (several where a union branches). */
export function schemasAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType[] {
  let nodes = [schema];
  for (const key of path) {
    nodes = nodes.flatMap(concrete).flatMap((node) => {
      const def = defOf(node);
      if (def.type === 'object' && typeof key === 'string') return def.shape?.[key] ?? def.catchall ?? [];
      if (def.type === 'array' && typeof key === 'number') return def.element ?? [];
      if (def.type === 'tuple' && typeof key === 'number') return def.items?.[key] ?? [];
      if (def.type === 'record') return def.valueType ?? [];
      return [];
    });
  }
  return nodes;
}

/** The field names an object at `path` allows (empty when it is not an object or takes any name). */
export function fieldNamesAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const names = schemasAt(schema, path)
    .flatMap(concrete)
    .flatMap((node) => (defOf(node).type === 'object' ? Object.keys(defOf(node).shape ?? {}) : []));
  return [...new Set(names)];
}

/** "one of "a", "b"" for an enum or literal field, else the field's description, else undefined. */
export function requiredFieldHint(schema: z.ZodType, path: readonly PropertyKey[]): string | undefined {
  const nodes = schemasAt(schema, path);
  const values = nodes.flatMap(concrete).flatMap((node) => {
    const def = defOf(node);
    if (def.type === 'enum') return Object.values(def.entries ?? {});
    if (def.type === 'literal') return [...(def.values ?? [])];
    return [];
  });
  if (values.length > 0) return `one of ${[...new Set(values)].map((v) => JSON.stringify(v)).join(', ')}`;
  for (const node of nodes) {
    const description = descriptionOf(node);
    if (description) return description;
  }
  return undefined;
}

/** The description of `schema` or of a wrapper inside it (`.describe()` may sit on either side of `.optional()`). */
function descriptionOf(schema: z.ZodType, depth = 0): string | undefined {
  const own = (schema as { description?: string }).description;
  if (own || depth > 20) return own;
  const def = defOf(schema);
  const inner = WRAPPERS.has(def.type) ? def.innerType : def.type === 'pipe' ? def.in : undefined;
  return inner ? descriptionOf(inner, depth + 1) : undefined;
}
