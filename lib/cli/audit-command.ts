import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { guardedClient } from '../db/lost-connections';
import { normalizePolicyExpression } from '../pool/provision';
import { auditRls, RlsAuditUsageError, type RlsAuditReport } from '../pool/rls-audit';
import { CUSTOM_SETTING_PATTERN, SQL_NAME_PATTERN } from '../runtime/tenant-context';

export interface AuditRlsCliOptions {
  readonly databaseUrl?: string;
  readonly appRole?: string;
  readonly schema?: string;
  readonly tenantSetting?: string;
  readonly json?: boolean;
}

export interface CliOutput {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * `tenancy audit rls`: the RLS audit of the pool database (lib/pool/rls-audit.ts), as a table or
 * as JSON evidence. Exit code: 0 clean, 1 a problem found (or the audit could not run), 2 bad usage.
 */
export function registerAuditCommand(program: Command): Command {
  const audit = program.command('audit').description('Security audits of the data plane (evidence for SOC 2).');
  audit
    .command('rls')
    .description('List every relation of the pool schema and fail on any that is neither a tenant table (tenant_id, forced RLS, as the application role meets it) nor declared shared (read-only); warn on UNIQUE without tenant_id and on sequences.')
    .addOption(new Option('--database-url <url>', 'PostgreSQL URL of the pool database').env('DATABASE_URL'))
    .option('--app-role <role>', 'role the application logs in as (e.g. pool_app)')
    .option('--schema <schema>', 'schema of the pool tables', 'pool')
    .option('--tenant-setting <name>', 'setting the policies must read', 'app.tenant_id')
    .option('--json', 'print the report as JSON (evidence: timestamp, database, roles, findings)')
    .action(async (opts: AuditRlsCliOptions) => {
      process.exitCode = await runRlsAudit(opts);
    });
  return audit;
}

/** The command's work, for tests and embedding; resolves to the exit code. */
export async function runRlsAudit(opts: AuditRlsCliOptions, out: CliOutput = process): Promise<number> {
  const usage = (message: string) => {
    out.stderr.write(`tenancy audit rls: ${message}\n`);
    return 2;
  };
  if (!opts.databaseUrl) return usage('--database-url (or DATABASE_URL) is required');
  if (!opts.appRole) return usage('--app-role is required');
  if (!SQL_NAME_PATTERN.test(opts.appRole)) return usage(`--app-role ${JSON.stringify(opts.appRole)} is not a lowercase SQL identifier`);
  const schema = opts.schema ?? 'pool';
  if (!SQL_NAME_PATTERN.test(schema)) return usage(`--schema ${JSON.stringify(schema)} is not a lowercase SQL identifier`);
  const tenantSetting = opts.tenantSetting ?? 'app.tenant_id';
  if (!CUSTOM_SETTING_PATTERN.test(tenantSetting)) return usage(`--tenant-setting ${JSON.stringify(tenantSetting)} must look like app.tenant_id`);
  let endpoint: { host?: string; port?: number };
  try {
    const url = new URL(opts.databaseUrl);
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error('not a postgres:// URL');
    endpoint = { host: url.hostname || undefined, port: url.port ? Number(url.port) : undefined };
  } catch (e) {
    return usage(`--database-url is not a PostgreSQL URL (${(e as Error).message})`);
  }

  const client = guardedClient({ connectionString: opts.databaseUrl });
  let report: RlsAuditReport;
  try {
    await client.connect();
    await client.query('BEGIN READ ONLY');
    report = await auditRls(client, { appRole: opts.appRole, schema, tenantSetting, endpoint });
    await client.query('COMMIT');
  } catch (e) {
    if (e instanceof RlsAuditUsageError) return usage(e.message);
    out.stderr.write(`tenancy audit rls: the audit could not run: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }

  out.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
  return report.ok ? 0 : 1;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'NO');

/** The human-readable report: a header with the evidence fields, one row per table and per view, the problems. */
export function renderReport(report: RlsAuditReport): string {
  const where = [report.database.host, report.database.port].filter(Boolean).join(':');
  const lines = [
    `RLS audit of ${report.database.name}${where ? ` at ${where}` : ''} (PostgreSQL ${report.database.serverVersion}), schema ${report.schema}`,
    `generated ${report.generatedAt}, audited as ${report.auditedAs}, application role ${report.appRole.name}` +
      ` (superuser: ${report.appRole.superuser ? 'YES' : 'no'}, BYPASSRLS: ${report.appRole.bypassRls ? 'YES' : 'no'}${report.appRole.memberOf.length ? `, member of ${report.appRole.memberOf.join(', ')}` : ''})`,
    `expected policy: USING (${report.expectedPolicy}) WITH CHECK (same)`,
  ];
  const plain = { style: { head: [], border: [] } };
  const expected = normalizePolicyExpression(report.expectedPolicy);
  const expr = (e: string | null, none: string) => (e === null ? none : normalizePolicyExpression(e) === expected ? 'expected' : e);
  const tables = new Table({ head: ['table', 'owner', 'RLS', 'forced', 'policies (command: USING / WITH CHECK)', 'index led by tenant_id', 'app role bypass', 'ok'], wordWrap: true, colWidths: [null, null, null, null, 48, 36, 30, null] as any, ...plain });
  for (const t of report.tables) {
    tables.push([
      t.table,
      t.owner,
      yesNo(t.rlsEnabled),
      yesNo(t.rlsForced),
      t.policies.length === 0 ? '(none)' : t.policies.map((p) => `${p.name} ${p.permissive ? '' : 'RESTRICTIVE '}${p.command} to ${p.roles.join(',')}: ${expr(p.using, '-')} / ${expr(p.withCheck, 'no WITH CHECK')}`).join('\n'),
      t.tenantIndex ? `${t.tenantIndex.name} ${/ USING \w+ (\(.*\))/.exec(t.tenantIndex.definition)?.[1] ?? ''}`.trim() : 'NONE',
      t.appRoleBypass.length ? t.appRoleBypass.join('\n') : 'no',
      t.problems.length ? 'NO' : 'yes',
    ]);
  }
  const inventory = new Table({ head: ['relation', 'kind', 'coverage', 'ok'], ...plain });
  for (const r of report.relations) {
    inventory.push([
      r.relation,
      r.partitionOf ? `${r.kind} (partition of ${r.partitionOf})` : r.kind,
      r.coverage === 'shared' ? `shared (read-only for ${report.appRole.name})` : r.coverage === 'tenant' ? 'tenant (tenant_id, RLS)' : r.coverage === 'uncovered' ? 'UNCOVERED' : r.coverage,
      r.problems.length ? 'NO' : r.warnings.length ? 'warning' : 'yes',
    ]);
  }
  const out = [
    ...lines,
    report.relations.length ? `every relation of ${report.schema}:\n${inventory.toString()}` : `schema ${report.schema} is empty`,
    report.tables.length ? tables.toString() : `no table in ${report.schema} has a tenant_id column`,
  ];
  if (report.views.length) {
    const views = new Table({ head: ['view', 'kind', 'owner', 'security_invoker', 'over', 'ok'], ...plain });
    for (const v of report.views) views.push([v.view, v.kind, v.owner, yesNo(v.securityInvoker), v.over.join('\n'), v.problems.length ? 'NO' : 'yes']);
    out.push(views.toString());
  }
  if (report.warnings.length) out.push(`${report.warnings.length} warning${report.warnings.length > 1 ? 's' : ''} (reported; the audit does not fail on them):\n${report.warnings.map((w) => `  - ${w}`).join('\n')}`);
  out.push(report.ok ? 'OK: no problem found' : `${report.problems.length} problem${report.problems.length > 1 ? 's' : ''}:\n${report.problems.map((p) => `  - ${p}`).join('\n')}`);
  return `${out.join('\n')}\n`;
}
