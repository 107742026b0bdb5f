import { resolve } from 'node:path';
import { App } from 'cdktf';
import { buildStacks, type TenancyStacks } from '../../stacks/build-stacks';
import { SELECT_CONTEXT, SELECT_ENV, selectStacks, type Selection } from '../../stacks/select-tenants';
import { loadRegistry, type Registry } from '../registry/load-registry';
import type { PolicyFinding } from '../policy/policy-rule';
import { commitStaged, discardStaged, stagingDir } from './atomic-outdir';
import { withoutCreationStackTraces } from './creation-stack-traces';

export interface SynthesizeOptions {
  /** Project root holding platform.yaml and tenants/. @default process.cwd() */
  readonly root?: string;
  /** Output directory. @default $CDKTF_OUTDIR (set by the cdktf CLI), else <root>/cdktf.out */
  readonly outdir?: string;
  /** Stack selector ("acme,platform"). @default $TENANCY_SELECT, else the tenancySelect context, else everything */
  readonly select?: string;
  /**
   * An already loaded and validated registry (another registry source, e.g. the control-plane
   * database: lib/onboarding). @default loadRegistry({ root })
   */
  readonly registry?: Registry;
}

export interface SynthesizeResult {
  readonly registry: Registry;
  readonly selection: Selection;
  readonly stacks: TenancyStacks;
  readonly outdir: string;
  readonly warnings: readonly PolicyFinding[];
}

/**
 * Validates the registry, builds the selected stacks and synthesizes them. Everything is
 * written to a staging directory first and swapped in only when the whole synth succeeded:
 * a bad registry, a construct error or a policy error leaves the previous output untouched
 * (or none at all).
 */
export function synthesize(options: SynthesizeOptions = {}): SynthesizeResult {
  const root = resolve(options.root ?? process.cwd());
  const outdir = outdirOf(root, options);
  const registry = options.registry ?? loadRegistry({ root });
  const selection = selectStacks(registry, selectorOf(options));

  const staged = stagingDir(outdir);
  try {
    const stacks = synthesizeInto(staged, registry, selection);
    commitStaged(staged, outdir, leaveOrphansToCli(options));
    return { registry, selection, stacks, outdir, warnings: policyWarnings(stacks) };
  } catch (e) {
    discardStaged(staged);
    throw e;
  }
}

/**
 * Builds the selected stacks and synthesizes them into `dir` as it is: no staging, the caller
 * owns the directory and replaces the output atomically (synthesize() above; the slices of a
 * parallel synthesis, lib/app/synthesize-parallel.ts).
 */
export function synthesizeInto(dir: string, registry: Registry, selection: Selection): TenancyStacks {
  const restoreStackTraces = withoutCreationStackTraces();
  try {
    const app = new App({ outdir: dir });
    const stacks = buildStacks(app, registry, selection);
    app.synth();
    return stacks;
  } finally {
    restoreStackTraces();
  }
}

/** The policy warnings of synthesized stacks (errors fail the synth instead). */
export function policyWarnings(stacks: TenancyStacks): PolicyFinding[] {
  return [...stacks.platform, ...stacks.tenants].flatMap((s) => s.policy.findings.filter((f) => f.level === 'warning'));
}

/** Under the cdktf CLI (CDKTF_OUTDIR set, no explicit outdir) the CLI removes the stacks no longer synthesized. */
export function leaveOrphansToCli(options: Pick<SynthesizeOptions, 'outdir'>): boolean {
  return process.env.CDKTF_OUTDIR !== undefined && options.outdir === undefined;
}

/** The stack selector in effect: the option, else $TENANCY_SELECT, else the tenancySelect context. */
export function selectorOf(options: Pick<SynthesizeOptions, 'select'>): string | undefined {
  return options.select ?? process.env[SELECT_ENV] ?? readContextSelector();
}

/** The output directory in effect: the option, else $CDKTF_OUTDIR, else <root>/cdktf.out. */
export function outdirOf(root: string, options: Pick<SynthesizeOptions, 'outdir'>): string {
  return resolve(root, options.outdir ?? process.env.CDKTF_OUTDIR ?? 'cdktf.out');
}

function readContextSelector(): string | undefined {
  const raw = process.env.CDKTF_CONTEXT_JSON;
  if (!raw) return undefined;
  const value = (JSON.parse(raw) as Record<string, unknown>)[SELECT_CONTEXT];
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
}
