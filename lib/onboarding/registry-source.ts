import type { Registry } from '../registry/load-registry';
import type { Plan, TenantInput, TenantStatus } from '../registry/tenant-schema';

/**
 * Where the tenant registry lives, for the lifecycle pipeline. Two sources, one contract: every
 * load validates every entry with the registry's schema and rules (TenantSchema and
 * checkRegistryRules), whatever the storage.
 *
 * - `directory` (GitOps, the default): `tenants/<slug>.yaml` under the project root
 *   (DirectoryRegistrySource). New entries are written atomically (a temporary file linked into
 *   place, never overwriting) and committed when the root is a git work tree; offboarded tenants'
 *   entries are archived under `tenants/offboarded/`.
 * - `database`: table `tenancy.registry_entries` of the control plane (DatabaseRegistrySource),
 *   for platforms that keep no registry in git; platform.yaml is still read from the root.
 */
export type RegistrySourceKind = 'directory' | 'database';
export const REGISTRY_SOURCE_KINDS: readonly RegistrySourceKind[] = ['directory', 'database'];

/** A registry entry as written (YAML fields; the id and slug always present). */
export type TenantEntry = TenantInput & { readonly id: string; readonly slug: string };

export interface RegistrySource {
  readonly kind: RegistrySourceKind;
  /** For messages and the audit log, e.g. "tenants/ in /srv/platform (git)". */
  describe(): string;
  /** Every entry, validated; throws RegistryError listing every problem. */
  load(): Promise<Registry>;
  /** The entry of `slug` as stored (not validated), or undefined. */
  get(slug: string): Promise<TenantEntry | undefined>;
  /**
   * Creates the entry of a new tenant. `unchanged` when the same entry is already there (a retry);
   * throws {@link RegistryConflictError} when another entry has the slug.
   */
  create(entry: TenantEntry, message: string): Promise<'created' | 'unchanged'>;
  /** Sets an existing entry's lifecycle status; `unchanged` when it has it already. */
  setStatus(slug: string, status: TenantStatus, message: string): Promise<'updated' | 'unchanged'>;
  /**
   * Sets an existing entry's plan (`tenancy plan`), written and committed like a status change;
   * `unchanged` when it has it already (a retry: an uncommitted earlier write is committed then).
   */
  setPlan(slug: string, plan: Plan, message: string): Promise<'updated' | 'unchanged'>;
  /**
   * Offboarding's end: the entry of tenant `id` leaves the registry, with status `offboarded`, kept
   * where auditors find it and loading does not (directory: `tenants/offboarded/<slug>.<id>.yaml`,
   * committed; database: the row marked archived), so a new tenant may take the slug. `unchanged`
   * when an earlier attempt archived it; a {@link RegistryConflictError} when neither is there.
   */
  archive(slug: string, id: string, message: string): Promise<'archived' | 'unchanged'>;
  /** The archived entry of tenant `id` (whose slug was `slug`), as stored, or undefined. */
  archived(slug: string, id: string): Promise<TenantEntry | undefined>;
}

export class RegistryConflictError extends Error {
  constructor(readonly slug: string, message: string) {
    super(message);
    this.name = 'RegistryConflictError';
  }
}

/** Entries compared as data (key order and YAML formatting aside). */
export function sameEntry(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
