import type { PoolConfig } from 'pg';

/**
 * The one way to turn a control-plane URL into connection settings: TLS or nothing. The control
 * plane holds every tenant's placement, the audit trail and the lifecycle state; its traffic never
 * crosses a network in the clear unless someone explicitly says so for local development.
 *
 * Accepted: a URL whose TLS is configured (sslmode=verify-full, verify-ca, require, prefer,
 * no-verify, ssl=true, sslrootcert=…, or PGSSLMODE set to one of those), or a Unix-socket host (no
 * network; PostgreSQL has no TLS there). Plaintext over TCP (no sslmode, sslmode=disable, ssl=false)
 * only with the opt-out: TENANCY_INSECURE_NO_TLS=1 or the commands' --insecure-no-tls.
 */

export class ControlPlaneTlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlPlaneTlsError';
  }
}

export interface ControlPlaneConnectionOptions {
  /** Allow plaintext over TCP (local development only). @default env TENANCY_INSECURE_NO_TLS === '1' */
  readonly insecureNoTls?: boolean;
  /** The environment read for TENANCY_INSECURE_NO_TLS and PGSSLMODE. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** application_name of the connections. */
  readonly applicationName?: string;
}

const TLS_MODES = new Set(['prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']);

/** pg settings for the control plane at `url`; throws ControlPlaneTlsError for plaintext over TCP without the opt-out. */
export function controlPlaneConnection(url: string, options: ControlPlaneConnectionOptions = {}): PoolConfig {
  const env = options.env ?? process.env;
  const insecure = options.insecureNoTls ?? env.TENANCY_INSECURE_NO_TLS === '1';
  let parsed: URL;
  // node-postgres accepts an empty host (postgres://user@/db?host=/socket/dir); WHATWG URL does not.
  const emptyHost = /^postgres(?:ql)?:\/\/(?:[^/@]*@)?\//.test(url);
  try {
    parsed = new URL(emptyHost ? url.replace(/^(postgres(?:ql)?:\/\/(?:[^/@]*@)?)\//, '$1localhost/') : url);
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`protocol ${parsed.protocol}`);
  } catch (e) {
    throw new ControlPlaneTlsError(`the control-plane URL is not a postgres:// URL (${(e as Error).message})`);
  }
  const config: PoolConfig = { connectionString: url, ...(options.applicationName ? { application_name: options.applicationName } : {}) };
  // As node-postgres reads it: a host query parameter wins over the URL's host.
  const q = parsed.searchParams;
  const host = q.get('host') ?? ((emptyHost ? '' : decodeURIComponent(parsed.hostname)) || env.PGHOST || '');
  const socket = host.startsWith('/');
  const sslmode = q.get('sslmode');
  const ssl = q.get('ssl');
  const tls = sslmode !== null
    ? TLS_MODES.has(sslmode)
    : ssl !== null
      ? ssl === 'true' || ssl === '1'
      : q.has('sslrootcert') || q.has('sslcert') || q.has('sslkey') || TLS_MODES.has(env.PGSSLMODE ?? '');
  if (socket || tls || insecure) return config;
  throw new ControlPlaneTlsError(
    `the control-plane connection ${redactUrl(url)} does not use TLS: add sslmode=verify-full&sslrootcert=<CA bundle> (or sslmode=require) to the URL; ` +
      'for local development without TLS set TENANCY_INSECURE_NO_TLS=1 (or --insecure-no-tls)',
  );
}

/** A URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}
