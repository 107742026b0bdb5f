import Table from 'cli-table3';
import type { StepRecord } from '../onboarding/lifecycle-store';

/**
 * The erasure report of an offboarding: what each step removed or verified, from the results
 * recorded in the control plane (so it can be printed again later, e.g. for a data-subject or
 * auditor request).
 */
export interface ErasureReport {
  readonly tenant: { id: string; slug: string; model: string };
  readonly status: string;
  readonly finishedAt: string | null;
  readonly items: readonly { step: string; at: string; summary: string; result: Record<string, unknown> }[];
}

export function erasureReport(tenant: { id: string; slug: string; model: string }, status: string, finishedAt: Date | null, steps: readonly StepRecord[]): ErasureReport {
  return {
    tenant,
    status,
    finishedAt: finishedAt ? finishedAt.toISOString() : null,
    items: steps.map((s) => ({ step: s.step, at: new Date(s.finishedAt).toISOString(), summary: summarize(s.step, s.result), result: s.result })),
  };
}

function summarize(step: string, r: Record<string, unknown>): string {
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  switch (step) {
    case 'begin':
      return `status ${String(r.previousStatus)} → offboarding`;
    case 'cancel-billing':
      return Object.entries(r).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ');
    case 'snapshot':
      return r.snapshot ? `final snapshot ${String(r.snapshot)}` : String(r.skipped ?? '');
    case 'lift-deletion-protection':
      return `deletion protection off on ${String(r.instance)}`;
    case 'erase-schema':
      return `schema ${String(r.schema)} ${r.schemaDropped ? 'dropped' : 'already gone'} (${Object.entries(obj(r.tables)).map(([t, n]) => `${t}: ${n} rows`).join(', ') || 'no tables'}); role ${String(r.role)} ${r.roleDropped ? 'dropped' : 'already gone'}`;
    case 'erase-rows':
      // In deletion order (the recorded JSON object does not keep key order).
      return `${String(r.total)} rows deleted (${(Array.isArray(r.order) ? (r.order as string[]) : Object.keys(obj(r.deleted)).sort()).map((t) => `${t}: ${String(obj(r.deleted)[t])}`).join(', ')})`;
    case 'destroy-stack':
      return `${String(r.stack)} destroyed (${String(r.mode)})${r.databaseDropped !== undefined ? `; database ${r.databaseDropped ? 'dropped' : 'already gone'}` : ''}; namespace ${String(r.namespace)} removed with the stack`;
    case 'verify-erasure':
      if (r.remaining && r.verifiedAs) return `0 rows left in ${Object.keys(obj(r.remaining)).sort().join(', ')}, counted as ${String(r.verifiedAs)} (bypasses RLS)`;
      if ('schemaExists' in r) return `schema exists: ${String(r.schemaExists)}, role exists: ${String(r.roleExists)}`;
      return String(r.database ?? JSON.stringify(r));
    case 'registry':
      return `registry entry ${String(r.outcome)} (${String(r.source)})`;
    case 'finalize':
      return 'status offboarded; domains released (the slug is free for a new tenant); tenant.offboarded event in the outbox; audit trail kept';
    default:
      return JSON.stringify(r).slice(0, 120);
  }
}

export function renderErasureReport(report: ErasureReport): string {
  const table = new Table({ head: ['step', 'finished', 'erased / verified'], style: { head: [], border: [] }, colWidths: [26, 26, 80], wordWrap: true });
  for (const item of report.items) table.push([item.step, item.at, item.summary]);
  return `Erasure report: ${report.tenant.slug} (${report.tenant.id}, ${report.tenant.model}): ${report.status}${report.finishedAt ? ` at ${report.finishedAt}` : ''}\n${table.toString()}\n`;
}
