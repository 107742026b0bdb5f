import { CreditsError } from './credits-error';

/** Credits are whole units (a positive safe integer): never a float that rounds a balance away. */
export function checkCreditAmount(amount: unknown, what = 'amount'): number {
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) {
    throw new CreditsError('invalid-amount', `credits ${what} ${JSON.stringify(amount)} is not a positive whole number`);
  }
  return amount;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A tenant id as the control plane keys it (a lowercase UUID). */
export function checkCreditTenant(tenantId: unknown): string {
  if (typeof tenantId !== 'string' || !UUID.test(tenantId)) throw new CreditsError('invalid-input', `tenant id ${JSON.stringify(tenantId)} is not a lowercase UUID`);
  return tenantId;
}

/** A reason or actor written to the ledger: 1-200 characters (data, never interpreted). */
export function checkLedgerText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 200) throw new CreditsError('invalid-input', `credits ${what} must be 1 to 200 characters`);
  return value;
}

/** A bigint column as node-postgres returns it (a string) → number; balances stay below 2^53. */
export function creditsFromColumn(value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`credit value ${value} is beyond the safe integer range`);
  return n;
}

/**
 * The credits a Stripe object's metadata asks for: `metadata.credits`, a positive whole number
 * written in decimal. Undefined when absent (not a credits purchase).
 */
export function creditsFromMetadata(metadata: Readonly<Record<string, string>> | null | undefined): number | undefined {
  const raw = metadata?.credits;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,14}$/.test(raw)) throw new CreditsError('invalid-input', `metadata.credits ${JSON.stringify(raw)} is not a positive whole number`);
  return checkCreditAmount(Number(raw), 'metadata.credits');
}
