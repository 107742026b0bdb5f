import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * A PostgreSQL SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
 * RFC 5803), as PostgreSQL computes it for `password` (ASCII passwords; PostgreSQL also applies
 * SASLprep to non-ASCII ones). `ALTER ROLE … PASSWORD '<verifier>'` stores it as is, which lets a
 * provisioning step set a role's password without the server (or PgBouncer) seeing the password.
 */
export function scramSha256Verifier(password: string, options: { salt?: Buffer; iterations?: number } = {}): string {
  if (!/^[\x20-\x7e]*$/.test(password)) throw new Error('scramSha256Verifier: only printable ASCII passwords (no SASLprep here)');
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? 4096;
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
