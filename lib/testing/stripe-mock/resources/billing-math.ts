import type { StripeObject } from '../store';

/**
 * Billing periods and prorations, as Stripe computes them: periods end on the same day of the
 * month as they start (clamped to the month's last day), and a proration for an item changed at
 * time t of the period [start, end) is its amount × (end − t) / (end − start), per second,
 * rounded to the nearest minor unit — a credit (negative) for the old price ("Unused time on …")
 * and a charge for the new one ("Remaining time on …"). A preview and an update given the same
 * `proration_date` therefore give the same amounts.
 */
export type Interval = 'day' | 'week' | 'month' | 'year';

export function addInterval(start: number, interval: Interval, count: number): number {
  switch (interval) {
    case 'day':
      return start + count * 86_400;
    case 'week':
      return start + count * 7 * 86_400;
    case 'month':
    case 'year': {
      const months = interval === 'year' ? 12 * count : count;
      const d = new Date(start * 1000);
      const targetMonth = d.getUTCMonth() + months;
      const lastDay = new Date(Date.UTC(d.getUTCFullYear(), targetMonth + 1, 0)).getUTCDate();
      const end = Date.UTC(d.getUTCFullYear(), targetMonth, Math.min(d.getUTCDate(), lastDay), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
      return Math.floor(end / 1000);
    }
  }
}

/** The end of the period starting at `start` for a recurring price. */
export function periodEnd(price: StripeObject, start: number): number {
  return addInterval(start, price.recurring.interval, price.recurring.interval_count);
}

/** The prorated part of `amount` for the rest of [start, end) from `at`. */
export function prorate(amount: number, start: number, end: number, at: number): number {
  if (end <= start) return 0;
  return Math.round((amount * (end - at)) / (end - start));
}

/** "12 May 2026", as Stripe writes dates in line descriptions. */
export function formatDate(at: number): string {
  const d = new Date(at * 1000);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}
