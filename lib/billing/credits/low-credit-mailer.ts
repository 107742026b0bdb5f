import type { Pool } from 'pg';
import type { Notification, Notifier } from '../../onboarding/notifier';
import { creditsFromColumn } from './credit-amount';
import { LOW_CREDIT_THRESHOLD_PERCENT } from './low-credit-notice';

export interface LowCreditMailerOptions {
  /** The mail transport: onboarding's SmtpNotifier (TENANCY_SMTP_URL) or a LogNotifier. */
  readonly notifier: Notifier;
  /** The tenant's billing contact (e.g. the registry's adminEmail); undefined: the mail fails and stays pending. */
  readonly recipient: (tenantId: string) => Promise<string | undefined>;
  /** Domain of the Message-IDs, e.g. "saas.example.com". */
  readonly messageDomain: string;
  /** How long one sender holds a notice before another may try it. @default 300000 (5 minutes) */
  readonly claimMs?: number;
}

export interface LowCreditDelivery {
  readonly sent: number;
  readonly failed: number;
  readonly errors: readonly { grantEntryId: string; tenantId: string; error: string }[];
}

interface ClaimedNotice {
  grant_entry_id: string;
  tenant_id: string;
  slug: string;
  balance: string;
  grant_amount: string;
}

/**
 * Mails the low-credit notices the debits recorded. Exactly once is the notice and its outbox
 * event (the debit's transaction); the mail is at least once: a notice is claimed (attempt
 * counted), sent, then marked sent. A failed send records the error and leaves the notice
 * pending: the next {@link deliverPending} sends it again. A sender that dies after the SMTP server
 * accepted the mail and before marking it sends it again once its claim lapses, with the same
 * Message-ID (derived from the grant), so clients and deduplicating relays show it once.
 */
export class LowCreditMailer {
  constructor(private readonly pool: Pool, private readonly options: LowCreditMailerOptions) {}

  /** Sends every pending notice (of one tenant, if given), at most `limit`. */
  async deliverPending(filter: { tenantId?: string; limit?: number } = {}): Promise<LowCreditDelivery> {
    const claimed = (await this.pool.query<ClaimedNotice>(
      `UPDATE tenancy.credit_low_notices n
          SET mail_attempts = n.mail_attempts + 1, mail_claimed_until = now() + $2 * interval '1 millisecond'
         FROM tenancy.tenants t
        WHERE t.id = n.tenant_id AND n.grant_entry_id IN (
          SELECT grant_entry_id FROM tenancy.credit_low_notices
           WHERE mail_sent_at IS NULL AND (mail_claimed_until IS NULL OR mail_claimed_until < now()) AND ($3::uuid IS NULL OR tenant_id = $3::uuid)
           ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING n.grant_entry_id::text, n.tenant_id::text, t.slug, n.balance, n.grant_amount`,
      [filter.limit ?? 100, this.options.claimMs ?? 300_000, filter.tenantId ?? null],
    )).rows;
    const errors: { grantEntryId: string; tenantId: string; error: string }[] = [];
    for (const notice of claimed) {
      try {
        const to = await this.options.recipient(notice.tenant_id);
        if (!to) throw new Error(`tenant ${notice.slug} has no billing contact to mail`);
        await this.options.notifier.send(this.message(notice, to));
        await this.pool.query('UPDATE tenancy.credit_low_notices SET mail_sent_at = now(), mail_error = NULL, mail_claimed_until = NULL WHERE grant_entry_id = $1', [notice.grant_entry_id]);
      } catch (e) {
        const error = (e as Error).message.slice(0, 1000);
        errors.push({ grantEntryId: notice.grant_entry_id, tenantId: notice.tenant_id, error });
        await this.pool.query('UPDATE tenancy.credit_low_notices SET mail_error = $2, mail_claimed_until = NULL WHERE grant_entry_id = $1', [notice.grant_entry_id, error]);
      }
    }
    return { sent: claimed.length - errors.length, failed: errors.length, errors };
  }

  private message(notice: ClaimedNotice, to: string): Notification {
    const balance = creditsFromColumn(notice.balance);
    const granted = creditsFromColumn(notice.grant_amount);
    const text = [
      `Your workspace ${notice.slug} is running low on credits.`,
      '',
      `Balance: ${balance} credits, ${LOW_CREDIT_THRESHOLD_PERCENT}% or less of your last top-up of ${granted}.`,
      'Requests are refused once the balance cannot cover them. Top up to keep your service running.',
    ].join('\n');
    return {
      to,
      subject: `Credits running low for ${notice.slug}`,
      text,
      messageId: `credits-low.${notice.grant_entry_id}.${notice.tenant_id}@${this.options.messageDomain}`,
    };
  }
}
