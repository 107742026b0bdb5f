/** Why a credits call was refused (other than too few credits: {@link InsufficientCreditsError}). */
export type CreditsErrorCode =
  | 'invalid-amount' // not a positive safe integer
  | 'invalid-input' // a malformed tenant id, Stripe object id, reason or metadata
  | 'unknown-tenant' // the tenant is not in tenancy.tenants
  | 'grant-conflict'; // a Stripe object already granted to another tenant or for another amount

/** A credits call refused for bad input or a conflict; nothing was written. */
export class CreditsError extends Error {
  constructor(readonly code: CreditsErrorCode, message: string) {
    super(message);
    this.name = 'CreditsError';
  }
}
