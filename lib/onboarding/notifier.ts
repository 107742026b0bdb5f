import { createTransport, type Transporter } from 'nodemailer';
import type { Tenant } from '../registry/tenant-schema';

/**
 * The welcome notification. Pluggable: anything with `send(message)`. Shipped: SMTP through
 * nodemailer (`SmtpNotifier`, configured by an smtp:// or smtps:// URL), and `LogNotifier`
 * (writes the message to a stream; for development without a mail server).
 *
 * Delivery is at least once: a worker that dies after the server accepted the message and before
 * the step was recorded sends it again on the retry. Every message carries a Message-ID derived
 * from the tenant id and the notification kind, so the copies are the same message to mail
 * clients and to deduplicating relays.
 */
export interface Notification {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
  /** Globally unique and stable for this notification (without angle brackets). */
  readonly messageId: string;
}

export interface Notifier {
  readonly name: string;
  send(message: Notification): Promise<{ messageId: string; accepted: readonly string[] }>;
}

export interface SmtpNotifierOptions {
  /** smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465. */
  readonly url: string;
  /** From address, e.g. "Acme Platform <noreply@saas.example.com>". */
  readonly from: string;
  /** Require STARTTLS on smtp:// (production). @default false */
  readonly requireTls?: boolean;
  /** CA bundle text to verify the server certificate (a private relay). */
  readonly ca?: string;
}

export class SmtpNotifier implements Notifier {
  readonly name = 'smtp';
  private readonly transport: Transporter;

  constructor(private readonly options: SmtpNotifierOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error('the SMTP URL must start with smtp:// or smtps://');
    this.transport = createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 587)),
      secure: url.protocol === 'smtps:',
      requireTLS: options.requireTls ?? false,
      auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
      tls: options.ca ? { ca: options.ca } : undefined,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
    });
  }

  async send(message: Notification): Promise<{ messageId: string; accepted: readonly string[] }> {
    const info = await this.transport.sendMail({
      from: this.options.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      messageId: `<${message.messageId}>`,
    });
    const accepted = (info.accepted ?? []).map((a: string | { address: string }) => (typeof a === 'string' ? a : a.address));
    if (accepted.length === 0) throw new Error(`the SMTP server accepted no recipient (rejected: ${JSON.stringify(info.rejected)})`);
    return { messageId: info.messageId, accepted };
  }

  close(): void {
    this.transport.close();
  }
}

/** Writes notifications to a stream instead of sending them (development). */
export class LogNotifier implements Notifier {
  readonly name = 'log';
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  async send(message: Notification): Promise<{ messageId: string; accepted: readonly string[] }> {
    this.out.write(`notification to ${message.to}: ${message.subject} <${message.messageId}>\n`);
    return { messageId: `<${message.messageId}>`, accepted: [message.to] };
  }
}

/** The welcome message of a new tenant: plain text (and escaped HTML); the company name is data, never markup. */
export function welcomeMessage(tenant: Tenant, baseDomain: string, messageDomain: string): Notification {
  const url = `https://${tenant.domain.custom ?? `${tenant.domain.subdomain ?? tenant.slug}.${baseDomain}`}`;
  const text = [
    `Welcome, ${tenant.company}!`,
    '',
    `Your workspace is ready at ${url}.`,
    `Plan: ${tenant.plan}. Region: ${tenant.region}.`,
    '',
    'Sign in with this email address to invite your team.',
  ].join('\n');
  const html = `<p>Welcome, ${escapeHtml(tenant.company)}!</p><p>Your workspace is ready at <a href="${escapeHtml(url)}">${escapeHtml(url)}</a>.</p><p>Plan: ${escapeHtml(tenant.plan)}. Region: ${escapeHtml(tenant.region)}.</p>`;
  return { to: tenant.adminEmail, subject: `Your ${baseDomain} workspace is ready`, text, html, messageId: `welcome.${tenant.id}@${messageDomain}` };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
