import { join, relative } from 'node:path';
import type { Pool } from 'pg';
import { assertSafeSlug } from '../naming';
import { checkRegistryRules, readPlatformFile, type Registry, type TenantLocation } from '../registry/load-registry';
import { RegistryError, type RegistryProblem } from '../registry/registry-error';
import { TenantSchema, type Plan, type Tenant, type TenantStatus } from '../registry/tenant-schema';
import { formatPath } from '../registry/yaml-file';
import { RegistryConflictError, sameEntry, type RegistrySource, type TenantEntry } from './registry-source';

/**
 * The registry in the control-plane database: `tenancy.registry_entries (slug, id, entry jsonb)`,
 * each entry what `tenants/<slug>.yaml` would hold. Every load validates each entry with
 * TenantSchema and the whole with checkRegistryRules, exactly as loadRegistry does for files;
 * problems name `control-plane:registry_entries/<slug>` and the field. platform.yaml is read from
 * the project root. An offboarded tenant's row is archived (`archived_at`, migration 0006): kept,
 * never loaded, and its slug free for a new entry.
 */
export class DatabaseRegistrySource implements RegistrySource {
  readonly kind = 'database' as const;

  constructor(private readonly pool: Pool, private readonly root: string) {}

  describe(): string {
    return 'tenancy.registry_entries in the control-plane database';
  }

  async load(): Promise<Registry> {
    const problems: RegistryProblem[] = [];
    const platformFile = join(this.root, 'platform.yaml');
    const platform = readPlatformFile(platformFile, relative(this.root, platformFile) || platformFile, problems);
    const rows = (await this.pool.query<{ slug: string; entry: unknown }>('SELECT slug, entry FROM tenancy.registry_entries WHERE archived_at IS NULL ORDER BY slug')).rows;
    const parsed: { tenant: Tenant; yaml: TenantLocation; fileSlug: string }[] = [];
    for (const row of rows) {
      const location = locationOf(row.slug);
      const result = TenantSchema.safeParse(row.entry);
      if (!result.success) {
        for (const issue of result.error.issues) problems.push(location.problem(issue.path, issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : issue.message));
        continue;
      }
      parsed.push({ tenant: result.data, yaml: location, fileSlug: row.slug });
    }
    checkRegistryRules(parsed, platform, problems);
    if (problems.length > 0) throw new RegistryError(problems);
    return { platform: platform!, tenants: parsed.map((p) => p.tenant).sort((a, b) => a.slug.localeCompare(b.slug)) };
  }

  async get(slug: string): Promise<TenantEntry | undefined> {
    assertSafeSlug(slug, 'registry');
    const r = await this.pool.query<{ entry: TenantEntry }>('SELECT entry FROM tenancy.registry_entries WHERE slug = $1 AND archived_at IS NULL', [slug]);
    return r.rows[0]?.entry;
  }

  async create(entry: TenantEntry): Promise<'created' | 'unchanged'> {
    assertSafeSlug(entry.slug, 'registry');
    const inserted = await this.pool.query(
      'INSERT INTO tenancy.registry_entries (slug, id, entry) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING slug',
      [entry.slug, entry.id, JSON.stringify(entry)],
    );
    if (inserted.rowCount) return 'created';
    const existing = await this.get(entry.slug);
    if (!sameEntry(existing, entry)) throw new RegistryConflictError(entry.slug, `registry entry ${entry.slug} (or id ${entry.id}) already exists with another tenant`);
    return 'unchanged';
  }

  async setStatus(slug: string, status: TenantStatus): Promise<'updated' | 'unchanged'> {
    return this.setField(slug, 'status', status);
  }

  async setPlan(slug: string, plan: Plan): Promise<'updated' | 'unchanged'> {
    return this.setField(slug, 'plan', plan);
  }

  /** Sets one top-level scalar of a live entry (the field name is one of two constants, never input). */
  private async setField(slug: string, field: 'status' | 'plan', value: string): Promise<'updated' | 'unchanged'> {
    assertSafeSlug(slug, 'registry');
    const r = await this.pool.query(
      `UPDATE tenancy.registry_entries SET entry = jsonb_set(entry, ARRAY[$3::text], to_jsonb($2::text)), updated_at = now()
        WHERE slug = $1 AND archived_at IS NULL AND entry->>$3 IS DISTINCT FROM $2 RETURNING slug`,
      [slug, value, field],
    );
    if (r.rowCount) return 'updated';
    if (!(await this.get(slug))) throw new RegistryConflictError(slug, `no registry entry ${slug}`);
    return 'unchanged';
  }

  async archive(slug: string, id: string): Promise<'archived' | 'unchanged'> {
    assertSafeSlug(slug, 'registry');
    const r = await this.pool.query(
      `UPDATE tenancy.registry_entries SET entry = jsonb_set(entry, '{status}', '"offboarded"'), archived_at = now(), updated_at = now()
        WHERE id = $1::uuid AND slug = $2 AND archived_at IS NULL RETURNING slug`,
      [id, slug],
    );
    if (r.rowCount) return 'archived';
    if (await this.archived(slug, id)) return 'unchanged';
    throw new RegistryConflictError(slug, `no registry entry ${slug} of tenant ${id}`);
  }

  async archived(slug: string, id: string): Promise<TenantEntry | undefined> {
    assertSafeSlug(slug, 'registry');
    const r = await this.pool.query<{ entry: TenantEntry }>('SELECT entry FROM tenancy.registry_entries WHERE id = $1::uuid AND slug = $2 AND archived_at IS NOT NULL', [id, slug]);
    return r.rows[0]?.entry;
  }
}

function locationOf(slug: string): TenantLocation {
  const file = `control-plane:registry_entries/${slug}`;
  return { file, problem: (path, message) => ({ file, path: formatPath(path), message }) };
}
