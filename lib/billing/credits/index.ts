// Prepaid credits (migrations/control-plane/0009_credits): grants from paid Stripe objects, atomic
// debits refused below zero, one low-credit notification per grant, a 402 middleware.
export { grantCredits, type GrantCreditsOptions, type CreditGrant } from './grant';
export { debitCredits, DEBIT_STRATEGIES, DEFAULT_DEBIT_STRATEGY, type DebitStrategy, type DebitCreditsOptions, type CreditDebit, type LowCreditCrossing } from './debit';
export { InsufficientCreditsError } from './insufficient-credits-error';
export { CreditsError, type CreditsErrorCode } from './credits-error';
export { creditsFromMetadata, checkCreditAmount } from './credit-amount';
export { LOW_CREDIT_EVENT, LOW_CREDIT_THRESHOLD_PERCENT, lowCreditEventKey } from './low-credit-notice';
export { LowCreditMailer, type LowCreditMailerOptions, type LowCreditDelivery } from './low-credit-mailer';
export { requireCredits, withCredits, chargeRequest, type CreditsMiddlewareOptions, type RequestDebit } from './credits-middleware';
export { creditBalance, creditAccount, creditEntries, verifyCreditLedger, type CreditEntry, type CreditAccount } from './ledger';
export { type CreditsDb } from './db-handle';
