/**
 * Billing test fixtures: a control plane (migrations/control-plane/0001) on the test cluster,
 * registered tenants, and a priced catalog in a fresh account of the local Stripe server.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import type Stripe from 'stripe';
import { ensureCatalog, planPricesOf, type Catalog } from '../../lib/billing';
import { ControlPlane } from '../../lib/control-plane/control-plane';
import type { Plan } from '../../lib/registry/tenant-schema';
import type { PostgresCluster } from '../support/postgres';

export const CATALOG: Catalog = {
  free: null,
  starter: { lookupKey: 'test_starter', productName: 'Starter', unitAmount: 2900, currency: 'usd', interval: 'month' },
  pro: { lookupKey: 'test_pro', productName: 'Pro', unitAmount: 9900, currency: 'usd', interval: 'month' },
  enterprise: { lookupKey: 'test_enterprise', productName: 'Enterprise', unitAmount: 49900, currency: 'usd', interval: 'month' },
};
export const PRICES = planPricesOf(CATALOG);

export async function controlPlaneOn(cluster: PostgresCluster, database: string): Promise<{ pool: Pool; controlPlane: ControlPlane }> {
  await cluster.createDatabase(database);
  await cluster.query(readFileSync(join(__dirname, '..', '..', 'migrations', 'control-plane', '0001_init.up.sql'), 'utf8'), [], database);
  const pool = new Pool({ ...cluster.adminConfig(database), max: 8 });
  return { pool, controlPlane: new ControlPlane(pool, 'billing-test') };
}

let counter = 0;

/** A tenant registered in the control plane (as the register hook leaves it). */
export async function registerTenant(controlPlane: ControlPlane, plan: Plan, extra: { email?: string; name?: string } = {}) {
  const tenant = { id: randomUUID(), slug: `billing-${++counter}-${Math.random().toString(36).slice(2, 8)}`, plan, ...extra };
  await controlPlane.upsertTenant({ id: tenant.id, slug: tenant.slug, model: 'pool', plan, status: 'active', region: 'us-east-1', placement: {} });
  return tenant;
}

export async function stripeIds(controlPlane: ControlPlane, tenantId: string) {
  return controlPlane.stripeIds(tenantId);
}

/** The catalog's prices in the account of `stripe`. */
export async function withCatalog(stripe: Stripe, catalog: Catalog = CATALOG): Promise<Record<string, string>> {
  const entries = await ensureCatalog(stripe, catalog);
  return Object.fromEntries(entries.map((e) => [e.plan, e.priceId]));
}
