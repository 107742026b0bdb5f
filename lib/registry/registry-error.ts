/** One problem found in the registry: where it is, and what is wrong. */
export interface RegistryProblem {
  /** File the problem is in, relative to the project root. */
  readonly file: string;
  /** Dotted path of the field, empty for the whole file. */
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export function formatProblem(p: RegistryProblem): string {
  const where = p.line ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** Thrown when the registry is invalid; carries every problem found, not just the first. */
export class RegistryError extends Error {
  constructor(readonly problems: readonly RegistryProblem[]) {
    super(
      `The tenant registry has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
    this.name = 'RegistryError';
  }
}
