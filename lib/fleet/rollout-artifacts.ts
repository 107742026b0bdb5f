import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { StateConfig } from '../registry/platform-schema';

/**
 * Where a rollout keeps the synthesized stacks it deploys, so that a `tenancy worker` on any
 * machine needs neither the registry nor a synthesis: the coordinator puts every stack's
 * directory (cdk.tf.json and any assets beside it) as one object; a worker fetches it into a
 * scratch directory and applies it.
 *
 * One object per stack: a gzipped JSON bundle `{ format, stack, files: [{ path, data }] }`
 * (base64 data) — no archive library, and every entry path is checked before it is written.
 * A fetch verifies the SHA-256 of cdk.tf.json against the hash the coordinator recorded in the
 * stack's row (tenancy.rollout_stacks.file_hash): an object changed after the rollout was
 * planned (tampered with, or overwritten by another run) is refused, never applied.
 */
export interface ArtifactStore {
  /** e.g. "s3://<bucket>/<prefix>/rollouts/<id>/" (or an absolute directory). */
  readonly location: string;
  /** Uploads the synthesized stack directory (cdk.tf.json and any assets beside it) of `stack`; resolves to its key. */
  put(stack: string, stackDir: string): Promise<string>;
  /** Downloads the artifact `key` into `intoDir` (created), verifying sha256 of cdk.tf.json === expectedFileHash (else throws: tampered or stale). */
  fetch(key: string, intoDir: string, expectedFileHash: string): Promise<void>;
  /** Closes its connections (the S3 client's keep-alive sockets); the store is not used after. */
  close(): void;
}

/** A refused artifact or location: the message names what and why. */
export class RolloutArtifactError extends Error {}

const STACK_NAME = /^[a-z0-9][a-z0-9-]{0,127}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FORMAT = 'tenancy-stack-artifact/1';
const ARTIFACT_SUFFIX = '.artifact.json.gz';
/** Largest artifact a worker accepts (a tenant stack is a few hundred KB at most). */
const MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

/**
 * What a stack directory holds that is not the synthesized stack: Terraform's working state
 * from a local run (providers, state, plans). Never uploaded.
 */
const LOCAL_ONLY = /^(?:\.terraform(?:\..*)?|terraform\.tfstate(?:\..*)?|.*\.tfplan|plan)$/;

interface Bundle {
  readonly format: string;
  readonly stack: string;
  readonly files: readonly { readonly path: string; readonly data: string }[];
}

/**
 * Where the artifacts of rollout `rolloutId` go: beside the Terraform state in the state bucket
 * (`s3://<bucket>/<keyPrefix>/rollouts/<id>/`), which every worker can read already.
 */
export function rolloutArtifactLocation(state: StateConfig, rolloutId: string): string {
  if (!UUID.test(rolloutId)) throw new RolloutArtifactError(`rollout id ${JSON.stringify(rolloutId)} is not a uuid`);
  if (state.backend !== 's3') throw new RolloutArtifactError('fleet rollouts on workers need the s3 state backend (platform.yaml state.backend: s3)');
  const prefix = state.keyPrefix.replace(/^\/+|\/+$/g, '');
  return `s3://${state.bucket}/${prefix ? `${prefix}/` : ''}rollouts/${rolloutId.toLowerCase()}/`;
}

/** The store at `location`: `s3://bucket/prefix/` (AWS SDK settings from `env`, AWS_ENDPOINT_URL honoured) or an absolute directory. */
export function artifactStore(location: string, env: NodeJS.ProcessEnv = process.env): ArtifactStore {
  if (location.startsWith('s3://')) return new S3ArtifactStore(location, env);
  if (isAbsolute(location)) return new DirectoryArtifactStore(location);
  throw new RolloutArtifactError(`artifact location ${JSON.stringify(location)} is neither s3://bucket/prefix/ nor an absolute directory`);
}

function checkStack(stack: string): void {
  if (!STACK_NAME.test(stack)) throw new RolloutArtifactError(`stack name ${JSON.stringify(stack)} is not a valid stack name (${STACK_NAME.source})`);
}

/** The stack directory as a bundle: regular files only, Terraform's local working files left out. */
function packStack(stack: string, stackDir: string): Buffer {
  const root = resolve(stackDir);
  const files: { path: string; data: string }[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (LOCAL_ONLY.test(name)) continue;
      const full = join(dir, name);
      const stat = lstatSync(full);
      const path = relative(root, full).split(sep).join('/');
      if (stat.isDirectory()) walk(full);
      else if (stat.isFile()) files.push({ path, data: readFileSync(full).toString('base64') });
      else throw new RolloutArtifactError(`${full}: not a regular file or directory (a link?); a stack artifact holds files only`);
    }
  };
  walk(root);
  if (!files.some((f) => f.path === 'cdk.tf.json')) throw new RolloutArtifactError(`${join(root, 'cdk.tf.json')} does not exist: synthesize stack ${stack} first`);
  const bundle: Bundle = { format: FORMAT, stack, files };
  return gzipSync(JSON.stringify(bundle));
}

