/** Reading a chart's values.schema.json: which value paths the chart owns (unknown keys refused there). */

export interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly [key: string]: unknown;
}

const isClosed = (s: JsonSchema) => s.additionalProperties === false;
const mayBeObject = (s: JsonSchema) => s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));

/**
 * Paths (dotted) of the values the schema describes, from the root: `owned` are properties of
 * objects that refuse unknown keys (intermediate and leaves alike); `open` are objects that accept
 * any key (free-form mappings such as podAnnotations, Kubernetes types such as affinity).
 */
export function schemaPaths(schema: JsonSchema): { owned: Set<string>; open: string[] } {
  const owned = new Set<string>();
  const open: string[] = [];
  const walk = (node: JsonSchema, prefix: string[]) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = [...prefix, key];
      owned.add(path.join('.'));
      if (isClosed(child)) walk(child, path);
      else if (mayBeObject(child)) open.push(path.join('.'));
    }
  };
  if (!isClosed(schema)) throw new Error('the root of values.schema.json must refuse unknown keys (additionalProperties: false)');
  walk(schema, []);
  return { owned, open };
}

/**
 * One values object per owned path, with that key misspelt (`x` appended) and its default value
 * from values.yaml: each should be refused as an additional property.
 */
export function misspeltKeyMutants(schema: JsonSchema, defaults: Record<string, unknown>): { path: string; values: Record<string, unknown> }[] {
  return [...schemaPaths(schema).owned].map((path) => {
    const segments = path.split('.');
    let value: unknown = defaults;
    for (const s of segments) value = (value as Record<string, unknown> | undefined)?.[s];
    let values: Record<string, unknown> = { [`${segments.at(-1)}x`]: value ?? '' };
    for (const s of segments.slice(0, -1).reverse()) values = { [s]: values };
    return { path, values };
  });
}
