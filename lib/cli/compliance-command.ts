import { relative } from 'node:path';
import { Option, type Command } from 'commander';
import { writeComplianceReport } from '../compliance/write-report';
import type { PoolConnection } from '../compliance/evidence';
import { RegistryError } from '../registry/registry-error';
import type { CliOutput } from './audit-command';

export interface ComplianceReportCliOptions {
  readonly out?: string;
  readonly tenant?: readonly string[];
  readonly controlPlaneUrl?: string;
  readonly poolUrl?: readonly string[];
  readonly root?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
const collectOne = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `tenancy compliance report`: the evidence report of the compliance packs (lib/compliance).
 * Exit code: 0 every stack passes, 1 a rule fails, the live evidence shows a problem or could not
 * be collected, 2 bad usage or an invalid registry. The report is written in every case but 2.
 */
export function registerComplianceCommand(program: Command): Command {
  const compliance = program.command('compliance').description('Compliance packs (tenancy, SOC 2, HIPAA, PCI DSS, GDPR) and their evidence.');
  compliance
    .command('report')
    .description('Write, per tenant, the packs applied and every rule\'s outcome (Markdown and JSON), with live data-plane evidence when connections are given, and a fleet summary index.html.')
    .option('--out <dir>', 'directory to write (replaced)', 'compliance-report')
    .option('--tenant <slug>', 'only this tenant (repeatable, or comma-separated); default: every live tenant and the platform stacks', collect)
    .addOption(new Option('--control-plane-url <url>', 'control-plane database: registration, migration state, hook runs, audit-log coverage').env('TENANCY_CONTROL_PLANE_URL'))
    .option('--pool-url <url>', 'pool database for the RLS audit and pool migration state; "<region>=<url>" for one region\'s pool (repeatable)', collectOne)
    .option('--root <dir>', 'project root with platform.yaml and tenants/', process.cwd())
    .action(async (opts: ComplianceReportCliOptions) => {
      process.exitCode = await runComplianceReport(opts);
    });
  return compliance;
}

/** Parses "--pool-url" values: a URL, or region=URL. */
export function parsePoolUrls(values: readonly string[]): PoolConnection[] {
  return values.map((v) => {
    const m = /^([a-z]{2}-[a-z]+-[0-9])=(.+)$/.exec(v);
    return m ? { region: m[1], url: m[2] } : { url: v };
  });
}

/** The command's work, for tests and embedding; resolves to the exit code. */
export async function runComplianceReport(opts: ComplianceReportCliOptions, out: CliOutput = process): Promise<number> {
  const usage = (message: string) => {
    out.stderr.write(`tenancy compliance report: ${message}\n`);
    return 2;
  };
  const pools = parsePoolUrls(opts.poolUrl ?? []);
  for (const url of [opts.controlPlaneUrl, ...pools.map((p) => p.url)]) {
    if (url === undefined) continue;
    try {
      const u = new URL(url);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('not a postgres:// URL');
    } catch {
      return usage('--control-plane-url and --pool-url take postgres:// URLs');
    }
  }
  let result;
  try {
    result = await writeComplianceReport({ root: opts.root, outDir: opts.out, tenants: opts.tenant, controlPlaneUrl: opts.controlPlaneUrl, pools });
  } catch (e) {
    if (e instanceof RegistryError) {
      out.stderr.write(`${e.message}\n`);
      return 2;
    }
    if (e instanceof Error && /no tenant with slug or id|is offboarded and has no stack/.test(e.message)) return usage(e.message);
    throw e;
  }
  const { fleet } = result;
  const rel = relative(process.cwd(), result.outDir);
  const where = rel && !rel.startsWith('..') ? rel : result.outDir;
  for (const row of fleet.rows) {
    const c = row.totals;
    out.stdout.write(`${row.status.toUpperCase().padEnd(10)} ${row.stack.padEnd(32)} ${row.packs.join(',').padEnd(26)} ${c.pass} pass, ${c.fail} fail, ${c.suppressed} suppressed, ${c.warning} warnings; evidence: ${row.evidence}\n`);
  }
  out.stdout.write(`${fleet.totals.stacks} stacks, ${fleet.totals.failing} failing${fleet.totals.incomplete ? `, ${fleet.totals.incomplete} with incomplete evidence` : ''}; report in ${where}/ (index.html, fleet.json, one .md and .json per stack)\n`);
  return fleet.totals.failing > 0 || fleet.totals.incomplete > 0 ? 1 : 0;
}
