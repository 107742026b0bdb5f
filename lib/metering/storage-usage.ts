import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { assertSafeSlug } from '../naming';
import { isTenantId } from './usage-keys';

/** What storage reporting needs of a tenant. */
export interface StorageTenant {
  readonly id: string;
  readonly slug: string;
}

/** Measures the bytes a tenant stores. */
export interface StorageMeasure {
  bytes(tenant: StorageTenant): Promise<number>;
  /** Each tenant's bytes, measured concurrently (bounded); a failure is that tenant's, not the batch's. */
  bytesOfMany?(tenants: readonly StorageTenant[]): Promise<Map<string, number | Error>>;
}

export interface S3StorageMeasureOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /**
   * The tenant's key prefix: a template with `{tenant_id}` and/or `{slug}`, ending in `/` (so that
   * tenant `acme` never counts `acme-corp/`). @default "tenants/{tenant_id}/"
   */
  readonly prefix?: string;
  /** Tenants listed at once. @default 8 */
  readonly concurrency?: number;
}

/**
 * A tenant's stored bytes: the sum of `Size` over ListObjectsV2 of its prefix, every page
 * (1,000 keys each, ContinuationToken), tenants listed concurrently.
 */
export class S3StorageMeasure implements StorageMeasure {
  private readonly prefix: string;
  private readonly limit: ReturnType<typeof pLimit>;

  constructor(private readonly options: S3StorageMeasureOptions) {
    this.prefix = options.prefix ?? 'tenants/{tenant_id}/';
    if (!this.prefix.endsWith('/')) throw new Error(`storage prefix ${JSON.stringify(this.prefix)} must end with "/" (a tenant's prefix must not be the start of another's)`);
    if (!/\{tenant_id\}|\{slug\}/.test(this.prefix)) throw new Error(`storage prefix ${JSON.stringify(this.prefix)} must contain {tenant_id} or {slug}`);
    if (/\{(?!tenant_id\}|slug\})[^}]*\}/.test(this.prefix)) throw new Error(`storage prefix ${JSON.stringify(this.prefix)}: only {tenant_id} and {slug} are placeholders`);
    if (!options.bucket) throw new Error('storage measure: no bucket');
    this.limit = pLimit(options.concurrency ?? 8);
  }

  prefixOf(tenant: StorageTenant): string {
    if (!isTenantId(tenant.id)) throw new Error(`tenant id ${JSON.stringify(tenant.id)} is not a lowercase UUID`);
    assertSafeSlug(tenant.slug, 'storage prefix');
    return this.prefix.replace(/\{tenant_id\}/g, tenant.id).replace(/\{slug\}/g, tenant.slug);
  }

  async bytes(tenant: StorageTenant): Promise<number> {
    const prefix = this.prefixOf(tenant);
    let total = 0;
    let token: string | undefined;
    do {
      const page = await this.options.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) total += o.Size ?? 0;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) throw new Error(`ListObjectsV2 of s3://${this.options.bucket}/${prefix}: truncated page without a continuation token`);
    } while (token);
    return total;
  }

  async bytesOfMany(tenants: readonly StorageTenant[]): Promise<Map<string, number | Error>> {
    const out = new Map<string, number | Error>();
    await Promise.all(tenants.map((t) => this.limit(async () => {
      try {
        out.set(t.id, await this.bytes(t));
      } catch (e) {
        out.set(t.id, e instanceof Error ? e : new Error(String(e)));
      }
    })));
    return out;
  }
}

/**
 * Bytes as the storage meter's value: decimal gigabytes (10^9 bytes) with six decimals, rounded up
 * (a tenant storing anything is never billed 0; Stripe takes at most 15 significant digits).
 */
export function storageGigabytes(bytes: number): number {
  return Math.ceil(bytes / 1e3) / 1e6;
}
