import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Client, ClientConfig } from 'pg';
import { guardedClient } from '../db/lost-connections';
import type { SecretResolver } from '../runtime/secret-resolver';

/** Where a database is: no credentials, only the reference to the secret that holds them. */
export interface DatabaseEndpoint {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly secretRef: string;
}

export interface DatabaseConnectorOptions {
  /** Resolves the secret references of the outputs (Secrets Manager ARNs) to credentials. */
  readonly secrets: SecretResolver;
  /** CA bundle to verify the server certificate (RDS: the region's bundle). @default the system CAs */
  readonly sslCaFile?: string;
  /** Connect without TLS (local development only). @default false */
  readonly insecureNoTls?: boolean;
  readonly applicationName?: string;
}

/** Opens connections to tenant and platform databases: TLS with certificate verification by default. */
export class DatabaseConnector {
  private readonly ca?: string;

  constructor(private readonly options: DatabaseConnectorOptions) {
    this.ca = options.sslCaFile ? readFileSync(options.sslCaFile, 'utf8') : undefined;
  }

  async config(endpoint: DatabaseEndpoint, database = endpoint.database): Promise<ClientConfig> {
    const { username, password } = await this.options.secrets.resolve(endpoint.secretRef);
    return {
      host: endpoint.host,
      port: endpoint.port,
      database,
      user: username,
      password,
      ssl: this.options.insecureNoTls ? false : { rejectUnauthorized: true, ca: this.ca, servername: isIP(endpoint.host) ? undefined : endpoint.host },
      application_name: this.options.applicationName ?? 'tenancy-post-apply',
      connectionTimeoutMillis: 15_000,
    };
  }

  /** The credentials behind a secret reference (e.g. the password a role is provisioned with). */
  credentials(secretRef: string) {
    return this.options.secrets.resolve(secretRef);
  }

  /** A connected client; the caller ends it. */
  async connect(endpoint: DatabaseEndpoint, database?: string): Promise<Client> {
    // Guarded: a connection the server ends fails the hook's query, never the process.
    const client = guardedClient(await this.config(endpoint, database));
    await client.connect();
    return client;
  }

  async withClient<T>(endpoint: DatabaseEndpoint, fn: (c: Client) => Promise<T>, database?: string): Promise<T> {
    const client = await this.connect(endpoint, database);
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
