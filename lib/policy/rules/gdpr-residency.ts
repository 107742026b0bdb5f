import type { IConstruct } from 'constructs';
import { RESIDENCY_REGION_PREFIXES, type DataResidency } from '../../registry/tenant-schema';
import type { PolicyContext, PolicyRule } from '../policy-rule';
import { REFERENCE } from '../reference';

type Json = Record<string, any>;

const within = (residency: string, region: unknown): boolean =>
  typeof region === 'string' && (RESIDENCY_REGION_PREFIXES[residency as DataResidency] ?? []).some((prefix) => region.startsWith(prefix));

/**
 * GDPR-RES-1: a GDPR tenant declares a data residency, and every place its stack can put data
 * (each AWS provider's region: databases, snapshots and their replicas, buckets; cross-region
 * backup copies and replication targets) stays in it.
 */
export const GdprResidencyRule: PolicyRule = {
  id: 'GDPR-RES-1',
  pack: 'gdpr',
  explanation: "personal data of a GDPR tenant, with its backups and bucket copies, stays in the tenant's declared residency region",
  level: 'error',
  requirement: REFERENCE.gdpr,
  check(node: IConstruct, ctx: PolicyContext) {
    const residency = ctx.tenant?.dataResidency;
    if (node === ctx.stack) {
      if (ctx.scope !== 'tenant') return undefined;
      return residency && residency !== 'none' ? true : 'the tenant declares no data residency (dataResidency), so nothing keeps its data in one jurisdiction';
    }
    if (!residency || residency === 'none') return undefined;
    const type = ctx.typeOf(node);
    if (type === undefined) return undefined;
    const c: Json = ctx.config(node) ?? {};
    if (type === 'aws') {
      return within(residency, c.region) ? true : `AWS provider ${c.alias ? `"${c.alias}" ` : ''}in ${c.region}, outside the tenant's residency "${residency}": every resource it creates (databases, snapshots, buckets, backup copies) would be there`;
    }
    const problems: string[] = [];
    for (const key of ['region', 'destination_region']) {
      if (c[key] !== undefined && !within(residency, c[key])) problems.push(`${key} ${c[key]} is outside the residency "${residency}"`);
    }
    if (type === 'aws_backup_plan') {
      for (const rule of (c.rule ?? []) as Json[]) {
        for (const copy of (rule?.copy_action ?? []) as Json[]) {
          const region = /^arn:aws[a-z-]*:backup:([a-z0-9-]+):/.exec(String(copy?.destination_vault_arn ?? ''))?.[1];
          if (!within(residency, region)) problems.push(`backup copies go to ${copy?.destination_vault_arn}, outside the residency "${residency}"`);
        }
      }
    }
    if (type === 'aws_s3_bucket_replication_configuration') {
      for (const rule of (c.rule ?? []) as Json[]) {
        for (const dest of (rule?.destination ?? []) as Json[]) {
          if (!ctx.referenced(dest?.bucket, 'aws_s3_bucket')) problems.push(`objects are replicated to ${dest?.bucket}, a bucket outside this stack whose region cannot be shown to be in the residency`);
        }
      }
    }
    if (problems.length) return problems;
    return ['aws_db_instance', 'aws_s3_bucket', 'aws_backup_plan', 'aws_s3_bucket_replication_configuration', 'aws_db_instance_automated_backups_replication'].includes(type) ? true : undefined;
  },
};
