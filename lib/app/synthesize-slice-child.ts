/**
 * A process of a parallel synthesis (lib/app/synthesize-parallel.ts): receives the registry
 * once, then synthesizes the slices it is sent, one at a time, each into the directory named in
 * the request, and reports the stacks (or why it failed). Exits when the parent disconnects.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { PolicyViolationError } from '../policy/policy-gate';
import { policyNoteLines } from '../policy/print';
import type { Registry } from '../registry/load-registry';
import type { Tenant } from '../registry/tenant-schema';
import type { Selection } from '../../stacks/select-tenants';
import { policyWarnings, synthesizeInto } from './synthesize';
import type { SliceFailure, SliceRequest, SliceResult, ToSliceChild } from './synthesize-parallel';

let registry: Registry | undefined;
let bySlug = new Map<string, Tenant>();

process.once('disconnect', () => process.exit(0));
process.on('message', (message: ToSliceChild) => {
  if (message.type === 'registry') {
    registry = message.registry;
    bySlug = new Map(registry.tenants.map((t) => [t.slug, t]));
    return;
  }
  process.send!(synthesizeSlice(message));
});

function synthesizeSlice(request: SliceRequest): SliceResult | SliceFailure {
  if (!registry) return { type: 'failed', index: request.index, message: 'no registry was sent before the slice' };
  const selection: Selection = { tenants: request.slugs.map((slug) => bySlug.get(slug)!), platformRegions: request.platformRegions, partial: true };
  try {
    const stacks = synthesizeInto(request.outdir, registry, selection);
    return {
      type: 'done',
      index: request.index,
      platformStacks: stacks.platform.map((s) => s.node.id),
      tenantStacks: stacks.tenants.map((s) => [s.tenant.slug, s.node.id]),
      warnings: policyWarnings(stacks),
      notes: policyNoteLines(stacks),
    };
  } catch (e) {
    if (e instanceof PolicyViolationError) return { type: 'failed', index: request.index, message: e.message, findings: [...e.findings] };
    const message = e instanceof Error ? e.message : String(e);
    return { type: 'failed', index: request.index, message, culprit: culpritOf(registry, selection, request.outdir) };
  }
}

/**
 * Which stack of a failed slice fails on its own (the first one), so the error names it and not
 * only the slice: each stack is synthesized alone into a scratch directory. Only on failure.
 */
function culpritOf(registry: Registry, selection: Selection, outdir: string): string | undefined {
  const units: [string, Selection][] = [
    ...selection.platformRegions.map((region): [string, Selection] => [`the platform stack of ${region}`, { tenants: [], platformRegions: [region], partial: true }]),
    ...selection.tenants.map((tenant): [string, Selection] => [`tenant ${tenant.slug}`, { tenants: [tenant], platformRegions: [], partial: true }]),
  ];
  for (const [name, alone] of units) {
    const scratch = mkdtempSync(`${outdir}.isolate-`);
    try {
      synthesizeInto(scratch, registry, alone);
    } catch {
      return name;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return undefined;
}
