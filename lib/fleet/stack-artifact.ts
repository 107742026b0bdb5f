import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FLEET_METADATA_KEY, type FleetComponent, type StackFleetMetadata } from './fleet-metadata';
import { stackContentHash } from './stack-hash';

/** One synthesized stack as the fleet sees it: its content hash and what it was built from. */
export interface StackArtifact {
  /** Stack name, e.g. tenant-acme or platform-us-east-1. */
  readonly stack: string;
  readonly kind: 'tenant' | 'platform';
  readonly tenantId: string | null;
  readonly slug: string | null;
  /** SHA-256 of the normalized synthesized JSON (lib/fleet/stack-hash.ts). */
  readonly contentHash: string;
  readonly components: Partial<Record<FleetComponent, string>>;
  /** Library version that synthesized it ("unknown" for output without fleet metadata). */
  readonly libraryVersion: string;
  /** Tenant stacks of the whole registry (0 when unknown). */
  readonly fleetTenants: number;
  /** SHA-256 of the file's bytes: the same bytes as at the last apply need no parsing (lib/fleet/plan.ts). */
  readonly fileHash: string;
  /** The cdk.tf.json it was read from. */
  readonly file: string;
}

/** What is known of a stack from its last apply: enough to skip parsing a byte-identical file. */
export type KnownArtifact = Pick<StackArtifact, 'stack' | 'kind' | 'tenantId' | 'contentHash' | 'components' | 'libraryVersion' | 'fleetTenants' | 'fileHash'>;

export class StackArtifactError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackArtifactError';
  }
}

interface Manifest {
  readonly stacks: Record<string, { readonly synthesizedStackPath?: string }>;
}

/** Stack names in `<outdir>/manifest.json`, sorted. */
export function manifestStacks(outdir: string): string[] {
  const file = join(resolve(outdir), 'manifest.json');
  if (!existsSync(file)) throw new StackArtifactError(`${file} does not exist: synthesize first (cdktf synth, or tenancy fleet plan --synth)`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new StackArtifactError(`${file}: not a cdktf manifest (${(e as Error).message})`);
  }
  if (!manifest || typeof manifest.stacks !== 'object' || manifest.stacks === null) throw new StackArtifactError(`${file}: not a cdktf manifest (no "stacks")`);
  return Object.keys(manifest.stacks).sort();
}

/**
 * Reads and hashes one synthesized stack, `<outdir>/stacks/<stack>/cdk.tf.json`. When its bytes are
 * those of `known` (the last apply's file), the known content hash and metadata are taken as they
 * are: the same bytes normalize to the same content. Otherwise the JSON is parsed and normalized.
 */
export function readStackArtifact(outdir: string, stack: string, known?: KnownArtifact): StackArtifact {
  if (!/^[a-z0-9][a-z0-9-]{0,127}$/.test(stack)) throw new StackArtifactError(`${JSON.stringify(stack)} is not a stack name`);
  const file = join(resolve(outdir), 'stacks', stack, 'cdk.tf.json');
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`;
    throw new StackArtifactError(`${file} ${reason}`);
  }
  const fileHash = createHash('sha256').update(bytes).digest('hex');
  if (known && known.stack === stack && known.fileHash === fileHash) {
    const { kind, tenantId, contentHash, components, libraryVersion, fleetTenants } = known;
    return { stack, kind, tenantId, slug: kind === 'tenant' ? stack.replace(/^tenant-/, '') : null, contentHash, components, libraryVersion, fleetTenants, fileHash, file };
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new StackArtifactError(`${file} is not JSON (${(e as Error).message})`);
  }
  const meta = ((json['//'] as { metadata?: Record<string, unknown> } | undefined)?.metadata?.[FLEET_METADATA_KEY] ?? undefined) as StackFleetMetadata | undefined;
  return {
    stack,
    kind: meta?.kind ?? (stack.startsWith('platform-') ? 'platform' : 'tenant'),
    tenantId: meta?.tenantId ?? null,
    slug: meta?.slug ?? null,
    contentHash: stackContentHash(json),
    components: meta?.components ?? {},
    libraryVersion: meta?.libraryVersion ?? 'unknown',
    fleetTenants: meta?.fleetTenants ?? 0,
    fileHash,
    file,
  };
}

/** Every stack of a synthesized output directory (cdktf.out), in name order. */
export function readStackArtifacts(outdir: string, known?: ReadonlyMap<string, KnownArtifact>): StackArtifact[] {
  return manifestStacks(outdir).map((stack) => readStackArtifact(outdir, stack, known?.get(stack)));
}
