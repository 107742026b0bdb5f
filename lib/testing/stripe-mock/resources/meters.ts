import { apiErrors, StripeApiError } from '../errors';
import { newId } from '../ids';
import { p, type Params } from '../params';
import type { HandlerContext, Route } from '../route';
import type { MockAccount, StripeObject } from '../store';

/**
 * Billing Meters (API version 2025-03-31.basil and later): meters (create, retrieve, update,
 * deactivate, reactivate, list), meter events (`POST /v1/billing/meter_events`) and meter event
 * summaries (`GET /v1/billing/meters/:id/event_summaries`).
 *
 * Meter events are checked when they arrive, with the error codes Stripe uses for meter events
 * (`no_meter`, `archived_meter`, `meter_event_no_customer_defined`,
 * `meter_event_customer_not_found`, `meter_event_invalid_value`,
 * `meter_event_value_too_many_digits`, `timestamp_too_far_in_past`, `timestamp_in_future`),
 * as 400 invalid_request_errors. Real Stripe validates the request synchronously too, but may
 * report some of these later (a `v1.billing.meter.error_report_triggered` event) instead of in
 * the response: a client must not count on a 400 to learn that usage was dropped.
 *
 * An `identifier` is unique per account for 24 hours after its first use (Stripe: "a rolling
 * period of at least 24 hours"): a second event with it is refused with Stripe's 400 "An event
 * already exists with identifier …" and `stripe-should-retry: false`, and is not counted.
 * Summaries aggregate at once (Stripe aggregates asynchronously, so its summaries are
 * eventually consistent).
 */

const FORMULAS = ['count', 'last', 'sum'] as const;
const WINDOWS = ['day', 'hour'] as const;
/** Meter events may be up to 35 calendar days old and up to 5 minutes in the future. */
const MAX_AGE_SECONDS = 35 * 86_400;
const MAX_FUTURE_SECONDS = 5 * 60;
/** How long an identifier blocks a second event with it. */
export const IDENTIFIER_WINDOW_SECONDS = 24 * 3600;
/** Stripe rejects values with more than 15 significant digits (changelog 2026-04-22.dahlia). */
const MAX_VALUE_DIGITS = 15;

/** An accepted meter event, as stored. */
export interface StoredMeterEvent {
  readonly event_name: string;
  readonly identifier: string;
  readonly payload: Readonly<Record<string, string>>;
  readonly timestamp: number;
  readonly created: number;
  /** The meter it counted for and the customer it counted against. */
  readonly meter: string;
  readonly customer: string;
  readonly value: number;
}

/** The meter events of one account: in arrival order, by meter and customer, and by identifier. */
class MeterEventLog {
  readonly all: StoredMeterEvent[] = [];
  readonly byMeterCustomer = new Map<string, StoredMeterEvent[]>();
  /** identifier → when it was first used (server clock). */
  readonly identifiers = new Map<string, number>();
  /** event_name → meter id (one meter per event name), so an event finds its meter without a scan. */
  readonly meterByEventName = new Map<string, string>();
}

const logs = new WeakMap<MockAccount, MeterEventLog>();

function logOf(account: MockAccount): MeterEventLog {
  let log = logs.get(account);
  if (!log) {
    log = new MeterEventLog();
    logs.set(account, log);
  }
  return log;
}

/** The accepted meter events of an account in arrival order, as the API returned them (for tests and benchmarks). */
export function meterEventsOf(account: MockAccount): Record<string, unknown>[] {
  return logOf(account).all.map(renderMeterEvent);
}

function renderMeterEvent(e: StoredMeterEvent): Record<string, unknown> {
  return { object: 'billing.meter_event', created: e.created, event_name: e.event_name, identifier: e.identifier, livemode: false, payload: { ...e.payload }, timestamp: e.timestamp };
}

function meterError(code: string, message: string, param?: string): StripeApiError {
  return apiErrors.invalid(message, { code, ...(param !== undefined ? { param } : {}) });
}

export function requireMeter(account: MockAccount, id: string, param: string, status = 400): StripeObject {
  const meter = account.get(id, 'billing.meter');
  if (!meter) throw apiErrors.resourceMissing('billing.meter', id, param, status);
  return meter;
}

