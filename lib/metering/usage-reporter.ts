import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { meterFor, USAGE_DIMENSIONS } from '../billing/meters';
import type { SeatCounter } from './seat-usage';
import { storageGigabytes, type StorageMeasure } from './storage-usage';
import { counterKey, dayWindow, HOUR_MS, hourIndexKey, hourLabel, hourStart, isTenantId, monthWindow, reportIdentifier, USAGE_KEY_PREFIX, type UsageDimension } from './usage-keys';
import { UsageReportStore, type NewUsageReport, type UsageReport } from './usage-store';

/** The meter event name of each dimension (the meters the catalog creates, lib/billing/meters.ts). */
export const DEFAULT_METER_EVENT_NAMES: Readonly<Record<UsageDimension, string>> = Object.fromEntries(
  USAGE_DIMENSIONS.map((d) => [d, meterFor(d).eventName]),
) as Record<UsageDimension, string>;

/** Stripe keeps a meter event identifier for at least 24 hours; a send older than this is not repeated blindly. */
export const STRIPE_IDENTIFIER_WINDOW_MS = 23 * HOUR_MS;

export interface UsageReporterOptions {
  /** The control plane (tenants, their Stripe customers, tenancy.usage_reports). */
  readonly pool: Pool;
  /** Where UsageRecorder counts (api calls). */
  readonly redis: Redis;
  readonly stripe: Stripe;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /**
   * An hour (day, month) is closed, and reported, this long after it ended: recorders flush
   * late counts meanwhile (their flush interval, a short Redis outage). @default 300000 (5 min)
   */
  readonly closeAfterMs?: number;
  /** Closed hours looked at (unreported ones are reported late): at most the counters' ttl. @default 168 (7 days) */
  readonly lookbackHours?: number;
  /** Meter events in flight at once. @default 16 */
  readonly concurrency?: number;
  /** Windows marked sending, sent, then marked reported together (one control-plane write each way). @default 500 */
  readonly sendBatchSize?: number;
  /** Storage, reported for the last closed UTC day; without it storage is not reported. */
  readonly storage?: StorageMeasure;
  /** Active seats, reported for the last closed calendar month; without it seats are not reported. */
  readonly seats?: SeatCounter;
  readonly eventNames?: Partial<Record<UsageDimension, string>>;
  /** @default "tenancy:usage" (UsageRecorder's keyPrefix) */
  readonly keyPrefix?: string;
  /** Progress of a run (the CLI prints it; tests count it). */
  readonly onProgress?: (event: { dimension: string; identifier: string; outcome: 'reported' | 'failed' }) => void;
}

export interface DimensionSummary {
  /** Windows sent and accepted in this run. */
  reported: number;
  /** Their values added up. */
  value: number;
  /** Windows found reported by an earlier run (not sent again). */
  alreadyReported: number;
  failed: number;
  unconfirmed: number;
}

export interface UsageRunSummary {
  readonly skipped?: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly windows: { readonly hours: readonly string[]; readonly day?: string; readonly month?: string };
  readonly dimensions: Readonly<Record<string, DimensionSummary>>;
  /** Tenants with usage but no Stripe customer recorded (nothing sent for them). */
  readonly noCustomer: readonly string[];
  /** The first errors (identifier: message). */
  readonly errors: readonly string[];
}

interface TenantRow {
  readonly id: string;
  readonly slug: string;
  readonly status: string;
  readonly customer: string | null;
}

interface Candidate {
  readonly tenant: TenantRow;
  readonly dimension: UsageDimension;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly identifier: string;
}

/** Only one report run at a time per control plane (a session lock: a killed run's ends with its connection). */
const RUN_LOCK = "hashtext('tenancy.usage-report')";

/**
 * Reports usage to Stripe Meters, each window once:
 *
 * 1. the windows: every closed UTC hour of the lookback that has API-call counters (the hour index
 *    sets UsageRecorder writes), the last closed UTC day (storage), the last closed month (seats);
 * 2. windows the control plane has already reported are skipped; new ones are measured and
 *    recorded `pending` (value and customer fixed from then on) before anything is sent;
 * 3. each pending (or failed) window is sent as a meter event with identifier
 *    `<tenant id>:<dimension>:<window>` and then marked `reported`.
 *
 * A crash anywhere leaves rows `pending`; the next run sends them again with the same identifier
 * and value, which Stripe dedupes; a reported row is never sent again. See README "Metering".
 */
