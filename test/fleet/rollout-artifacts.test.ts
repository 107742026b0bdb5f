import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { artifactStore, rolloutArtifactLocation, RolloutArtifactError, type ArtifactStore } from '../../lib/fleet/rollout-artifacts';
import { LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY, useLocalAws } from '../support/moto';

/**
 * Rollout artifacts (lib/fleet/rollout-artifacts.ts) in the state bucket of a local AWS API
 * (moto): what the coordinator puts is what a worker fetches, byte for byte; an object changed
 * after the rollout was planned, a key outside the rollout's location and a bundle entry that
 * would leave the stack directory are refused.
 */
jest.setTimeout(120_000);

const aws = useLocalAws();
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

let scratch: string;
let stackDir: string;
const env = () => ({ AWS_ENDPOINT_URL: aws().endpoint, AWS_ACCESS_KEY_ID: LOCAL_AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: LOCAL_AWS_SECRET_ACCESS_KEY, AWS_REGION: 'us-east-1' });
const s3 = () => new S3Client({ region: 'us-east-1', endpoint: aws().endpoint, forcePathStyle: true, credentials: { accessKeyId: LOCAL_AWS_ACCESS_KEY_ID, secretAccessKey: LOCAL_AWS_SECRET_ACCESS_KEY } });
const STACK_JSON = JSON.stringify({ terraform: { backend: { s3: { key: 'tenancy/tenants/x.tfstate' } } }, resource: { aws_secretsmanager_secret: { s: { name: 'a' } } } });
const location = (id = randomUUID()) => rolloutArtifactLocation({ backend: 's3', bucket: aws().stateBucket, region: 'us-east-1', keyPrefix: 'fleet-test' }, id);

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'rollout-artifacts-'));
  stackDir = join(scratch, 'cdktf.out', 'stacks', 'tenant-bravo');
  mkdirSync(join(stackDir, 'assets', 'chart'), { recursive: true });
  writeFileSync(join(stackDir, 'cdk.tf.json'), STACK_JSON);
  writeFileSync(join(stackDir, 'assets', 'chart', 'values.yaml'), 'replicas: 1\n');
  // Terraform's local working files of an earlier run in this directory: never part of the artifact.
  mkdirSync(join(stackDir, '.terraform', 'providers'), { recursive: true });
  writeFileSync(join(stackDir, '.terraform', 'providers', 'big'), 'x');
  writeFileSync(join(stackDir, 'terraform.tfstate'), '{}');
});
const opened: ArtifactStore[] = [];
const open = (loc: string, e: NodeJS.ProcessEnv) => {
  const store = artifactStore(loc, e);
  opened.push(store);
  return store;
};
afterEach(() => {
  for (const store of opened.splice(0)) store.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('the location is beside the state in the state bucket; the local backend is refused with the setting to change', () => {
  const id = randomUUID();
  expect(rolloutArtifactLocation({ backend: 's3', bucket: 'state-bucket', region: 'us-east-1', keyPrefix: 'tenancy' }, id)).toBe(`s3://state-bucket/tenancy/rollouts/${id}/`);
  expect(rolloutArtifactLocation({ backend: 's3', bucket: 'state-bucket', region: 'us-east-1', keyPrefix: '' }, id)).toBe(`s3://state-bucket/rollouts/${id}/`);
  expect(() => rolloutArtifactLocation({ backend: 'local', directory: 'state' }, id)).toThrow('fleet rollouts on workers need the s3 state backend (platform.yaml state.backend: s3)');
  expect(() => rolloutArtifactLocation({ backend: 's3', bucket: 'state-bucket', region: 'us-east-1', keyPrefix: 'tenancy' }, '../other')).toThrow(RolloutArtifactError);
});

test('put then fetch on S3 gives the stack directory back (cdk.tf.json and assets), without Terraform\'s local files', async () => {
  const store = open(location(), env());
  const key = await store.put('tenant-bravo', stackDir);
  expect(`s3://${aws().stateBucket}/${key}`.startsWith(store.location)).toBe(true);
  const into = join(scratch, 'worker', 'tenant-bravo');
  await store.fetch(key, into, sha256(STACK_JSON));
  expect(readFileSync(join(into, 'cdk.tf.json'), 'utf8')).toBe(STACK_JSON);
  expect(readFileSync(join(into, 'assets', 'chart', 'values.yaml'), 'utf8')).toBe('replicas: 1\n');
  expect(existsSync(join(into, '.terraform'))).toBe(false);
  expect(existsSync(join(into, 'terraform.tfstate'))).toBe(false);
});

test('a cdk.tf.json changed in the bucket after the put is refused by the hash check; nothing is written', async () => {
  const store = open(location(), env());
  const key = await store.put('tenant-bravo', stackDir);
  const client = s3();
  try {
    const object = await client.send(new GetObjectCommand({ Bucket: aws().stateBucket, Key: key }));
    const bundle = JSON.parse(gunzipSync(Buffer.from(await object.Body!.transformToByteArray())).toString('utf8'));
    const main = bundle.files.find((f: { path: string }) => f.path === 'cdk.tf.json');
    main.data = Buffer.from(STACK_JSON.replace('"name":"a"', '"name":"evil"')).toString('base64');
    await client.send(new PutObjectCommand({ Bucket: aws().stateBucket, Key: key, Body: gzipSync(JSON.stringify(bundle)) }));
  } finally {
    client.destroy();
  }
  const into = join(scratch, 'worker', 'tenant-bravo');
  await expect(store.fetch(key, into, sha256(STACK_JSON))).rejects.toThrow(/cdk\.tf\.json has SHA-256 [0-9a-f]{64}, the rollout planned [0-9a-f]{64}.*tampered or stale/);
  expect(existsSync(into)).toBe(false);
});

test('keys outside the rollout\'s location are refused before anything is read', async () => {
  const id = randomUUID();
  const store = open(location(id), env());
  const other = open(location(), env());
  const otherKey = await other.put('tenant-bravo', stackDir);
  const own = await store.put('tenant-bravo', stackDir);
  const into = join(scratch, 'worker', 'x');
  for (const key of [otherKey, `fleet-test/tenants/x.tfstate`, own.replace('tenant-bravo', '../tenant-bravo'), own.replace('tenant-bravo', 'Tenant_Bravo'), `${own}/../../x`, `/${own}`]) {
    await expect(store.fetch(key, into, sha256(STACK_JSON))).rejects.toThrow(/is not a stack artifact in s3:\/\/.*; refused/);
  }
  expect(existsSync(into)).toBe(false);
  await expect(store.put('../tenant-bravo', stackDir)).rejects.toThrow(/not a valid stack name/);
});

test('a bundle entry with .. or an absolute path is refused; nothing is written outside (or inside) the directory', async () => {
  const store = open(location(), env());
  const key = await store.put('tenant-bravo', stackDir);
  const client = s3();
  try {
    for (const path of ['../escaped', '/tmp/escaped', 'assets/../../escaped', 'a\\..\\escaped']) {
      const bundle = { format: 'tenancy-stack-artifact/1', stack: 'tenant-bravo', files: [{ path: 'cdk.tf.json', data: Buffer.from(STACK_JSON).toString('base64') }, { path, data: Buffer.from('x').toString('base64') }] };
      await client.send(new PutObjectCommand({ Bucket: aws().stateBucket, Key: key, Body: gzipSync(JSON.stringify(bundle)) }));
      const into = join(scratch, 'worker', 'deep', 'tenant-bravo');
      await expect(store.fetch(key, into, sha256(STACK_JSON))).rejects.toThrow(/is not a relative path inside the stack directory; artifact refused/);
      expect(existsSync(into)).toBe(false);
      expect(existsSync(join(scratch, 'worker', 'deep', 'escaped'))).toBe(false);
    }
  } finally {
    client.destroy();
  }
});

test('a stack directory with a symbolic link or without cdk.tf.json is not put', async () => {
  const store = open(location(), env());
  symlinkSync('/etc/passwd', join(stackDir, 'assets', 'passwd'));
  await expect(store.put('tenant-bravo', stackDir)).rejects.toThrow(/not a regular file or directory/);
  rmSync(join(stackDir, 'assets', 'passwd'));
  rmSync(join(stackDir, 'cdk.tf.json'));
  await expect(store.put('tenant-bravo', stackDir)).rejects.toThrow(/cdk\.tf\.json does not exist: synthesize stack tenant-bravo first/);
});

test('a directory location works the same way (a shared filesystem instead of S3)', async () => {
  const store = open(join(scratch, 'artifacts'), env());
  const key = await store.put('tenant-bravo', stackDir);
  await store.fetch(key, join(scratch, 'w'), sha256(STACK_JSON));
  expect(readFileSync(join(scratch, 'w', 'cdk.tf.json'), 'utf8')).toBe(STACK_JSON);
  await expect(store.fetch(join(scratch, 'elsewhere', 'tenant-bravo.artifact.json.gz'), join(scratch, 'v'), sha256(STACK_JSON))).rejects.toThrow(/refused/);
  expect(() => artifactStore('relative/dir')).toThrow(RolloutArtifactError);
});
