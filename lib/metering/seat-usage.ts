import type { TenantRouter } from '../runtime/router';

/**
 * Active seats: the platform's query, run in the tenant's own context (lib/runtime withTenant
 * through the router: the pool's RLS setting, the bridge schema's search_path, or the silo's own
 * database), so a tenant's count can only see its rows. The query returns one row with one
 * column (the count); it is the platform's configuration, never a tenant's input.
 */
export const DEFAULT_SEATS_QUERY = "SELECT count(*) FROM users WHERE last_login > now() - interval '30 days'";

export interface SeatCounter {
  count(tenant: { id: string; slug: string }): Promise<number>;
}

export class RouterSeatCounter implements SeatCounter {
  constructor(private readonly router: TenantRouter, private readonly query: string = DEFAULT_SEATS_QUERY) {
    if (!query.trim()) throw new Error('seats query: empty');
  }

  async count(tenant: { id: string; slug: string }): Promise<number> {
    const routed = await this.router.tenantById(tenant.id);
    if (!routed) throw new Error(`tenant ${tenant.slug} (${tenant.id}) is not in the control plane`);
    const rows = await this.router.withResolvedTenant(routed, async (client) => (await client.query(this.query)).rows);
    const first = rows[0] ? Object.values(rows[0])[0] : undefined;
    const n = Number(first);
    if (rows.length !== 1 || !Number.isSafeInteger(n) || n < 0) {
      throw new Error(`tenant ${tenant.slug}: the seats query must return one row with one non-negative whole number, got ${JSON.stringify(rows.slice(0, 2))}`);
    }
    return n;
  }
}
