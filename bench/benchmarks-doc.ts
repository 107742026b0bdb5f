// docs/BENCHMARKS.md is shared by several benchmarks: each owns the text between its
// `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->` markers and leaves the rest alone.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem, type } from 'node:os';
import { dirname } from 'node:path';

const HEADER = `# Benchmarks

Each section below is written by a benchmark script; rerun the script to refresh it. A script
only replaces the text between its own \`<!-- bench:<name>:start -->\` and
\`<!-- bench:<name>:end -->\` markers, so sections of other benchmarks and notes outside the
markers are kept.
`;

/** Replaces (or appends) the section `name` of the benchmarks document at `file`. */
export function writeBenchmarkSection(file: string, name: string, body: string): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = `${start}\n${body.trim()}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const from = current.indexOf(start);
  const to = current.indexOf(end, from);
  const next = from >= 0 && to >= 0
    ? current.slice(0, from) + section + current.slice(to + end.length)
    : `${current.trimEnd()}\n\n${section}\n`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, next);
}

/** One line describing the machine, for reproducibility of the numbers next to it. */
export function machineDescription(): string {
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  const cpu = cpus()[0]?.model.trim() || 'unknown CPU';
  return `${availableParallelism()} cores (${cpu}), ${gib} GiB RAM, ${type()} ${release()}, Node ${process.version}`;
}