export class UsageReporter {
  private readonly store: UsageReportStore;
  private readonly now: () => number;
  private readonly closeAfterMs: number;
  private readonly lookbackHours: number;
  private readonly prefix: string;
  private readonly eventNames: Record<UsageDimension, string>;

  constructor(private readonly options: UsageReporterOptions) {
    this.store = new UsageReportStore(options.pool);
    this.now = options.now ?? Date.now;
    this.closeAfterMs = options.closeAfterMs ?? 300_000;
    this.lookbackHours = options.lookbackHours ?? 168;
    this.prefix = options.keyPrefix ?? USAGE_KEY_PREFIX;
    this.eventNames = { ...DEFAULT_METER_EVENT_NAMES, ...options.eventNames };
    if (!Number.isSafeInteger(this.lookbackHours) || this.lookbackHours < 1) throw new Error(`lookbackHours ${this.lookbackHours} must be a positive integer`);
    if (!Number.isSafeInteger(this.closeAfterMs) || this.closeAfterMs < 0) throw new Error(`closeAfterMs ${this.closeAfterMs} must be a non-negative integer`);
  }

  async run(): Promise<UsageRunSummary> {
    const startedAt = new Date().toISOString();
    const lock = await this.options.pool.connect();
    let locked = false;
    try {
      locked = (await lock.query(`SELECT pg_try_advisory_lock(${RUN_LOCK}) AS ok`)).rows[0].ok === true;
      if (!locked) {
        return { skipped: 'another usage report is running', startedAt, finishedAt: new Date().toISOString(), windows: { hours: [] }, dimensions: {}, noCustomer: [], errors: [] };
      }
      return await this.runLocked(startedAt);
    } finally {
      if (locked) await lock.query(`SELECT pg_advisory_unlock(${RUN_LOCK})`).catch(() => undefined);
      lock.release();
    }
  }

