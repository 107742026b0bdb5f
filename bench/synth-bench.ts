// `npm run bench:synth`: synth time and peak memory of the library against a bare-cdktf
// baseline on generated registries, and of the parallel mode (synthesizeParallel, one process per
// core) against the library's single process, written to docs/BENCHMARKS.md (section "synth").
//
//   npm run bench:synth                      # 100, 1,000 and 10,000 tenants; rewrites the doc
//   BENCH_SIZES=100,1000 npm run bench:synth # quick run (also: npm run bench:synth -- 100,1000)
//   BENCH_RUNS=1        # runs per size (default 5, 3 from 10,000 tenants)
//   BENCH_DOCS=0|1      # write docs/BENCHMARKS.md (default: only when the default sizes ran)
//   BENCH_TMPDIR=dir    # where registries and outputs go (default /dev/shm if present, else the OS temp dir)
//
// Exits 1 when the baseline does not synthesize the same Terraform as the library (the ratio
// would be meaningless) or a child fails; a missed target is reported, not an error.
import { createHash } from 'node:crypto';
import { accessSync, constants, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { machineDescription, writeBenchmarkSection } from './benchmarks-doc';
import { compareSynthOutputs } from './compare-synth';
import { writeRegistry, type GeneratedRegistry } from './generate-registry';
import { USAGE_SOURCE, measureNode, median, settle, type Measurement, loadAverages } from './measure';

const REPO_ROOT = join(__dirname, '..', '..');
const DOC_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const LIBRARY_CHILD = join(__dirname, 'run-library.js');
const BASELINE_CHILD = join(__dirname, 'baseline.js');
const PARALLEL_CHILD = join(__dirname, 'run-library-parallel.js');
/** Processes of the parallel mode: its default, one per core. */
const PARALLEL_PROCESSES = availableParallelism();
const DEFAULT_SIZES = [100, 1000, 10000];

const TARGETS = { ratio: 1.2, largeSize: 10000, largeSeconds: 60, largeRssMiB: 2048, selectSeconds: 5, parallelRatio: 0.6 };

interface SizeResult {
  readonly registry: GeneratedRegistry;
  readonly stacks: number;
  readonly library: Measurement[];
  readonly baseline: Measurement[];
  /** The parallel mode, in the same runs. */
  readonly parallel: Measurement[];
}

interface SelectResult {
  readonly registry: GeneratedRegistry;
  readonly runs: Measurement[];
}

interface Summary {
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly rssMiB: number;
  readonly msPerTenant: number;
}

/** Medians of each metric over the runs. */
function summarize(runs: readonly Measurement[], tenants: number): Summary {
  const ms = median(runs.map((r) => r.wallMs));
  return { seconds: ms / 1000, cpuSeconds: median(runs.map((r) => r.cpuMs)) / 1000, rssMiB: median(runs.map((r) => r.maxRssKb)) / 1024, msPerTenant: ms / tenants };
}

function parseSizes(): number[] {
  const arg = process.argv.slice(2).find((a) => /^(--sizes=)?[0-9,]+$/.test(a))?.replace('--sizes=', '');
  const raw = arg ?? process.env.BENCH_SIZES;
  if (!raw) return DEFAULT_SIZES;
  const sizes = raw.split(',').filter(Boolean).map(Number);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bad sizes ${JSON.stringify(raw)}: expected e.g. 100,1000`);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

function runsFor(size: number): number {
  const forced = Number(process.env.BENCH_RUNS);
  if (Number.isInteger(forced) && forced > 0) return forced;
  return size >= 10000 ? 3 : 5;
}

/** tmpfs keeps the shared disk's writeback and journal stalls out of the numbers (see docs). */
function workBase(): string {
  if (process.env.BENCH_TMPDIR) return process.env.BENCH_TMPDIR;
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const fmtInt = (n: number) => n.toLocaleString('en-US');
const load = loadAverages;

class EquivalenceError extends Error {}

type Mode = 'library' | 'baseline' | 'parallel';
const MODES: readonly Mode[] = ['library', 'baseline', 'parallel'];

/**
 * Runs library, baseline and parallel mode in turn, the order rotated each run (L B P, B P L,
 * P L B, ...), so drift of the machine and the cost of going first affect all alike.
 */
function benchSize(registry: GeneratedRegistry, work: string, verify: boolean): SizeResult {
  const library: Measurement[] = [];
  const baseline: Measurement[] = [];
  const parallel: Measurement[] = [];
  const runs = runsFor(registry.size);
  for (let run = 0; run < runs; run++) {
    const out = (who: Mode) => join(work, `out-${who}-${run}`);
    try {
      const order = MODES.map((_, i) => MODES[(i + run) % MODES.length]);
      const m = {} as Record<Mode, Measurement>;
      for (const who of order) {
        settle();
        m[who] =
          who === 'library' ? measureNode(LIBRARY_CHILD, [registry.root, out(who)])
          : who === 'baseline' ? measureNode(BASELINE_CHILD, [registry.root, out(who)])
          : measureNode(PARALLEL_CHILD, [registry.root, out(who), String(PARALLEL_PROCESSES)]);
      }
      const [l, b, p] = [m.library, m.baseline, m.parallel];
      library.push(l);
      baseline.push(b);
      parallel.push(p);
      console.log(
        `  ${fmtInt(registry.size)} tenants, run ${run + 1}/${runs}: library ${fmt(l.wallMs / 1000)} s (CPU ${fmt(l.cpuMs / 1000)} s) ${fmt(l.maxRssKb / 1024, 0)} MiB, ` +
          `baseline ${fmt(b.wallMs / 1000)} s (CPU ${fmt(b.cpuMs / 1000)} s) ${fmt(b.maxRssKb / 1024, 0)} MiB, ` +
          `parallel ${fmt(p.wallMs / 1000)} s (CPU ${fmt(p.cpuMs / 1000)} s) ${fmt(p.maxRssKb / 1024, 0)} MiB; load ${load()}`,
      );
      if (l.stacks !== b.stacks) throw new EquivalenceError(`library synthesized ${l.stacks} stacks, baseline ${b.stacks}`);
      if (run === 0) verifyParallelIdentical(out('library'), out('parallel'), registry.size);
      if (verify && run === 0) verifyEquivalence(out('library'), out('baseline'), registry.size);
    } finally {
      for (const who of MODES) rmSync(out(who), { recursive: true, force: true });
    }
  }
  return { registry, stacks: library[0].stacks, library, baseline, parallel };
}

/** Every file and its bytes' hash under `dir`. */
function treeHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name);
      if (lstatSync(abs).isDirectory()) walk(abs, `${rel}${name}/`);
      else out.set(`${rel}${name}`, createHash('sha256').update(readFileSync(abs)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

/** The parallel mode must write exactly what one process writes, or its time means nothing. */
function verifyParallelIdentical(libOut: string, parOut: string, size: number): void {
  const [a, b] = [treeHashes(libOut), treeHashes(parOut)];
  const differing = [...new Set([...a.keys(), ...b.keys()])].filter((f) => a.get(f) !== b.get(f));
  if (differing.length > 0) {
    throw new EquivalenceError(`the parallel mode's output differs from one process's (${size} tenants) in ${differing.length} files: ${differing.slice(0, 10).join(', ')}`);
  }
  console.log(`  parallel output (${fmtInt(size)} tenants): byte-identical to one process's (${a.size} files)`);
}

function verifyEquivalence(libOut: string, baseOut: string, size: number): void {
  const { stacks, resources, dataSources, divergences } = compareSynthOutputs(libOut, baseOut);
  if (divergences.length > 0) {
    const shown = divergences.slice(0, 20).map((d) => `  ${d.stack}: ${d.message}`).join('\n');
    throw new EquivalenceError(
      `the baseline does NOT synthesize the same Terraform as the library (${size} tenants, ${divergences.length} divergences):\n${shown}` +
        (divergences.length > 20 ? `\n  ... and ${divergences.length - 20} more` : ''),
    );
  }
  console.log(`  equivalence check (${fmtInt(size)} tenants): ${stacks} stacks, ${resources} resources, ${dataSources} data sources; same resource and data source types and counts, attributes, outputs, providers and backends`);
}

function benchSelect(registry: GeneratedRegistry, work: string): SelectResult {
  const runs: Measurement[] = [];
  const n = Math.max(runsFor(registry.size), 3);
  for (let run = 0; run < n; run++) {
    const out = join(work, `out-select-${run}`);
    try {
      settle();
      const m = measureNode(LIBRARY_CHILD, [registry.root, out, registry.selectSlug]);
      if (m.stacks !== 1) throw new Error(`selecting ${registry.selectSlug} synthesized ${m.stacks} stacks, expected 1`);
      runs.push(m);
      console.log(`  select 1 of ${fmtInt(registry.size)}, run ${run + 1}/${n}: ${fmt(m.wallMs / 1000)} s (CPU ${fmt(m.cpuMs / 1000)} s) ${fmt(m.maxRssKb / 1024, 0)} MiB`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  return { registry, runs };
}

interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

function checkTargets(sizes: readonly SizeResult[], select: SelectResult | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const s of sizes) {
    const l = summarize(s.library, s.registry.size);
    const b = summarize(s.baseline, s.registry.size);
    const ratio = l.seconds / b.seconds;
    checks.push({
      target: `library/baseline time ratio ≤ ${TARGETS.ratio} at ${fmtInt(s.registry.size)} tenants`,
      measured: `${fmt(ratio)} (CPU time ${fmt(l.cpuSeconds / b.cpuSeconds)})`,
      met: ratio <= TARGETS.ratio,
    });
  }
  const large = sizes.find((s) => s.registry.size === TARGETS.largeSize);
  const lib = large && summarize(large.library, large.registry.size);
  checks.push({ target: `${fmtInt(TARGETS.largeSize)} tenants in ≤ ${TARGETS.largeSeconds} s`, measured: lib ? `${fmt(lib.seconds, 1)} s` : 'not measured', met: lib && lib.seconds <= TARGETS.largeSeconds });
  checks.push({ target: `${fmtInt(TARGETS.largeSize)} tenants in ≤ ${TARGETS.largeRssMiB / 1024} GiB peak RSS`, measured: lib ? `${fmt(lib.rssMiB, 0)} MiB` : 'not measured', met: lib && lib.rssMiB <= TARGETS.largeRssMiB });
  const sel = select && select.registry.size === TARGETS.largeSize ? summarize(select.runs, 1) : undefined;
  checks.push({ target: `select 1 of ${fmtInt(TARGETS.largeSize)} in ≤ ${TARGETS.selectSeconds} s`, measured: sel ? `${fmt(sel.seconds)} s (${fmt(sel.rssMiB, 0)} MiB)` : 'not measured', met: sel && sel.seconds <= TARGETS.selectSeconds });
  const par = large && summarize(large.parallel, large.registry.size);
  const parRatio = par && lib ? par.seconds / lib.seconds : undefined;
  checks.push({
    target: `parallel mode (${PARALLEL_PROCESSES} processes) ≤ ${TARGETS.parallelRatio}× the single-process time at ${fmtInt(TARGETS.largeSize)} tenants`,
    measured: parRatio !== undefined ? `${fmt(parRatio)} (${fmt(par!.seconds, 1)} s vs ${fmt(lib!.seconds, 1)} s)` : 'not measured',
    met: parRatio !== undefined ? parRatio <= TARGETS.parallelRatio : undefined,
  });
  return checks;
}

const HEAD = ['tenants', 'stacks', 'library s', 'baseline s', 'difference s', 'ratio', 'ratio range', 'CPU ratio', 'library ms/tenant', 'baseline ms/tenant', 'library peak RSS MiB', 'baseline peak RSS MiB', 'runs'];

function rows(sizes: readonly SizeResult[]): string[][] {
  return sizes.map((s) => {
    const l = summarize(s.library, s.registry.size);
    const b = summarize(s.baseline, s.registry.size);
    return [
      fmtInt(s.registry.size), fmtInt(s.stacks), fmt(l.seconds), fmt(b.seconds), fmt(l.seconds - b.seconds), fmt(l.seconds / b.seconds), ratioRange(s), fmt(l.cpuSeconds / b.cpuSeconds),
      fmt(l.msPerTenant), fmt(b.msPerTenant), fmt(l.rssMiB, 0), fmt(b.rssMiB, 0), String(s.library.length),
    ];
  });
}

const PARALLEL_HEAD = ['tenants', 'processes', 'single process s', 'parallel s', 'ratio', 'ratio range', 'single CPU s', 'parallel CPU s', 'single peak RSS MiB', 'parallel peak RSS MiB', 'runs'];

function parallelRows(sizes: readonly SizeResult[]): string[][] {
  return sizes.map((s) => {
    const l = summarize(s.library, s.registry.size);
    const p = summarize(s.parallel, s.registry.size);
    const ratios = s.parallel.map((m, i) => m.wallMs / s.library[i].wallMs);
    return [
      fmtInt(s.registry.size), String(PARALLEL_PROCESSES), fmt(l.seconds), fmt(p.seconds), fmt(p.seconds / l.seconds), `${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}`,
      fmt(l.cpuSeconds), fmt(p.cpuSeconds), fmt(l.rssMiB, 0), fmt(p.rssMiB, 0), String(s.parallel.length),
    ];
  });
}

/** Lowest and highest library/baseline ratio of one run (a back-to-back pair): how noisy the machine was. */
function ratioRange(s: SizeResult): string {
  const ratios = s.library.map((l, i) => l.wallMs / s.baseline[i].wallMs);
  return `${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}`;
}

const markdownTable = (head: readonly string[], body: readonly string[][]) =>
  [head, head.map(() => '---:'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');

const verdict = (met: boolean | undefined) => (met === undefined ? 'not measured' : met ? 'met' : '**missed**');

interface RunContext {
  readonly sizes: readonly SizeResult[];
  readonly select: SelectResult | undefined;
  readonly checks: readonly TargetCheck[];
  readonly verifiedSize: number;
  readonly workBase: string;
  readonly loadBefore: string;
  readonly loadAfter: string;
}

function markdown(c: RunContext): string {
  const mix = c.sizes.map((s) => `${fmtInt(s.registry.size)}: ${s.registry.byModel.silo} silo / ${s.registry.byModel.bridge} bridge / ${s.registry.byModel.pool} pool, ${fmtInt(s.registry.liveTenants)} with a stack`).join('; ');
  const secs = (ms: readonly Measurement[], key: 'wallMs' | 'cpuMs') => ms.map((m) => fmt(m[key] / 1000)).join(', ');
  const raw = c.sizes.map(
    (s) =>
      `- ${fmtInt(s.registry.size)} tenants: library ${secs(s.library, 'wallMs')} s (CPU ${secs(s.library, 'cpuMs')}); baseline ${secs(s.baseline, 'wallMs')} s (CPU ${secs(s.baseline, 'cpuMs')}); ` +
      `parallel ${secs(s.parallel, 'wallMs')} s (CPU ${secs(s.parallel, 'cpuMs')})`,
  );
  let selectTable = '';
  if (c.select) {
    const s = summarize(c.select.runs, 1);
    raw.push(`- select 1 of ${fmtInt(c.select.registry.size)}: ${secs(c.select.runs, 'wallMs')} s (CPU ${secs(c.select.runs, 'cpuMs')})`);
    selectTable = `Selecting one tenant (\`synthesize({ root, outdir, select: '${c.select.registry.selectSlug}' })\`, a silo tenant; the whole registry is still loaded and validated):

${markdownTable(['registry', 'time s', 'CPU s', 'peak RSS MiB', 'runs'], [[`${fmtInt(c.select.registry.size)} tenants`, fmt(s.seconds), fmt(s.cpuSeconds), fmt(s.rssMiB, 0), String(c.select.runs.length)]])}
`;
  }
  return `## Synth

Written by \`npm run bench:synth\` (bench/synth-bench.ts) on ${new Date().toISOString().slice(0, 10)}.

**Machine:** ${machineDescription()}. Load average (1, 5, 15 min) before: ${c.loadBefore}; after: ${c.loadAfter}.

**Method.**

- For each size a registry is generated into a temporary project (the repository's platform.yaml
  and one \`tenants/<slug>.yaml\` per tenant; seeded, ids derived from the index, every record valid).
  Mix: 10% silo, 30% bridge, 60% pool; plans per model (free only on pool); HIPAA/PCI silo tenants in
  us-east-1 with residency us; about 20% of the others in eu-central-1 with residency eu, most of them
  GDPR; about 1% offboarded (no stack). ${mix}.
- *library*: a fresh \`node\` process calling \`synthesize({ root, outdir })\` from
  dist/lib/app/synthesize.js: registry load and validation, stacks, policy aspects, synth, atomic output.
- *baseline*: a fresh \`node\` process that reads the same YAML with \`yaml\` (no validation) and creates
  the same resources directly with cdktf and \`@cdktf/provider-aws\` deep imports (bench/baseline.ts),
  one TerraformStack per tenant with a stack plus the platform stacks.
- The ${fmtInt(c.verifiedSize)}-tenant outputs of both are compared stack by stack (same stacks; same
  resource types and counts; same resource attributes, outputs, providers and backends once cdktf
  metadata and logical ids are set aside); the benchmark fails if they diverge.
- Time is wall time from spawn to exit seen by the parent (node start-up and module loading
  included); CPU time (user + system) and peak RSS of the child come from ${USAGE_SOURCE}.
  Library and baseline runs alternate in ABBA order with \`sync\` before each; each cell is the
  median of the runs; ms/tenant = time / tenants in the registry; *difference* = library − baseline
  (what the library adds: a fixed start-up part plus a part per tenant). *ratio* is library/baseline wall
  time (the target); *ratio range* the lowest and highest ratio of a single run (library and baseline
  back to back), i.e. the noise of the machine; *CPU ratio* the same as *ratio* for CPU time.
- Registries and outputs live in ${c.workBase}${c.workBase === '/dev/shm' ? ' (tmpfs), so that writeback and journal stalls of a shared disk stay out of the comparison' : ''}; \`BENCH_TMPDIR\` picks another place.

${markdownTable(HEAD, rows(c.sizes))}

${selectTable}
**Parallel mode** (\`synthesizeParallel({ root, outdir, processes: ${PARALLEL_PROCESSES} })\`, what \`cdktf synth\` and \`npm start\` run; bench/run-library-parallel.ts), against
the single process above (*library*), in the same runs: the registry is loaded and validated once and sent to ${PARALLEL_PROCESSES} synthesis
processes over IPC; each synthesizes slices of the tenants (at most 250) into its own directory; the slices are merged into one
atomic output. Its output is checked byte-identical to the single process's at every size. Time, CPU time (every process) and peak RSS
(the largest process) as above; *ratio* is parallel/single-process wall time, *ratio range* the lowest and highest of a single run.

${markdownTable(PARALLEL_HEAD, parallelRows(c.sizes))}

Raw runs:

${raw.join('\n')}

**Targets** (missing one is reported, it does not fail the benchmark):

| target | measured | status |
|---|---|---|
${c.checks.map((t) => `| ${t.target} | ${t.measured} | ${verdict(t.met)} |`).join('\n')}
`;
}

function main(): number {
  const sizes = parseSizes();
  const base = workBase();
  const work = mkdtempSync(join(base, 'tenancy-bench-'));
  const cleanup = () => rmSync(work, { recursive: true, force: true });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }

  const loadBefore = load();
  console.log(`bench:synth: sizes ${sizes.join(', ')}; ${machineDescription()}; load ${loadBefore}; work dir ${work}`);
  if (loadavg()[0] > 1) console.warn('bench:synth: warning: the machine is busy (1-minute load > 1); wall times will be noisy');
  const results: SizeResult[] = [];
  let select: SelectResult | undefined;
  try {
    for (const size of sizes) {
      const registry = writeRegistry(join(work, `registry-${size}`), size, join(REPO_ROOT, 'platform.yaml'));
      console.log(`${fmtInt(size)} tenants (${registry.byModel.silo} silo, ${registry.byModel.bridge} bridge, ${registry.byModel.pool} pool; ${fmtInt(registry.liveTenants)} with a stack):`);
      // The smallest registry is checked: it still covers every silo variant (see SILO_COVERAGE).
      results.push(benchSize(registry, work, size === sizes[0]));
      if (size === sizes[sizes.length - 1]) select = benchSelect(registry, work);
      rmSync(registry.root, { recursive: true, force: true });
    }
  } catch (e) {
    if (e instanceof EquivalenceError) {
      console.error(`\nbench:synth FAILED: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    cleanup();
  }
  const loadAfter = load();

  const style = process.stdout.isTTY ? {} : { head: [], border: [] };
  const table = new Table({ style, head: HEAD });
  table.push(...rows(results));
  console.log(`\n${table.toString()}`);
  const parallelTable = new Table({ style, head: PARALLEL_HEAD });
  parallelTable.push(...parallelRows(results));
  console.log(`parallel mode:\n${parallelTable.toString()}`);
  if (select) {
    const s = summarize(select.runs, 1);
    console.log(`select ${select.registry.selectSlug} (1 of ${fmtInt(select.registry.size)}): ${fmt(s.seconds)} s (CPU ${fmt(s.cpuSeconds)} s), ${fmt(s.rssMiB, 0)} MiB peak RSS`);
  }
  const checks = checkTargets(results, select);
  for (const c of checks) console.log(`target ${c.target}: ${c.measured} -> ${verdict(c.met).replace(/\*/g, '')}`);

  const isDefault = sizes.join() === DEFAULT_SIZES.join();
  const writeDocs = process.env.BENCH_DOCS ? process.env.BENCH_DOCS !== '0' : isDefault;
  if (writeDocs) {
    writeBenchmarkSection(DOC_FILE, 'synth', markdown({ sizes: results, select, checks, verifiedSize: sizes[0], workBase: base, loadBefore, loadAfter }));
    console.log(`wrote ${relative(process.cwd(), DOC_FILE)}`);
  } else {
    console.log('docs/BENCHMARKS.md not written (custom sizes; set BENCH_DOCS=1 to write it)');
  }
  return 0;
}

process.exitCode = main();
