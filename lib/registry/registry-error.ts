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
  /** The problems sorted by file, then line and column (whole-file problems first), then field path. */
  readonly problems: readonly RegistryProblem[];

  constructor(problems: readonly RegistryProblem[]) {
    problems = sortProblems(problems);
    super(
      `The tenant registry has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
    this.problems = problems;
    this.name = 'RegistryError';
  }
}

/** `problems` in reading order: by file, then line and column (whole-file problems first), then path; stable otherwise. */
export function sortProblems(problems: readonly RegistryProblem[]): RegistryProblem[] {
  const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...problems].sort((a, b) => byText(a.file, b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || byText(a.path, b.path));
}
