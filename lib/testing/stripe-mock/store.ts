import { apiErrors } from './errors';
import { newId } from './ids';
import type { Params } from './params';

/** A stored API object, in the JSON shape Stripe returns (API version 2026-10-28.endive). */
export interface StripeObject {
  id: string;
  object: string;
  [field: string]: any;
}

type Renderer = (account: MockAccount, obj: StripeObject) => Record<string, unknown>;

/**
 * The objects of one Stripe account. Every API key is its own account here (objects and
 * idempotency keys are scoped to it), so tests that use different keys never see each other.
 */
export class MockAccount {
  private readonly objects = new Map<string, StripeObject>();
  private readonly order = new Map<string, number>();
  private readonly searchableAt = new Map<string, number>();
  private sequence = 0;
  /** Payment methods that decline every charge (pm_card_chargeDeclined). Never rendered. */
  readonly decliningPaymentMethods = new Set<string>();
  /** Sees every event the account emits (the server delivers them to webhook endpoints: webhooks.ts). */
  onEvent?: (event: StripeObject) => void;

  constructor(
    readonly apiKey: string,
    private readonly renderers: Readonly<Record<string, Renderer>>,
    private readonly searchLagSeconds: number,
    /** The Stripe-Version of events' payloads (the server's). */
    private readonly apiVersion = '2026-10-28.endive',
  ) {}

  /** Stores a new object; it becomes searchable after the server's search lag. */
  add<T extends StripeObject>(obj: T, now: number): T {
    this.objects.set(obj.id, obj);
    this.order.set(obj.id, ++this.sequence);
    this.searchableAt.set(obj.id, now + this.searchLagSeconds);
    return obj;
  }

  /**
   * Marks an object as changed. Nothing to do for search: changes show at once here, only new
   * objects lag (real search may briefly still match old values).
   */
  touch(_obj: StripeObject, _now: number): void {}

  /**
   * Records an event (`evt_…`, retrievable at /v1/events) with a snapshot of `obj` as the API
   * renders it now, and hands it to {@link onEvent}. `previous` holds the changed fields' old
   * values (`data.previous_attributes` of `*.updated` events).
   */
  emit(type: string, obj: StripeObject, now: number, previous?: Record<string, unknown>): StripeObject {
    const event = this.add<StripeObject>(
      {
        id: newId('evt', 24),
        object: 'event',
        api_version: this.apiVersion,
        created: now,
        data: { object: this.render(obj), ...(previous ? { previous_attributes: previous } : {}) },
        livemode: false,
        pending_webhooks: 0,
        request: { id: null, idempotency_key: null },
        type,
      },
      now,
    );
    this.onEvent?.(event);
    return event;
  }

  get(id: string, object?: string): StripeObject | undefined {
    const o = this.objects.get(id);
    return o && (object === undefined || o.object === object) ? o : undefined;
  }

  /** Every object of a type, newest first (Stripe's list order). */
  all(object: string): StripeObject[] {
    return [...this.objects.values()].filter((o) => o.object === object).sort((a, b) => this.order.get(b.id)! - this.order.get(a.id)!);
  }

  isSearchable(obj: StripeObject, now: number): boolean {
    return (this.searchableAt.get(obj.id) ?? 0) <= now;
  }

  /** The JSON of an object as the API returns it (a copy: callers may expand it). */
  render(obj: StripeObject): Record<string, unknown> {
    const renderer = this.renderers[obj.object];
    return renderer ? renderer(this, obj) : structuredClone(obj);
  }

  /** A list response (`object: 'list'`) with Stripe's cursor pagination over `items` (newest first). */
  list(items: readonly StripeObject[], params: Params, url: string, kind: string): Record<string, unknown> {
    const limit: number = params.limit ?? 10;
    let start = 0;
    let end = items.length;
    if (params.starting_after !== undefined) {
      const i = items.findIndex((o) => o.id === params.starting_after);
      if (i < 0) throw apiErrors.resourceMissing(kind, params.starting_after, 'starting_after');
      start = i + 1;
    } else if (params.ending_before !== undefined) {
      const i = items.findIndex((o) => o.id === params.ending_before);
      if (i < 0) throw apiErrors.resourceMissing(kind, params.ending_before, 'ending_before');
      end = i;
      start = Math.max(0, end - limit);
    }
    const page = items.slice(start, Math.min(end, start + limit));
    const hasMore = params.ending_before !== undefined ? start > 0 : start + limit < end;
    return { object: 'list', data: page.map((o) => this.render(o)), has_more: hasMore, url };
  }

  /**
   * Applies `expand[]` to a rendered response: each dotted path names a field holding an id,
   * which is replaced by that object (through lists with `data.`), as Stripe does.
   */
  expand(response: Record<string, unknown>, paths: readonly string[] | undefined): Record<string, unknown> {
    for (const path of paths ?? []) this.expandPath(response, path.split('.'), path);
    return response;
  }

  private expandPath(node: unknown, segments: readonly string[], full: string): void {
    if (Array.isArray(node)) {
      for (const n of node) this.expandPath(n, segments, full);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const [head, ...rest] = segments;
    if (!(head in record)) throw apiErrors.invalid(`This property cannot be expanded (${full}).`, { param: 'expand' });
    const value = record[head];
    if (rest.length > 0) {
      this.expandPath(value, rest, full);
      return;
    }
    if (typeof value === 'string') {
      const target = this.objects.get(value);
      if (!target) throw apiErrors.invalid(`This property cannot be expanded (${full}).`, { param: 'expand' });
      record[head] = this.render(target);
    } else if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
      throw apiErrors.invalid(`This property cannot be expanded (${full}).`, { param: 'expand' });
    }
  }
}

/** Sets or removes metadata keys (`null` unsets one; `null` for the whole hash clears it). */
export function mergeMetadata(current: Record<string, string>, update: Record<string, string | null> | null | undefined): Record<string, string> {
  if (update === undefined) return current;
  if (update === null) return {};
  const out = { ...current };
  for (const [k, v] of Object.entries(update)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Metadata for a new object (unset keys dropped). */
export function newMetadata(update: Record<string, string | null> | null | undefined): Record<string, string> {
  return mergeMetadata({}, update);
}

/**
 * The old values of the top-level fields that differ between two renderings of an object: an
 * `*.updated` event's `data.previous_attributes`.
 */
export function previousAttributes(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) out[key] = before[key] ?? null;
  }
  return out;
}
