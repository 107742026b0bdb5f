import { RESERVED_SLUGS, SLUG_MAX_LENGTH, SLUG_PATTERN } from '../registry/tenant-schema';

/**
 * Tenant slugs from company names. The slug becomes a schema, role, namespace, stack and AWS name
 * (see SLUG_PATTERN in lib/registry/tenant-schema.ts), so it is built from an allowlist only:
 * the name is NFKD-normalized, diacritics dropped, lowercased, and every run of anything that is
 * not an ASCII letter or digit becomes one hyphen. "Café Zürich GmbH" → "cafe-zurich-gmbh";
 * "Robert'); DROP TABLE x;--" → "robert-drop-table-x".
 */

/** Used when a name has no usable letters or digits (e.g. only CJK characters or symbols). */
const FALLBACK = 'tenant';
const MIN = 3;

/** The base slug of a company name: always matches SLUG_PATTERN and is not reserved. */
export function slugFromCompany(company: string): string {
  let s = company
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/ß/g, 'ss')
    .replace(/æ/gi, 'ae')
    .replace(/ø/gi, 'o')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // Must start with a letter.
  s = s.replace(/^[0-9-]+/, (digits) => (/[0-9]/.test(digits) ? `t-${digits}` : '')).replace(/^-+/, '');
  s = truncate(s, SLUG_MAX_LENGTH);
  if (s.length === 0) s = FALLBACK;
  if (s.length < MIN) s = `${s}-co`;
  if (RESERVED_SLUGS.has(s)) s = truncate(`${s}-co`, SLUG_MAX_LENGTH);
  if (!SLUG_PATTERN.test(s)) throw new Error(`slugFromCompany: internal error: ${JSON.stringify(s)} is not a safe slug`);
  return s;
}

/** At most `max` characters, cut at a hyphen when possible, never ending in one. */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  const lastHyphen = cut.lastIndexOf('-');
  return (lastHyphen >= MIN ? cut.slice(0, lastHyphen) : cut).replace(/-+$/, '');
}

/**
 * The first of `base`, `base-2`, `base-3`, … that `taken` does not claim (the suffix replaces the
 * end of a long base so the result stays within 30 characters).
 */
export function uniqueSlug(base: string, taken: (slug: string) => boolean, maxAttempts = 1000): string {
  if (!SLUG_PATTERN.test(base) || RESERVED_SLUGS.has(base)) throw new Error(`uniqueSlug: ${JSON.stringify(base)} is not a usable slug`);
  if (!taken(base)) return base;
  for (let n = 2; n <= maxAttempts; n++) {
    const suffix = `-${n}`;
    const candidate = `${truncate(base, SLUG_MAX_LENGTH - suffix.length)}${suffix}`;
    if (SLUG_PATTERN.test(candidate) && !RESERVED_SLUGS.has(candidate) && !taken(candidate)) return candidate;
  }
  throw new Error(`no free slug for ${JSON.stringify(base)} after ${maxAttempts} attempts`);
}
