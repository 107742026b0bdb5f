/**
 * A debit refused because it would take the tenant's balance below zero. Nothing was debited.
 * `balance` is the balance read right after the refusal (concurrent debits may change it).
 */
export class InsufficientCreditsError extends Error {
  /** The HTTP status an API answers with (402 Payment Required). */
  readonly status = 402;

  constructor(readonly tenantId: string, readonly balance: number, readonly cost: number) {
    super(`tenant ${tenantId} has ${balance} credit${balance === 1 ? '' : 's'}, ${cost} needed: debit refused`);
    this.name = 'InsufficientCreditsError';
  }
}