function createMeter({ account, params, now }: HandlerContext): Record<string, unknown> {
  const taken = account.all('billing.meter').find((m) => m.event_name === params.event_name);
  // Stripe: an event name belongs to one meter of the account, even a deactivated one.
  if (taken) throw apiErrors.invalid(`A meter with event_name '${params.event_name}' already exists (${taken.id}). Each meter needs a unique event_name.`, { code: 'resource_already_exists', param: 'event_name' });
  const meter = account.add<StripeObject>(
    {
      id: newId('mtr_test', 32),
      object: 'billing.meter',
      created: now,
      customer_mapping: { event_payload_key: params.customer_mapping?.event_payload_key ?? 'stripe_customer_id', type: params.customer_mapping?.type ?? 'by_id' },
      default_aggregation: { formula: params.default_aggregation.formula },
      display_name: params.display_name,
      event_name: params.event_name,
      event_time_window: params.event_time_window ?? null,
      livemode: false,
      status: 'active',
      status_transitions: { deactivated_at: null },
      updated: now,
      value_settings: { event_payload_key: params.value_settings?.event_payload_key ?? 'value' },
    },
    now,
  );
  logOf(account).meterByEventName.set(meter.event_name, meter.id);
  return account.render(meter);
}

function setStatus(account: MockAccount, id: string, active: boolean, now: number): Record<string, unknown> {
  const meter = requireMeter(account, id, 'id', 404);
  if ((meter.status === 'active') === active) throw apiErrors.invalid(`The meter ${meter.id} is already ${meter.status}.`, { param: 'id' });
  meter.status = active ? 'active' : 'inactive';
  meter.status_transitions = { deactivated_at: active ? null : now };
  meter.updated = now;
  account.touch(meter, now);
  return account.render(meter);
}

/** A meter event value: a decimal number of at most 15 significant digits (Stripe sends it as a string). */
function parseValue(raw: string | undefined, key: string): number {
  const param = `payload[${key}]`;
  if (raw === undefined) throw meterError('meter_event_invalid_value', `The meter event payload is missing the value key '${key}' (the meter's value_settings[event_payload_key]).`, param);
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(raw.trim())) throw meterError('meter_event_invalid_value', `The value in the event payload must be a number. Received '${raw}'.`, param);
  const digits = raw.replace(/[^0-9]/g, '').replace(/^0+/, '').replace(/0+$/, '');
  if (digits.length > MAX_VALUE_DIGITS) throw meterError('meter_event_value_too_many_digits', `The value in the event payload can have at most ${MAX_VALUE_DIGITS} digits. Received ${raw}.`, param);
  return Number(raw);
}

