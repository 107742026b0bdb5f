/**
 * A local SMTP server (the `smtp-server` package) that keeps every message it receives, for
 * tests of the welcome notification. Plain SMTP on 127.0.0.1 (no STARTTLS, no AUTH).
 *
 *   const smtp = useSmtp();
 *   … smtp().url …  →  smtp://127.0.0.1:<port>
 *   await smtp().waitForMessages(1);
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly raw: string;
  /** Header value (first occurrence, unfolded), case-insensitive name. */
  header(name: string): string | undefined;
}

export class SmtpTestServer {
  readonly messages: ReceivedMail[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(private readonly server: SMTPServer, readonly port: number) {}

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<SmtpTestServer> {
    let self: SmtpTestServer | undefined;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const to = session.envelope.rcptTo.map((r) => r.address);
          self!.received({ from, to, raw, header: (name) => headerOf(raw, name) });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
    self = new SmtpTestServer(server, port);
    return self;
  }

  private received(mail: ReceivedMail): void {
    this.messages.push(mail);
    this.waiters = this.waiters.filter((w) => {
      if (this.messages.length >= w.n) w.resolve();
      return this.messages.length < w.n;
    });
  }

  /** Resolves once at least `n` messages arrived (event-driven, no polling). */
  waitForMessages(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Messages to `address`. */
  to(address: string): ReceivedMail[] {
    return this.messages.filter((m) => m.to.includes(address));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function headerOf(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

export function useSmtp(): () => SmtpTestServer {
  let server: SmtpTestServer | undefined;
  beforeAll(async () => {
    server = await SmtpTestServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('useSmtp: the server did not start (see the beforeAll error)');
    return server;
  };
}
