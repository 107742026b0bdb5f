import type { DeployOutputs, PlatformOutputs, SharedCluster } from './deploy-outputs';

/**
 * Where the hooks connect instead of the database hosts the outputs name: for a deploy against
 * a local AWS API (moto), whose RDS endpoints do not resolve, every database is a local
 * PostgreSQL server. `tenancy post-apply --database-host-map '*.rds.amazonaws.com=localhost:5432'`
 * (repeatable; env TENANCY_DATABASE_HOST_MAP, comma-separated). The rewritten address is what the
 * control plane records, so the runtime (withTenant, the router) connects there too.
 *
 * A pattern is a host name, or `*.` and a suffix (`*.rds.amazonaws.com` matches any host ending in
 * `.rds.amazonaws.com`). The first matching entry wins; a target without a port keeps the port of
 * the outputs.
 */
export interface DatabaseHostMapEntry {
  readonly pattern: string;
  readonly host: string;
  readonly port?: number;
}

export class DatabaseHostMapError extends Error {}

const HOST = /^[A-Za-z0-9.-]{1,253}$/;

/** Parses `pattern=host[:port]` entries (each may hold several, comma-separated). */
export function parseDatabaseHostMap(specs: readonly string[]): DatabaseHostMapEntry[] {
  const entries: DatabaseHostMapEntry[] = [];
  for (const spec of specs.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\*\.)?([A-Za-z0-9.-]+)=([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(spec);
    if (!m || !HOST.test(m[2]) || !HOST.test(m[3])) {
      throw new DatabaseHostMapError(`database host map entry ${JSON.stringify(spec)}: expected <host or *.suffix>=<host>[:<port>], e.g. "*.rds.amazonaws.com=localhost:5432"`);
    }
    const port = m[4] === undefined ? undefined : Number(m[4]);
    if (port !== undefined && (port < 1 || port > 65535)) throw new DatabaseHostMapError(`database host map entry ${JSON.stringify(spec)}: port must be 1-65535`);
    entries.push({ pattern: `${m[1] ?? ''}${m[2].toLowerCase()}`, host: m[3], port });
  }
  return entries;
}

function target(map: readonly DatabaseHostMapEntry[], host: string, port: number): { host: string; port: number } {
  const h = host.toLowerCase();
  const entry = map.find((e) => (e.pattern.startsWith('*.') ? h.endsWith(e.pattern.slice(1)) : h === e.pattern));
  return entry ? { host: entry.host, port: entry.port ?? port } : { host, port };
}

/** The outputs with every database address mapped (unchanged when the map is empty). */
export function applyDatabaseHostMap(outputs: DeployOutputs, map: readonly DatabaseHostMapEntry[]): DeployOutputs {
  if (map.length === 0) return outputs;
  const cluster = (c: SharedCluster | undefined): SharedCluster | undefined => {
    if (!c) return c;
    const t = target(map, c.endpoint, c.port);
    return { ...c, endpoint: t.host, port: t.port };
  };
  const platforms = new Map<string, PlatformOutputs>();
  for (const [region, p] of outputs.platforms) {
    const bridgeShards = p.bridgeShards && new Map([...p.bridgeShards].map(([id, c]) => [id, cluster(c)!]));
    platforms.set(region, { ...p, bridge: cluster(p.bridge), ...(bridgeShards ? { bridgeShards } : {}), pool: cluster(p.pool), controlPlane: cluster(p.controlPlane) });
  }
  const tenants = outputs.tenants.map((t) => {
    if (t.model !== 'silo') return t;
    const mapped = target(map, t.db_address, t.db_port);
    return { ...t, db_address: mapped.host, db_port: mapped.port };
  });
  return { tenants, platforms };
}
