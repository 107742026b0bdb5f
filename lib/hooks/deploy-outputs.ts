import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { tenantSqlNames } from '../db/sql';
import { BRIDGE_SHARD_ID, BRIDGE_SHARD_ID_MESSAGE, DEFAULT_BRIDGE_SHARD, PLANS, SLUG_PATTERN } from '../registry/tenant-schema';

/**
 * The outputs of deployed stacks, as `cdktf deploy --outputs-file <file>` writes them
 * (`{ "<stack>": { "<output>": value } }`): tenant stacks (`tenant-<slug>`) and the platform stacks
 * of their regions (`platform-<region>`). The hooks read nothing else from Terraform.
 */

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'must be a lowercase UUID');
const host = z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'must be a host name');
const port = z.coerce.number().int().min(1).max(65535);
const sqlName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL name');
const secretRef = z.string().min(1).max(2048).regex(/^[^\s]+$/, 'must be a secret reference (ARN or name)');

const common = {
  tenant_id: uuid,
  slug: z.string().regex(SLUG_PATTERN, 'must be a tenant slug'),
  plan: z.enum(PLANS),
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-[0-9]+$/, 'must be an AWS region'),
  k8s_namespace: z.string().optional(),
};

export const TenantOutputsSchema = z.discriminatedUnion('model', [
  z.object({ ...common, model: z.literal('silo'), db_identifier: z.string(), db_address: host, db_port: port, db_name: sqlName, db_master_secret_arn: secretRef, db_kms_key_arn: z.string(), app_credentials_secret_arn: secretRef.optional() }),
  z.object({ ...common, model: z.literal('bridge'), cluster_identifier: z.string(), db_name: sqlName, schema: sqlName, role: sqlName, credentials_secret_arn: secretRef, bridge_shard: z.string().regex(BRIDGE_SHARD_ID, BRIDGE_SHARD_ID_MESSAGE).optional() }),
  z.object({ ...common, model: z.literal('pool'), cluster_identifier: z.string(), db_name: sqlName, app_role: sqlName, tenant_setting: z.string() }),
]);
export type TenantOutputs = z.output<typeof TenantOutputsSchema>;

/** One shared cluster of a platform stack (bridge, pool, control plane). */
export interface SharedCluster {
  readonly endpoint: string;
  readonly port: number;
  readonly database: string;
  readonly masterSecretArn: string;
}
export interface PlatformOutputs {
  readonly region: string;
  /** The default bridge shard's cluster (`bridge_*`: the single bridge cluster of earlier versions). */
  readonly bridge?: SharedCluster;
  /** The other bridge shards' clusters by shard id (`bridge_shard_<id>_*`, hyphens as underscores). */
  readonly bridgeShards?: ReadonlyMap<string, SharedCluster>;
  readonly pool?: SharedCluster;
  readonly controlPlane?: SharedCluster;
}

export interface DeployOutputs {
  readonly tenants: readonly TenantOutputs[];
  readonly platforms: ReadonlyMap<string, PlatformOutputs>;
}

/** A problem with the outputs file, naming the stack and output. */
export class DeployOutputsError extends Error {}

const clusterSchema = z.object({ endpoint: host, database: sqlName, master_secret_arn: secretRef, port: port.default(5432) });

/** Reads and validates an outputs file; every problem of every stack is reported at once. */
export function readDeployOutputs(file: string): DeployOutputs {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DeployOutputsError(`${file}: not a readable JSON outputs file (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseDeployOutputs(raw, file);
}

export function parseDeployOutputs(raw: unknown, file = '<outputs>'): DeployOutputs {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DeployOutputsError(`${file}: expected an object of stacks`);
  const problems: string[] = [];
  const tenants: TenantOutputs[] = [];
  const platforms = new Map<string, PlatformOutputs>();
  for (const [stack, outputs] of Object.entries(raw as Record<string, unknown>)) {
    if (stack.startsWith('tenant-')) {
      const parsed = TenantOutputsSchema.safeParse(outputs);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) problems.push(`${file}: ${stack}.${issue.path.join('.') || '(stack)'}: ${issue.message}`);
        continue;
      }
      const t = parsed.data;
      if (`tenant-${t.slug}` !== stack) {
        problems.push(`${file}: ${stack}.slug: ${t.slug} does not match the stack name`);
        continue;
      }
      // The names the hooks derive from the slug must be the ones the stack announced.
      const names = tenantSqlNames(t.slug);
      if (t.model === 'bridge' && t.schema !== names.schema) problems.push(`${file}: ${stack}.schema: ${t.schema} is not ${names.schema}`);
      else if (t.model === 'bridge' && t.role !== names.role) problems.push(`${file}: ${stack}.role: ${t.role} is not ${names.role}`);
      else tenants.push(t);
    } else if (stack.startsWith('platform-')) {
      const region = stack.slice('platform-'.length);
      const o = (outputs ?? {}) as Record<string, unknown>;
      const cluster = (key: string): SharedCluster | undefined => {
        if (o[`${key}_endpoint`] === undefined) return undefined;
        const parsed = clusterSchema.safeParse({ endpoint: o[`${key}_endpoint`], database: o[`${key}_database`], master_secret_arn: o[`${key}_master_secret_arn`], port: o[`${key}_port`] ?? undefined });
        if (!parsed.success) {
          for (const issue of parsed.error.issues) problems.push(`${file}: ${stack}.${key}_${issue.path.join('.')}: ${issue.message}`);
          return undefined;
        }
        return { endpoint: parsed.data.endpoint, port: parsed.data.port, database: parsed.data.database, masterSecretArn: parsed.data.master_secret_arn };
      };
      const bridgeShards = new Map<string, SharedCluster>();
      for (const key of Object.keys(o)) {
        const shard = /^bridge_shard_([a-z0-9_]+)_endpoint$/.exec(key)?.[1];
        const found = shard === undefined ? undefined : cluster(`bridge_shard_${shard}`);
        if (found) bridgeShards.set(shard!.replace(/_/g, '-'), found);
      }
      platforms.set(region, { region, bridge: cluster('bridge'), bridgeShards, pool: cluster('pool'), controlPlane: cluster('control_plane') });
    }
  }
  const seen = new Map<string, string>();
  for (const t of tenants) {
    const other = seen.get(t.tenant_id);
    if (other) problems.push(`${file}: tenant-${t.slug}.tenant_id: ${t.tenant_id} is also the id of tenant-${other}`);
    seen.set(t.tenant_id, t.slug);
  }
  if (problems.length > 0) throw new DeployOutputsError(problems.join('\n'));
  return { tenants, platforms };
}


/** The cluster of bridge shard `shard` in a platform's outputs (the default shard: `bridge_*`), or undefined. */
export function bridgeShardCluster(platform: PlatformOutputs | undefined, shard: string = DEFAULT_BRIDGE_SHARD): SharedCluster | undefined {
  return shard === DEFAULT_BRIDGE_SHARD ? platform?.bridge : platform?.bridgeShards?.get(shard);
}