  private async runLocked(startedAt: string): Promise<UsageRunSummary> {
    const closedBefore = this.now() - this.closeAfterMs;
    const tenants = await this.tenants();
    const summary: Record<string, DimensionSummary> = {};
    const noCustomer = new Set<string>();
    const errors: string[] = [];
    const dim = (d: string) => (summary[d] ??= { reported: 0, value: 0, alreadyReported: 0, failed: 0, unconfirmed: 0 });

    // 1. The windows.
    const hours = this.closedHours(closedBefore);
    const apiCalls = await this.apiCallCandidates(hours, tenants, noCustomer);
    const day = dayWindow(closedBefore, -1);
    const month = monthWindow(closedBefore, -1);
    const billable = [...tenants.values()].filter((t) => t.status !== 'offboarded');
    const perTenant = (dimension: UsageDimension, w: { start: number; end: number; label: string }): Candidate[] =>
      billable.flatMap((tenant) => {
        if (!tenant.customer) return [];
        return [{ tenant, dimension, windowStart: w.start, windowEnd: w.end, identifier: reportIdentifier(tenant.id, dimension, w.label) }];
      });
    const storage = this.options.storage ? perTenant('storage_gb', day) : [];
    const seats = this.options.seats ? perTenant('active_seats', month) : [];
    const candidates = [...apiCalls.candidates, ...storage, ...seats];

    // 2. What is recorded already; measure and record the rest.
    let recorded = await this.store.byIdentifiers(candidates.map((c) => c.identifier));
    const fresh = candidates.filter((c) => {
      const r = recorded.get(c.identifier);
      return !r || (r.value === null && r.status === 'failed');
    });
    const values = new Map<string, number | Error>();
    for (const c of fresh) if (c.dimension === 'api_calls') values.set(c.identifier, apiCalls.values.get(c.identifier) ?? 0);
    await this.measureStorage(fresh.filter((c) => c.dimension === 'storage_gb'), values);
    await this.measureSeats(fresh.filter((c) => c.dimension === 'active_seats'), values);
    const rows: NewUsageReport[] = fresh.map((c) => {
      const v = values.get(c.identifier);
      return {
        tenantId: c.tenant.id,
        dimension: c.dimension,
        windowStart: c.windowStart,
        windowEnd: c.windowEnd,
        eventName: this.eventNames[c.dimension],
        value: typeof v === 'number' ? v : null,
        stripeCustomerId: c.tenant.customer!,
        identifier: c.identifier,
        ...(v instanceof Error ? { error: `measuring ${c.dimension}: ${v.message}` } : {}),
      };
    });
    await this.store.record(rows);
    if (fresh.length > 0) recorded = await this.store.byIdentifiers(candidates.map((c) => c.identifier));

    // 3. Send what is not reported.
    const toSend: UsageReport[] = [];
    const unconfirmed: { identifier: string; error: string; status: 'unconfirmed' }[] = [];
    for (const c of candidates) {
      const r = recorded.get(c.identifier);
      if (!r) continue;
      if (r.status === 'reported') {
        if (!fresh.includes(c)) dim(c.dimension).alreadyReported++;
        continue;
      }
      if (r.value === null) {
        dim(c.dimension).failed++;
        if (errors.length < 20) errors.push(`${r.identifier}: ${r.error ?? 'not measured'}`);
        continue;
      }
      if (r.status === 'unconfirmed' || (r.firstSentAt && this.now() - r.firstSentAt.getTime() > STRIPE_IDENTIFIER_WINDOW_MS)) {
        dim(c.dimension).unconfirmed++;
        if (r.status !== 'unconfirmed') {
          unconfirmed.push({
            identifier: r.identifier,
            status: 'unconfirmed',
            error: `first sent ${r.firstSentAt!.toISOString()} without a confirmed answer, longer ago than Stripe keeps identifiers: check the meter's event summaries for this window before sending it again`,
          });
        }
        continue;
      }
      toSend.push(r);
    }
    await this.store.markFailed(unconfirmed);
    await this.send(toSend, dim, errors);
    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      windows: { hours, ...(storage.length > 0 ? { day: day.label } : {}), ...(seats.length > 0 ? { month: month.label } : {}) },
      dimensions: summary,
      noCustomer: [...noCustomer].sort(),
      errors,
    };
  }

  private async tenants(): Promise<Map<string, TenantRow>> {
    const { rows } = await this.options.pool.query<TenantRow>('SELECT id::text AS id, slug, status, stripe_customer_id AS customer FROM tenancy.tenants');
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** The closed hours of the lookback, oldest first. */
  private closedHours(closedBefore: number): string[] {
    const lastClosedStart = Math.floor(closedBefore / HOUR_MS) * HOUR_MS - HOUR_MS;
    const hours: string[] = [];
    for (let i = this.lookbackHours - 1; i >= 0; i--) hours.push(hourLabel(lastClosedStart - i * HOUR_MS));
    return hours;
  }

  /** API-call windows with counters in Redis, and their counts. */
  private async apiCallCandidates(hours: readonly string[], tenants: Map<string, TenantRow>, noCustomer: Set<string>): Promise<{ candidates: Candidate[]; values: Map<string, number> }> {
    const redis = this.options.redis;
    const members = await Promise.all(hours.map((h) => redis.smembers(hourIndexKey(h, this.prefix))));
    const candidates: Candidate[] = [];
    const keys: string[] = [];
    hours.forEach((hour, i) => {
      for (const member of members[i]) {
        const [tenantId, dimension] = member.split(':');
        if (dimension !== 'api_calls' || !isTenantId(tenantId)) continue;
        const tenant = tenants.get(tenantId);
        if (!tenant?.customer) {
          noCustomer.add(tenant?.slug ?? tenantId);
          continue;
        }
        const start = hourStart(hour);
        candidates.push({ tenant, dimension: 'api_calls', windowStart: start, windowEnd: start + HOUR_MS, identifier: reportIdentifier(tenantId, 'api_calls', hour) });
        keys.push(counterKey(tenantId, 'api_calls', hour, this.prefix));
      }
    });
    const values = new Map<string, number>();
    for (let i = 0; i < keys.length; i += 1000) {
      const counts = await redis.mget(...keys.slice(i, i + 1000));
      counts.forEach((v, j) => values.set(candidates[i + j].identifier, v === null ? 0 : Number(v)));
    }
    return { candidates, values };
  }

  private async measureStorage(candidates: readonly Candidate[], values: Map<string, number | Error>): Promise<void> {
    const storage = this.options.storage;
    if (!storage || candidates.length === 0) return;
    const tenants = candidates.map((c) => ({ id: c.tenant.id, slug: c.tenant.slug }));
    const bytes = storage.bytesOfMany
      ? await storage.bytesOfMany(tenants)
      : new Map(await Promise.all(tenants.map(async (t) => [t.id, await storage.bytes(t).catch((e: Error) => e)] as const)));
    for (const c of candidates) {
      const b = bytes.get(c.tenant.id);
      values.set(c.identifier, typeof b === 'number' ? storageGigabytes(b) : (b ?? new Error('not measured')));
    }
  }

  private async measureSeats(candidates: readonly Candidate[], values: Map<string, number | Error>): Promise<void> {
    const seats = this.options.seats;
    if (!seats || candidates.length === 0) return;
    const limit = pLimit(this.options.concurrency ?? 16);
    await Promise.all(candidates.map((c) => limit(async () => {
      try {
        values.set(c.identifier, await seats.count({ id: c.tenant.id, slug: c.tenant.slug }));
      } catch (e) {
        values.set(c.identifier, e instanceof Error ? e : new Error(String(e)));
      }
    })));
  }

  private async send(reports: readonly UsageReport[], dim: (d: string) => DimensionSummary, errors: string[]): Promise<void> {
    const limit = pLimit(this.options.concurrency ?? 16);
    const size = this.options.sendBatchSize ?? 500;
    if (!Number.isSafeInteger(size) || size < 1) throw new Error(`sendBatchSize ${size} must be a positive integer`);
    for (let i = 0; i < reports.length; i += size) {
      const chunk = reports.slice(i, i + size);
      await this.store.markSending(chunk.map((r) => r.identifier));
      const ok: string[] = [];
      const failed: { identifier: string; error: string }[] = [];
      const definitive: string[] = [];
      await Promise.all(chunk.map((r) => limit(async () => {
        try {
          await this.options.stripe.billing.meterEvents.create({
            event_name: r.eventName,
            identifier: r.identifier,
            // The window's last second: inside the window, and as recent as it can be (Stripe takes
            // timestamps from the last 35 days).
            timestamp: Math.floor(r.windowEnd.getTime() / 1000) - 1,
            payload: { stripe_customer_id: r.stripeCustomerId, value: r.value! },
          });
          ok.push(r.identifier);
          dim(r.dimension).reported++;
          dim(r.dimension).value += Number(r.value);
          this.options.onProgress?.({ dimension: r.dimension, identifier: r.identifier, outcome: 'reported' });
        } catch (e) {
          if (isDuplicateIdentifier(e)) {
            // Sent by an earlier run whose record did not say so yet (it died after the send).
            ok.push(r.identifier);
            dim(r.dimension).alreadyReported++;
            return;
          }
          const message = e instanceof Error ? e.message : String(e);
          failed.push({ identifier: r.identifier, error: message });
          if (isDefinitiveRefusal(e)) definitive.push(r.identifier);
          dim(r.dimension).failed++;
          if (errors.length < 20) errors.push(`${r.identifier}: ${message}`);
          this.options.onProgress?.({ dimension: r.dimension, identifier: r.identifier, outcome: 'failed' });
        }
      })));
      await this.store.markReported(ok);
      await this.store.markFailed(failed);
      // Refused outright: nothing was recorded at Stripe, so the dedupe window does not apply to the next try.
      if (definitive.length > 0) await this.options.pool.query('UPDATE tenancy.usage_reports SET first_sent_at = NULL WHERE identifier = ANY($1::text[]) AND status = \'failed\'', [definitive]);
    }
  }
}

/** Stripe answering that the identifier was used already (400, param identifier, no code): the event is at Stripe. */
function isDuplicateIdentifier(e: unknown): boolean {
  if (!(e instanceof Stripe.errors.StripeError)) return false;
  return e.statusCode === 400 && /^An event already exists with identifier /.test(e.message);
}

/** A 4xx other than a conflict or rate limit: Stripe did not record the event. */
function isDefinitiveRefusal(e: unknown): boolean {
  if (!(e instanceof Stripe.errors.StripeError)) return false;
  const status = e.statusCode ?? 0;
  return status >= 400 && status < 500 && status !== 409 && status !== 429;
}