function createMeterEvent({ account, params, now }: HandlerContext): Record<string, unknown> {
  const eventName: string = params.event_name;
  const payload: Record<string, string> = params.payload;
  const meterId = logOf(account).meterByEventName.get(eventName);
  const meter = meterId === undefined ? undefined : account.get(meterId, 'billing.meter');
  if (!meter) throw meterError('no_meter', `No active meter was found for event_name '${eventName}'.`, 'event_name');
  if (meter.status !== 'active') throw meterError('archived_meter', `The meter ${meter.id} for event_name '${eventName}' is deactivated and accepts no meter events.`, 'event_name');
  const customerKey: string = meter.customer_mapping.event_payload_key;
  const customerId = payload[customerKey];
  if (customerId === undefined) throw meterError('meter_event_no_customer_defined', `The meter event payload is missing the customer key '${customerKey}' (the meter's customer_mapping[event_payload_key]).`, `payload[${customerKey}]`);
  const customer = account.get(customerId, 'customer');
  if (!customer || customer.deleted) throw meterError('meter_event_customer_not_found', `No such customer: '${customerId}'`, `payload[${customerKey}]`);
  const valueKey: string = meter.value_settings.event_payload_key;
  // `count` counts events; their value is not read.
  const value = meter.default_aggregation.formula === 'count' ? 1 : parseValue(payload[valueKey], valueKey);
  const timestamp: number = params.timestamp ?? now;
  if (timestamp < now - MAX_AGE_SECONDS) throw meterError('timestamp_too_far_in_past', `The timestamp ${timestamp} is more than 35 days in the past; meter events must be within the past 35 calendar days.`, 'timestamp');
  if (timestamp > now + MAX_FUTURE_SECONDS) throw meterError('timestamp_in_future', `The timestamp ${timestamp} is more than 5 minutes in the future.`, 'timestamp');

  const log = logOf(account);
  const identifier: string = params.identifier ?? newId('mev', 20).slice(4);
  const firstUsed = log.identifiers.get(identifier);
  if (firstUsed !== undefined && now - firstUsed < IDENTIFIER_WINDOW_SECONDS) {
    throw new StripeApiError(400, { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.`, param: 'identifier' }, { 'stripe-should-retry': 'false' });
  }
  log.identifiers.set(identifier, now);
  const event: StoredMeterEvent = { event_name: eventName, identifier, payload: { ...payload }, timestamp, created: now, meter: meter.id, customer: customerId, value };
  log.all.push(event);
  const key = `${meter.id}\u0000${customerId}`;
  let bucket = log.byMeterCustomer.get(key);
  if (!bucket) log.byMeterCustomer.set(key, (bucket = []));
  bucket.push(event);
  return renderMeterEvent(event);
}

/** `mtrusg_test_…`: the same meter, customer and window always get the same id (pagination cursors). */
function summaryId(meter: string, customer: string, start: number, end: number): string {
  return `mtrusg_test_${Buffer.from(`${meter}:${customer}:${start}:${end}`).toString('hex')}`;
}

function aggregate(formula: string, events: readonly StoredMeterEvent[]): number {
  if (formula === 'count') return events.length;
  if (formula === 'sum') return events.reduce((s, e) => s + e.value, 0);
  // last: the latest event by timestamp; of equal timestamps the one received last.
  return events.reduce((a, b) => (b.timestamp >= a.timestamp ? b : a)).value;
}

function listEventSummaries({ account, params, id }: HandlerContext): Record<string, unknown> {
  const meter = requireMeter(account, id, 'id', 404);
  const customer = account.get(params.customer, 'customer');
  if (!customer) throw apiErrors.resourceMissing('customer', params.customer, 'customer');
  const start: number = params.start_time;
  const end: number = params.end_time;
  const window: 'hour' | 'day' | undefined = params.value_grouping_window;
  const step = window === 'day' ? 86_400 : window === 'hour' ? 3600 : 60;
  for (const [name, t] of [['start_time', start], ['end_time', end]] as const) {
    if (t % step !== 0) {
      const unit = window === 'day' ? 'UTC day (00:00 UTC)' : window === 'hour' ? 'hour' : 'minute';
      throw apiErrors.invalid(`${name} must be aligned with ${unit} boundaries${window ? ` for value_grouping_window=${window}` : ''}.`, { param: name });
    }
  }
  if (end <= start) throw apiErrors.invalid('end_time must be after start_time.', { param: 'end_time' });
  const events = (logOf(account).byMeterCustomer.get(`${meter.id}\u0000${customer.id}`) ?? []).filter((e) => e.timestamp >= start && e.timestamp < end);
  const formula: string = meter.default_aggregation.formula;
  const summary = (from: number, to: number, inWindow: readonly StoredMeterEvent[]): StripeObject => ({
    id: summaryId(meter.id, customer.id, from, to),
    object: 'billing.meter_event_summary',
    aggregated_value: aggregate(formula, inWindow),
    end_time: to,
    livemode: false,
    meter: meter.id,
    start_time: from,
  });
  let items: StripeObject[];
  if (!window) {
    items = events.length > 0 ? [summary(start, end, events)] : [];
  } else {
    // One summary per window that has events, newest first (windows without events are left out, as Stripe does).
    const byWindow = new Map<number, StoredMeterEvent[]>();
    for (const e of events) {
      const from = e.timestamp - ((e.timestamp - start) % step);
      let bucket = byWindow.get(from);
      if (!bucket) byWindow.set(from, (bucket = []));
      bucket.push(e);
    }
    items = [...byWindow.entries()].sort((a, b) => b[0] - a[0]).map(([from, inWindow]) => summary(from, from + step, inWindow));
  }
  return listOf(items, params, `/v1/billing/meters/${meter.id}/event_summaries`);
}

/** Stripe's cursor pagination over computed (unstored) objects. */
function listOf(items: readonly StripeObject[], params: Params, url: string): Record<string, unknown> {
  const limit: number = params.limit ?? 10;
  let start = 0;
  let end = items.length;
  if (params.starting_after !== undefined) {
    const i = items.findIndex((o) => o.id === params.starting_after);
    if (i < 0) throw apiErrors.resourceMissing('billing.meter_event_summary', params.starting_after, 'starting_after');
    start = i + 1;
  } else if (params.ending_before !== undefined) {
    const i = items.findIndex((o) => o.id === params.ending_before);
    if (i < 0) throw apiErrors.resourceMissing('billing.meter_event_summary', params.ending_before, 'ending_before');
    end = i;
    start = Math.max(0, end - limit);
  }
  const page = items.slice(start, Math.min(end, start + limit));
  const hasMore = params.ending_before !== undefined ? start > 0 : start + limit < end;
  return { object: 'list', data: page.map((o) => structuredClone(o)), has_more: hasMore, url };
}

export const meterRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/billing/meters',
    fields: {
      display_name: p.req(p.str({ maxLength: 250 })),
      event_name: p.req(p.str({ maxLength: 100 })),
      default_aggregation: p.req(p.obj({ formula: p.req(p.oneOf(FORMULAS)) })),
      customer_mapping: p.obj({ event_payload_key: p.req(p.str({ maxLength: 100 })), type: p.req(p.oneOf(['by_id'])) }),
      value_settings: p.obj({ event_payload_key: p.req(p.str({ maxLength: 100 })) }),
      event_time_window: p.oneOf(WINDOWS),
      expand: p.expand(),
      ...p.unsupported('dimension_payload_keys'),
    },
    handle: createMeter,
  },
  { method: 'GET', path: '/v1/billing/meters/:id', fields: { expand: p.expand() }, handle: ({ account, id }) => account.render(requireMeter(account, id, 'id', 404)) },
  {
    method: 'POST',
    path: '/v1/billing/meters/:id',
    fields: { display_name: p.str({ maxLength: 250 }), expand: p.expand() },
    handle: ({ account, params, id, now }) => {
      const meter = requireMeter(account, id, 'id', 404);
      if (params.display_name !== undefined) meter.display_name = params.display_name;
      meter.updated = now;
      account.touch(meter, now);
      return account.render(meter);
    },
  },
  { method: 'POST', path: '/v1/billing/meters/:id/deactivate', fields: { expand: p.expand() }, handle: ({ account, id, now }) => setStatus(account, id, false, now) },
  { method: 'POST', path: '/v1/billing/meters/:id/reactivate', fields: { expand: p.expand() }, handle: ({ account, id, now }) => setStatus(account, id, true, now) },
  {
    method: 'GET',
    path: '/v1/billing/meters',
    fields: { status: p.oneOf(['active', 'inactive']), expand: p.expand(), ...p.pagination() },
    handle: ({ account, params }) =>
      account.list(account.all('billing.meter').filter((m) => params.status === undefined || m.status === params.status), params, '/v1/billing/meters', 'billing.meter'),
  },
  {
    method: 'GET',
    path: '/v1/billing/meters/:id/event_summaries',
    fields: {
      customer: p.req(p.str()),
      start_time: p.req(p.int({ min: 0 })),
      end_time: p.req(p.int({ min: 0 })),
      value_grouping_window: p.oneOf(WINDOWS),
      expand: p.expand(),
      ...p.pagination(),
    },
    handle: listEventSummaries,
  },
  {
    method: 'POST',
    path: '/v1/billing/meter_events',
    fields: {
      event_name: p.req(p.str({ maxLength: 100 })),
      payload: p.req(p.hash({ maxValueLength: 5000 })),
      identifier: p.str({ maxLength: 100 }),
      timestamp: p.int({ min: 0 }),
      expand: p.expand(),
    },
    handle: createMeterEvent,
  },
];

/** Whether a meter id names an active meter of the account (metered prices need one). */
export function requireActiveMeter(account: MockAccount, id: string, param: string): StripeObject {
  const meter = requireMeter(account, id, param);
  if (meter.status !== 'active') throw apiErrors.invalid(`The meter ${id} is deactivated; a price can only use an active meter.`, { param });
  return meter;
}
