import { readFileSync, lstatSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import { didYouMean } from './closest-name';
import type { RegistryProblem } from './registry-error';
import { fieldNamesAt, requiredFieldHint } from './schema-paths';

/** Registry files are small; anything bigger is a mistake or an attack. */
export const MAX_FILE_BYTES = 64 * 1024;

/** Parser options: plain YAML 1.2 core schema, no custom or known tags, no merge keys, duplicate keys are errors. */
const PARSE_OPTIONS = { prettyErrors: false, schema: 'core', merge: false, uniqueKeys: true, strict: true, resolveKnownTags: false } as const;

/**
 * A parsed YAML file that can point at the line of any field path. Only the text is kept:
 * the document tree is rebuilt on the first problem, so a large valid registry does not
 * hold thousands of syntax trees in memory.
 */
export class YamlFile {
  private located?: { doc: Document; lines: LineCounter };

  private constructor(
    readonly file: string,
    private readonly text: string,
  ) {}

  private get doc(): Document {
    return this.locate().doc;
  }

  private get lines(): LineCounter {
    return this.locate().lines;
  }

  private locate(): { doc: Document; lines: LineCounter } {
    if (!this.located) {
      const lines = new LineCounter();
      this.located = { doc: parseDocument(this.text, { ...PARSE_OPTIONS, lineCounter: lines }), lines };
    }
    return this.located;
  }

  /**
   * Reads and parses `absPath`. Problems (not a regular file, too big, not UTF-8,
   * bad YAML, several documents, not a mapping) go to `problems`; returns undefined then.
   */
  static read(absPath: string, file: string, problems: RegistryProblem[]): { yaml: YamlFile; data: Record<string, unknown> } | undefined {
    const stat = lstatSync(absPath, { throwIfNoEntry: false });
    if (!stat) {
      problems.push({ file, path: '', message: 'does not exist' });
      return undefined;
    }
    if (!stat.isFile()) {
      problems.push({ file, path: '', message: stat?.isSymbolicLink() ? 'must be a regular file, not a symbolic link' : 'must be a regular file' });
      return undefined;
    }
    if (stat.size > MAX_FILE_BYTES) {
      problems.push({ file, path: '', message: `is ${stat.size} bytes; registry files are limited to ${MAX_FILE_BYTES}` });
      return undefined;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(absPath));
    } catch {
      problems.push({ file, path: '', message: 'is not valid UTF-8' });
      return undefined;
    }
    const lines = new LineCounter();
    const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter: lines });
    const errors = [...doc.errors, ...doc.warnings];
    if (errors.length > 0) {
      for (const e of errors) {
        const pos = lines.linePos(e.pos[0]);
        problems.push({ file, path: '', line: pos.line, column: pos.col, message: `invalid YAML: ${e.message.split('\n')[0]}` });
      }
      return undefined;
    }
    if (!isMap(doc.contents)) {
      problems.push({ file, path: '', message: 'must be a YAML mapping of fields (key: value)' });
      return undefined;
    }
    let data: unknown;
    try {
      // Aliases expand; a small cap stops "billion laughs" documents.
      data = doc.toJS({ maxAliasCount: 20 });
    } catch (e) {
      problems.push({ file, path: '', message: `invalid YAML: ${(e as Error).message}` });
      return undefined;
    }
    return { yaml: new YamlFile(file, text), data: data as Record<string, unknown> };
  }

  /** A problem at `path`, with the line of the deepest node that exists on that path. */
  problem(path: readonly PropertyKey[], message: string): RegistryProblem {
    let node: unknown;
    for (let depth = path.length; depth >= 0 && !node; depth--) {
      node = depth === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, depth) as unknown[], true);
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    const pos = range ? this.lines.linePos(range[0]) : undefined;
    return { file: this.file, path: formatPath(path), message, line: pos?.line, column: pos?.col };
  }

  /** A problem on the key of `path` (the field itself, e.g. an unknown field), not on its value. */
  keyProblem(path: readonly PropertyKey[], message: string): RegistryProblem {
    const parent = path.length <= 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1) as unknown[], true);
    const key = String(path[path.length - 1]);
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key) : undefined;
    const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
    if (!range) return this.problem(path, message);
    const pos = this.lines.linePos(range[0]);
    return { file: this.file, path: formatPath(path), message, line: pos.line, column: pos.col };
  }

  /** Parses `data` with `schema`; every zod issue becomes a problem with its line. */
  validate<S extends z.ZodType>(schema: S, data: unknown, problems: RegistryProblem[]): z.output<S> | undefined {
    const result = schema.safeParse(data);
    if (result.success) return result.data;
    const required = new Set<string>();
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const allowed = fieldNamesAt(schema, issue.path);
        for (const key of issue.keys) problems.push(this.keyProblem([...issue.path, key], `unknown field${didYouMean(key, allowed)}`));
      } else if (MISSING_VALUE_CODES.has(issue.code) && isAbsent(data, issue.path)) {
        // zod says "Invalid input: expected string, received undefined"; the field is simply missing.
        const path = formatPath(issue.path);
        if (required.has(path)) continue;
        required.add(path);
        const hint = requiredFieldHint(schema, issue.path);
        problems.push(this.problem(issue.path, hint ? `required: ${hint}` : 'required'));
      } else if (issue.code === 'invalid_key') {
        problems.push(this.keyProblem(issue.path, issue.issues[0]?.message ?? issue.message));
      } else if (issue.code === 'custom' && (issue.params as { onKey?: boolean } | undefined)?.onKey) {
        // A refinement about the field itself (a key that is not allowed), not about its value.
        problems.push(this.keyProblem(issue.path, issue.message));
      } else {
        problems.push(this.problem(issue.path, issue.message));
      }
    }
    return undefined;
  }
}

/** Issues zod reports for a value that is not there (a missing field fails its type, enum or union). */
const MISSING_VALUE_CODES = new Set<string>(['invalid_type', 'invalid_value', 'invalid_union']);

/** Whether the last key of `path` is absent from its (present) parent object in `data`. */
function isAbsent(data: unknown, path: readonly PropertyKey[]): boolean {
  if (path.length === 0) return false;
  let parent = data;
  for (const key of path.slice(0, -1)) {
    if (typeof parent !== 'object' || parent === null) return false;
    parent = (parent as Record<PropertyKey, unknown>)[key];
  }
  return typeof parent === 'object' && parent !== null && !Object.prototype.hasOwnProperty.call(parent, path[path.length - 1]);
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}
