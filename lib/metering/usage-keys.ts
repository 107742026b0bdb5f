import { UUID_PATTERN } from '../runtime/tenant-context';

/**
 * Where usage lives in Redis, and the windows it is reported in. A counter per tenant, dimension
 * and UTC hour (`tenancy:usage:<tenant id>:<dimension>:<YYYY-MM-DDTHH>`), and per hour an index
 * set of the `<tenant id>:<dimension>` pairs that have one, so the reporter reads an hour without
 * scanning the keyspace.
 */
export const USAGE_KEY_PREFIX = 'tenancy:usage';

/** The name of the hourly usage-report job on the lifecycle queue (lib/metering/usage-job.ts). */
export const USAGE_REPORT_JOB = 'usage-report';

/** The dimensions the platform meters: each a Stripe meter (lib/billing/meters.ts). */
export { USAGE_DIMENSIONS, type UsageDimension } from '../billing/meters';

/** A dimension name as it appears in keys and identifiers: never a `:` or anything a tenant chose. */
export const DIMENSION_PATTERN = /^[a-z][a-z0-9_]{0,39}$/;

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** `2026-12-03T14` for any instant in that UTC hour. */
export function hourLabel(ms: number): string {
  return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS).toISOString().slice(0, 13);
}

/** The start (ms) of the UTC hour an `hourLabel` names. */
export function hourStart(label: string): number {
  const ms = Date.parse(`${label}:00:00.000Z`);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(label) || Number.isNaN(ms)) throw new Error(`not an hour label: ${JSON.stringify(label)}`);
  return ms;
}

export function counterKey(tenantId: string, dimension: string, hour: string, prefix = USAGE_KEY_PREFIX): string {
  return `${prefix}:${tenantId}:${dimension}:${hour}`;
}

export function hourIndexKey(hour: string, prefix = USAGE_KEY_PREFIX): string {
  return `${prefix}:hour:${hour}`;
}

/** A tenant id usable in a key: a lowercase UUID (anything else is refused, never turned into a key). */
export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value) && value === value.toLowerCase();
}

/**
 * The meter event identifier of a report: `<tenant id>:<dimension>:<window>` where the window is
 * the hour label (api calls), the day (`2026-12-03`, storage) or the month (`2026-12`, seats).
 * Stripe dedupes events by identifier; the control plane keys its report records by it.
 */
export function reportIdentifier(tenantId: string, dimension: string, window: string): string {
  return `${tenantId}:${dimension}:${window}`;
}

/** The UTC day [start, end) before the one `ms` is in… or containing `ms` with `offset` 0. */
export function dayWindow(ms: number, offsetDays = 0): { start: number; end: number; label: string } {
  const start = (Math.floor(ms / DAY_MS) + offsetDays) * DAY_MS;
  return { start, end: start + DAY_MS, label: new Date(start).toISOString().slice(0, 10) };
}

/** The UTC calendar month containing `ms`, shifted by `offsetMonths`. */
export function monthWindow(ms: number, offsetMonths = 0): { start: number; end: number; label: string } {
  const d = new Date(ms);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offsetMonths, 1);
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offsetMonths + 1, 1);
  return { start, end, label: new Date(start).toISOString().slice(0, 7) };
}
