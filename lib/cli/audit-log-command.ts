import Table from 'cli-table3';
import { InvalidArgumentError, type Command } from 'commander';
import { guardedClient } from '../db/lost-connections';
import { describeVerification, parseAnchor, verifyAuditChain, type ChainAnchor } from '../control-plane/audit-chain';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { defaultIo, usageFor } from './lifecycle-options';
import type { MigrateCommandIo } from './migrate-command';

/**
 * `tenancy audit log`: the control plane's audit log. Without --verify, the newest entries. With
 * --verify, the hash chain recomputed from the first entry (lib/control-plane/audit-chain.ts):
 * exit 0 intact (count and head printed: record the head to pass as --anchor later), 1 the first
 * broken link (entry id, expected and found), 2 bad usage. Read-only; any role with SELECT on
 * tenancy.audit_log and tenancy.audit_log_head can run it.
 */
interface AuditLogCliOptions {
  controlPlaneUrl?: string;
  verify?: boolean;
  anchor?: ChainAnchor;
  limit: number;
  insecureNoTls?: boolean;
  json?: boolean;
}

const limitOf = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) throw new InvalidArgumentError('expected an integer from 1 to 10000');
  return Number(value);
};
const anchorOf = (value: string): ChainAnchor => {
  try {
    return parseAnchor(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

/** Registers `log` on the `audit` command. */
export function registerAuditLogCommand(audit: Command, io: MigrateCommandIo = defaultIo()): void {
  audit
    .command('log')
    .description('The control plane\'s audit log: the newest entries, or --verify its hash chain (a broken link: exit 1).')
    .option('--control-plane-url <url>', 'control-plane database (env TENANCY_CONTROL_PLANE_URL)')
    .option('--verify', 'recompute the hash chain from the first entry; report the first broken link')
    .option('--anchor <seq:hash>', 'with --verify: a head recorded earlier (seq:hash) that the chain must still contain', anchorOf)
    .option('--limit <n>', 'entries listed without --verify', limitOf, 50)
    .option('--insecure-no-tls', 'connect without TLS, local development only (env TENANCY_INSECURE_NO_TLS=1)')
    .option('--json', 'JSON on stdout')
    .action(async (options: AuditLogCliOptions) => {
      const usage = usageFor('audit log', io);
      const url = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
      if (!url) usage('no control plane: give --control-plane-url or set TENANCY_CONTROL_PLANE_URL');
      if (options.anchor && !options.verify) usage('--anchor needs --verify');
      let config;
      try {
        config = controlPlaneConnection(url!, { env: io.env, insecureNoTls: options.insecureNoTls || undefined, applicationName: 'tenancy-audit-log' });
      } catch (e) {
        if (e instanceof ControlPlaneTlsError) usage(e.message);
        throw e;
      }
      const client = guardedClient(config);
      try {
        await client.connect();
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        if (options.verify) {
          const result = await verifyAuditChain(client, { anchor: options.anchor });
          io.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${describeVerification(result)}\n`);
          process.exitCode = result.ok ? 0 : 1;
        } else {
          const rows = (await client.query(
            `SELECT id::text, seq::text, at, actor, action, tenant_id::text AS "tenantId", details, hash FROM tenancy.audit_log ORDER BY seq DESC LIMIT $1`,
            [options.limit],
          )).rows;
          io.stdout.write(options.json ? `${JSON.stringify(rows, null, 2)}\n` : renderEntries(rows));
          process.exitCode = 0;
        }
        await client.query('COMMIT');
      } catch (e) {
        io.stderr.write(`tenancy audit log: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
}

function renderEntries(rows: { seq: string; at: Date; actor: string; action: string; tenantId: string | null; details: unknown }[]): string {
  const table = new Table({ head: ['seq', 'at', 'actor', 'action', 'tenant', 'details'], style: { head: [], border: [] }, wordWrap: true, colWidths: [8, 26, 24, 26, 38, 60] });
  for (const r of rows) table.push([r.seq, r.at.toISOString(), r.actor, r.action, r.tenantId ?? '-', JSON.stringify(r.details)]);
  return `${table.toString()}\n`;
}
