// `npm start`: validate the registry, synthesize every stack, and print a summary per tenant.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { PhaseReporter } from '../lib/app/progress';
import { reportFailure } from '../lib/app/report-failure';
import { synthesizeParallel } from '../lib/app/synthesize-parallel';
import { printPolicyNoteLines } from '../lib/policy/print';
import { bridgeShardFillLines } from '../lib/registry/bridge-shards';
import { estimateMonthlyCost } from '../lib/pricing/estimate-cost';

function resourceCount(outdir: string, stack: string): number {
  const json = JSON.parse(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8')) as { resource?: Record<string, Record<string, unknown>> };
  return Object.values(json.resource ?? {}).reduce((n, byName) => n + Object.keys(byName).length, 0);
}

async function main(): Promise<number> {
  const started = Date.now();
  // Phase lines and progress on stderr (stdout is the summary below, which pipelines parse).
  const synth = new PhaseReporter({ prefix: 'npm start' }).begin('synth');
  let result;
  try {
    result = await synthesizeParallel({
      onProgress: (p) => synth.progress(
        p.kind === 'registry'
          ? `registry loaded: ${p.selectedTenants} of ${p.tenants} tenants selected, ${p.processes} process${p.processes === 1 ? '' : 'es'}`
          : `${p.done}/${p.total} slices`,
      ),
    });
  } catch (e) {
    synth.fail();
    return reportFailure(e);
  }
  synth.end();
  const { registry, tenantStacks, platformStacks, outdir } = result;

  // Plain borders and no colour when piped (CI logs, pipelines).
  const style = process.stdout.isTTY ? {} : { head: [], border: [] };
  const table = new Table({ style, head: ['tenant', 'model', 'plan', 'region', 'status', 'resources', 'est. $/month', 'basis'] });
  let total = 0;
  for (const tenant of registry.tenants) {
    const stack = tenantStacks.get(tenant.slug);
    const cost = estimateMonthlyCost(tenant, registry);
    total += cost.monthlyUsd;
    table.push([
      tenant.slug, tenant.model, tenant.plan, tenant.region, tenant.status,
      stack ? String(resourceCount(outdir, stack)) : '-',
      cost.monthlyUsd.toFixed(2), cost.basis,
    ]);
  }
  console.log(table.toString());
  for (const stack of platformStacks) console.log(`${stack}: ${resourceCount(outdir, stack)} resources (shared)`);
  for (const line of bridgeShardFillLines(registry)) console.log(line);
  printPolicyNoteLines(result.policyNotes);
  const written = platformStacks.length + tenantStacks.size;
  console.log(
    `${registry.tenants.length} tenants, ${written} stacks synthesized to ${relative(process.cwd(), outdir) || outdir}/stacks ` +
      `in ${((Date.now() - started) / 1000).toFixed(1)} s (${result.processes} process${result.processes === 1 ? '' : 'es'}); estimated tenant cost $${total.toFixed(2)}/month.`,
  );
  return 0;
}

void main().then((code) => {
  process.exitCode = code;
});