/** Writes a bundle into `intoDir` after checking every entry and the hash of cdk.tf.json. */
function unpackStack(bytes: Buffer, source: string, intoDir: string, expectedFileHash: string): void {
  if (!/^[0-9a-f]{64}$/.test(expectedFileHash)) throw new RolloutArtifactError(`expected hash ${JSON.stringify(expectedFileHash)} of ${source} is not a SHA-256`);
  let bundle: Bundle;
  try {
    bundle = JSON.parse(gunzipSync(bytes, { maxOutputLength: MAX_ARTIFACT_BYTES }).toString('utf8')) as Bundle;
  } catch (e) {
    throw new RolloutArtifactError(`${source} is not a stack artifact: ${(e as Error).message}`);
  }
  if (bundle?.format !== FORMAT || !Array.isArray(bundle.files)) throw new RolloutArtifactError(`${source} is not a stack artifact (format ${JSON.stringify(bundle?.format)})`);
  const seen = new Set<string>();
  for (const file of bundle.files) {
    const path = file?.path;
    if (
      typeof path !== 'string' ||
      typeof file.data !== 'string' ||
      path === '' ||
      path.includes('\\') ||
      path.includes('\0') ||
      posix.isAbsolute(path) ||
      path.split('/').some((part) => part === '' || part === '.' || part === '..') ||
      seen.has(path)
    ) {
      throw new RolloutArtifactError(`${source}: entry ${JSON.stringify(path)} is not a relative path inside the stack directory; artifact refused`);
    }
    seen.add(path);
  }
  const main = bundle.files.find((f) => f.path === 'cdk.tf.json');
  if (!main) throw new RolloutArtifactError(`${source} holds no cdk.tf.json`);
  const actual = createHash('sha256').update(Buffer.from(main.data, 'base64')).digest('hex');
  if (actual !== expectedFileHash) {
    throw new RolloutArtifactError(`${source}: cdk.tf.json has SHA-256 ${actual}, the rollout planned ${expectedFileHash}: the artifact was changed after the rollout was planned (tampered or stale); refused`);
  }
  const root = resolve(intoDir);
  mkdirSync(root, { recursive: true });
  for (const file of bundle.files) {
    const target = resolve(root, ...file.path.split('/'));
    // Belt and braces: the checks above already keep every entry inside.
    if (!target.startsWith(root + sep)) throw new RolloutArtifactError(`${source}: entry ${JSON.stringify(file.path)} leaves the stack directory; artifact refused`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, Buffer.from(file.data, 'base64'));
  }
}

class S3ArtifactStore implements ArtifactStore {
  readonly location: string;
  private readonly bucket: string;
  /** Key prefix ending in "/" (or empty: the whole bucket). */
  private readonly prefix: string;
  private readonly client: S3Client;

  constructor(location: string, env: NodeJS.ProcessEnv) {
    const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/.exec(location);
    if (!match) throw new RolloutArtifactError(`artifact location ${JSON.stringify(location)} is not s3://<bucket>/<prefix>/`);
    const prefix = match[2].replace(/\/+$/, '');
    if (prefix.split('/').some((p) => p === '..' || p === '.') || prefix.startsWith('/')) throw new RolloutArtifactError(`artifact location ${JSON.stringify(location)} has a bad key prefix`);
    this.bucket = match[1];
    this.prefix = prefix ? `${prefix}/` : '';
    this.location = `s3://${this.bucket}/${this.prefix}`;
    const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
    this.client = new S3Client({
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(credentials ? { credentials } : {}),
    });
  }

  async put(stack: string, stackDir: string): Promise<string> {
    checkStack(stack);
    const key = `${this.prefix}${stack}${ARTIFACT_SUFFIX}`;
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: packStack(stack, stackDir), ContentType: 'application/gzip', ServerSideEncryption: 'AES256' }));
    return key;
  }

  async fetch(key: string, intoDir: string, expectedFileHash: string): Promise<void> {
    const stack = key.startsWith(this.prefix) ? key.slice(this.prefix.length, -ARTIFACT_SUFFIX.length) : '';
    if (!key.endsWith(ARTIFACT_SUFFIX) || !STACK_NAME.test(stack) || key !== `${this.prefix}${stack}${ARTIFACT_SUFFIX}`) {
      throw new RolloutArtifactError(`artifact key ${JSON.stringify(key)} is not a stack artifact in ${this.location}; refused`);
    }
    const source = `s3://${this.bucket}/${key}`;
    let bytes: Buffer;
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if ((object.ContentLength ?? 0) > MAX_ARTIFACT_BYTES) throw new Error(`larger than ${MAX_ARTIFACT_BYTES} bytes`);
      bytes = Buffer.from(await object.Body!.transformToByteArray());
    } catch (e) {
      throw new Error(`cannot read ${source}: ${(e as Error).message}`);
    }
    unpackStack(bytes, source, intoDir, expectedFileHash);
  }

  close(): void {
    this.client.destroy();
  }
}

class DirectoryArtifactStore implements ArtifactStore {
  readonly location: string;
  private readonly dir: string;

  constructor(location: string) {
    this.dir = resolve(location);
    this.location = `${this.dir}${sep}`;
  }

  async put(stack: string, stackDir: string): Promise<string> {
    checkStack(stack);
    mkdirSync(this.dir, { recursive: true });
    const key = join(this.dir, `${stack}${ARTIFACT_SUFFIX}`);
    writeFileSync(key, packStack(stack, stackDir));
    return key;
  }

  async fetch(key: string, intoDir: string, expectedFileHash: string): Promise<void> {
    const resolved = resolve(key);
    const stack = resolved.startsWith(this.location) ? resolved.slice(this.location.length, -ARTIFACT_SUFFIX.length) : '';
    if (!resolved.endsWith(ARTIFACT_SUFFIX) || !STACK_NAME.test(stack) || resolved !== join(this.dir, `${stack}${ARTIFACT_SUFFIX}`)) {
      throw new RolloutArtifactError(`artifact key ${JSON.stringify(key)} is not a stack artifact in ${this.location}; refused`);
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(resolved);
    } catch (e) {
      throw new Error(`cannot read ${resolved}: ${(e as Error).message}`);
    }
    unpackStack(bytes, resolved, intoDir, expectedFileHash);
  }

  close(): void {
    // nothing open
  }
}
