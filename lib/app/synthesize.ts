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
  const outdir = resolve(root, options.outdir ?? process.env.CDKTF_OUTDIR ?? 'cdktf.out');
  const registry = options.registry ?? loadRegistry({ root });
  const contextSelect = readContextSelector();
  const selection = selectStacks(registry, options.select ?? process.env[SELECT_ENV] ?? contextSelect);

  const staged = stagingDir(outdir);
  const restoreStackTraces = withoutCreationStackTraces();
  try {
    const app = new App({ outdir: staged });
    const stacks = buildStacks(app, registry, selection);
    app.synth();
    commitStaged(staged, outdir, process.env.CDKTF_OUTDIR !== undefined && options.outdir === undefined);
    const warnings = [...stacks.platform, ...stacks.tenants].flatMap((s) => s.policy.findings.filter((f) => f.level === 'warning'));
    return { registry, selection, stacks, outdir, warnings };
  } catch (e) {
    discardStaged(staged);
    throw e;
  } finally {
    restoreStackTraces();
  }
}

function readContextSelector(): string | undefined {
  const raw = process.env.CDKTF_CONTEXT_JSON;
  if (!raw) return undefined;
  const value = (JSON.parse(raw) as Record<string, unknown>)[SELECT_CONTEXT];
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
}
