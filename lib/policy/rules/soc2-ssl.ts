import type { IConstruct } from 'constructs';
import { databaseParameters, isDatabase, isOn, platformValues } from '../checks';
import { at } from '../inspect';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

const TLS_MODES = ['require', 'verify-ca', 'verify-full'];

/**
 * SOC2-RDS-4: every connection to a database is encrypted: the database's parameter group forces
 * SSL (rds.force_ssl = 1), PgBouncer connects to it with TLS, and a workload connects without TLS
 * only to PgBouncer inside its own namespace.
 */
export const SslEnforcedRule: PolicyRule = {
  id: 'SOC2-RDS-4',
  pack: 'soc2',
  explanation: 'tenant data and credentials cross the network only encrypted; a database that accepts plain TCP lets a misconfigured client send them in clear',
  level: 'error',
  requirement: REFERENCE.soc2,
  check(node: IConstruct, ctx: PolicyContext) {
    if (isDatabase(ctx, node)) {
      const { group, parameters } = databaseParameters(ctx, node);
      if (!group) return "the database uses no parameter group of this stack; the default group does not force SSL on every engine version";
      return isOn(parameters.get('rds.force_ssl')) ? true : `${group} does not set rds.force_ssl = 1`;
    }
    const platform = platformValues(ctx, node);
    if (platform) {
      if (at(platform, 'pgbouncer', 'enabled') !== true) return undefined;
      const mode = /^\s*server_tls_sslmode\s*=\s*(\S+)/m.exec(String(at(platform, 'pgbouncer', 'ini') ?? ''))?.[1];
      return mode && TLS_MODES.includes(mode) ? true : `PgBouncer connects to the database with server_tls_sslmode ${JSON.stringify(mode ?? 'unset')}; use ${TLS_MODES.join(', ')}`;
    }
    if (ctx.releaseChart(node) === 'tenant-app') {
      const values = ctx.releaseValues(node)!;
      const db = values.database ?? {};
      if (!db.host) return undefined;
      if (TLS_MODES.includes(db.sslmode)) return true;
      const namespace = ctx.config(node)?.namespace;
      const local = typeof db.host === 'string' && typeof namespace === 'string' && new RegExp(`^[a-z0-9-]+\\.${namespace}\\.svc(\\.cluster\\.local)?$`).test(db.host);
      return local ? true : `the workload connects to ${db.host} with sslmode ${JSON.stringify(db.sslmode ?? 'unset')}; only PgBouncer in its own namespace may be reached without TLS`;
    }
    return undefined;
  },
};
