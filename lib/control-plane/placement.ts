/**
 * A tenant's placement (tenancy.tenants.placement) says where its data is — host, port, database,
 * schema, role and a reference to the secret holding its credentials — never a secret itself. The
 * database refuses secret-like keys at any depth and in any case (the CHECK of control-plane
 * migration 0004, tenancy.placement_secret_keys); this is the same rule in TypeScript, for an error
 * that names the key before anything is written.
 */

/** Key, lowercased with everything but letters and digits removed, that names a secret… */
const SECRET_LIKE = /(passw|passwd|pwd|passphrase|secret|token|apikey|privatekey|credential|accesskey|sessionkey|clientkey|signingkey|encryptionkey|connectionstring|dsn)/;
/** …unless it is a reference to one (secret_ref, token_arn). */
const REFERENCE = /(ref|arn)$/;

export function isSecretLikeKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_LIKE.test(k) && !REFERENCE.test(k);
}

/** Paths (a.b[0].c) of the secret-like keys anywhere in `value`. */
export function secretLikePlacementKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretLikePlacementKeys(v, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const here = path ? `${path}.${k}` : k;
    return [...(isSecretLikeKey(k) ? [here] : []), ...secretLikePlacementKeys(v, here)];
  });
}
