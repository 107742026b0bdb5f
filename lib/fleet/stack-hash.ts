import { createHash } from 'node:crypto';

/**
 * The identity of what a stack deploys: its synthesized JSON (cdk.tf.json) without what changes
 * when nothing real does, keys sorted, hashed with SHA-256. Left out:
 *
 * - every `//` key, at any depth: cdktf's metadata (its version, the stack name, construct paths
 *   and unique ids, the outputs map) and this library's fleet metadata (lib/fleet/fleet-metadata.ts);
 * - `terraform.backend`: where the state lives (a local path relative to the output directory, or
 *   the S3 bucket and key), not what is deployed. Moving state is `terraform init -migrate-state`,
 *   never a deploy.
 *
 * Arrays keep their order (it is meaningful: Helm value layers, ingress rules).
 */
export function stackContentHash(synthesized: unknown): string {
  return createHash('sha256').update(normalizedStackJson(synthesized)).digest('hex');
}

/** The normalized JSON text that {@link stackContentHash} hashes. */
export function normalizedStackJson(synthesized: unknown): string {
  const out: string[] = [];
  write(synthesized, out, true);
  return out.join('');
}

/** Stable JSON (sorted keys) hashed with SHA-256: the identity of an input (a registry entry, settings). */
export function valueHash(value: unknown): string {
  const out: string[] = [];
  write(value ?? null, out, false);
  return createHash('sha256').update(out.join('')).digest('hex');
}

function write(value: unknown, out: string[], top: boolean): void {
  if (value === null || typeof value !== 'object') {
    // undefined (absent in JSON) and functions never come from parsed JSON; written as null for safety.
    out.push(value === undefined ? 'null' : JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      write(value[i], out, false);
    }
    out.push(']');
    return;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => k !== '//' && record[k] !== undefined).sort();
  out.push('{');
  let first = true;
  for (const key of keys) {
    let v = record[key];
    if (top && key === 'terraform' && v && typeof v === 'object' && !Array.isArray(v)) {
      const { backend: _backend, ...rest } = v as Record<string, unknown>;
      v = rest;
    }
    if (!first) out.push(',');
    first = false;
    out.push(JSON.stringify(key), ':');
    write(v, out, false);
  }
  out.push('}');
}
