// platform.yaml: the shared settings every tenant stack depends on.
import { renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_FILE_BYTES } from '../../lib/registry/yaml-file';
import { PLATFORM_YAML, expectAccepted, q, expectRejected, makeProject, rejectionOf, tenantYaml, type ExpectedProblem } from './helpers';

/** The sample platform.yaml with `from` replaced by `to` (which must be there). */
function edit(...pairs: [string | RegExp, string][]): string {
  let text = PLATFORM_YAML;
  for (const [from, to] of pairs) {
    const next = text.replace(from, to);
    if (next === text) throw new Error(`test bug: ${String(from)} is not in platform.yaml`);
    text = next;
  }
  return text;
}

type PlatformCase = [name: string, platform: string, expected: Omit<ExpectedProblem, 'file'>[]];
const run = (platform: string, expected: Omit<ExpectedProblem, 'file'>[]) =>
  expectRejected({ platform, tenants: { 'acme.yaml': tenantYaml() } }, expected.map((e) => ({ file: 'platform.yaml', ...e })));

const US = 'vpc-0a1b2c3d4e5f60718';
const US_SUBNETS = '[subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002, subnet-0a1b2c3d4e5f60003]';

describe('platform.yaml fields', () => {
  const cases: PlatformCase[] = [
    ['an unknown top-level field', edit(['name: tenancy', 'name: tenancy\nowner: platform-team']), [{ path: 'owner', message: /^unknown field$/, at: /^owner:/ }]],
    [
      'an unknown field in a region',
      edit(['    clusterName: tenancy-us-east-1\n', '    clusterName: tenancy-us-east-1\n    natGateway: nat-0123\n']),
      [{ path: 'regions.us-east-1.natGateway', message: /unknown field/, at: /^ {4}natGateway:/ }],
    ],
    ['an S3 field on the local backend', edit(['  directory: state', '  directory: state\n  bucket: my-state']), [{ path: 'state.bucket', message: /unknown field/, at: /^ {2}bucket:/ }]],
    ['a malformed vpc id', edit([US, 'vpc-XYZ']), [{ path: 'regions.us-east-1.vpcId', message: /must be an AWS id such as "vpc-0123456789abcdef0"/, at: /^ {4}vpcId: vpc-XYZ/ }]],
    ['a short vpc id', edit([US, 'vpc-0a1b']), [{ path: 'regions.us-east-1.vpcId', message: /AWS id/, at: /^ {4}vpcId: vpc-0a1b$/ }]],
    ['an upper-case vpc id', edit([US, 'vpc-0A1B2C3D4E5F60718']), [{ path: 'regions.us-east-1.vpcId', message: /AWS id/, at: /^ {4}vpcId: vpc-0A1B/ }]],
    ['a subnet id as the vpc id', edit([US, 'subnet-0a1b2c3d4e5f60001']), [{ path: 'regions.us-east-1.vpcId', message: /"vpc-/, at: /^ {4}vpcId: subnet-/ }]],
    ['a vpc id with a newline', edit([US, `"${US}\\n"`]), [{ path: 'regions.us-east-1.vpcId', message: /AWS id/, at: /^ {4}vpcId: "vpc-/ }]],
    [
      'a single subnet',
      edit([US_SUBNETS, '[subnet-0a1b2c3d4e5f60001]']),
      [{ path: 'regions.us-east-1.privateSubnetIds', message: /needs at least two subnets in different AZs/, at: /^ {4}privateSubnetIds: \[subnet-0a1b2c3d4e5f60001\]/ }],
    ],
    ['no subnets', edit([US_SUBNETS, '[]']), [{ path: 'regions.us-east-1.privateSubnetIds', message: /at least two subnets/, at: /^ {4}privateSubnetIds: \[\]/ }]],
    ['subnets as a string', edit([US_SUBNETS, 'subnet-0a1b2c3d4e5f60001']), [{ path: 'regions.us-east-1.privateSubnetIds', message: /expected array/ }]],
    [
      'a malformed second subnet',
      edit([US_SUBNETS, '[subnet-0a1b2c3d4e5f60001, sub-123]']),
      [{ path: 'regions.us-east-1.privateSubnetIds[1]', message: /"subnet-0123456789abcdef0"/, at: /^ {4}privateSubnetIds: \[subnet-0a1b2c3d4e5f60001, sub-123\]/ }],
    ],
    ['a malformed security group', edit(['sg-0a1b2c3d4e5f60aa1', 'sg-*']), [{ path: 'regions.us-east-1.workloadSecurityGroupId', message: /"sg-0123456789abcdef0"/, at: /^ {4}workloadSecurityGroupId: sg-\*/ }]],
    ['a cluster name with a path', edit(['clusterName: tenancy-us-east-1', 'clusterName: ../tenancy']), [{ path: 'regions.us-east-1.clusterName', message: /./, at: /^ {4}clusterName: \.\.\/tenancy/ }]],
    [
      'a missing region field',
      edit(['    workloadSecurityGroupId: sg-0a1b2c3d4e5f60aa1\n', '']),
      [{ path: 'regions.us-east-1.workloadSecurityGroupId', message: /^required: Security group of the cluster's workloads/ }],
    ],
    [
      'controlPlaneRegion not among the regions',
      edit(['controlPlaneRegion: us-east-1', 'controlPlaneRegion: us-west-2']),
      [{ path: 'controlPlaneRegion', message: /must be one of the configured regions \(us-east-1, eu-central-1\)/, at: /^controlPlaneRegion:/ }],
    ],
    ['controlPlaneRegion missing', edit(['controlPlaneRegion: us-east-1\n', '']), [{ path: 'controlPlaneRegion', message: /^required: Region of the control-plane database/ }]],
    ['no regions', edit([/regions:\n[\s\S]*?(?=# Local state)/, 'regions: {}\n']), [{ path: 'regions', message: /needs at least one region/, at: /^regions:/ }]],
    ['regions as a list', edit([/regions:\n[\s\S]*?(?=# Local state)/, 'regions: [us-east-1]\n']), [{ path: 'regions', message: /expected record/, at: /^regions:/ }]],
    ['an upper-case base domain', edit(['baseDomain: saas.example.com', 'baseDomain: Saas.Example.com']), [{ path: 'baseDomain', message: /./, at: /^baseDomain:/ }]],
    ['a single-label base domain', edit(['baseDomain: saas.example.com', 'baseDomain: localhost']), [{ path: 'baseDomain', message: /./, at: /^baseDomain:/ }]],
    ['a base domain with a trailing dot', edit(['baseDomain: saas.example.com', 'baseDomain: saas.example.com.']), [{ path: 'baseDomain', message: /./, at: /^baseDomain:/ }]],
    ['no base domain', edit(['baseDomain: saas.example.com\n', '']), [{ path: 'baseDomain', message: /^required: Tenants get <subdomain>\.<baseDomain>/ }]],
    ['an upper-case name', edit(['name: tenancy', 'name: Tenancy']), [{ path: 'name', message: /./, at: /^name:/ }]],
    ['a name with a path', edit(['name: tenancy', 'name: ../tenancy']), [{ path: 'name', message: /./, at: /^name:/ }]],
    ['an unknown state backend', edit(['backend: local', 'backend: gcs']), [{ path: 'state.backend', message: /'local' \| 's3'/, at: /^ {2}backend: gcs/ }]],
    [
      'an S3 backend without a bucket or region',
      edit(['  backend: local\n  directory: state', '  backend: s3']),
      [
        { path: 'state.bucket', message: /^required/ },
        { path: 'state.region', message: /^required/ },
      ],
    ],
    [
      'an S3 backend with an invalid bucket name',
      edit(['  backend: local\n  directory: state', '  backend: s3\n  bucket: My_Bucket\n  region: us-east-1']),
      [{ path: 'state.bucket', message: /must be an S3 bucket name/, at: /^ {2}bucket:/ }],
    ],
  ];
  test.each(cases)('%s', (_name, platform, expected) => {
    run(platform, expected);
  });
});

describe('platform.yaml kubernetes.postApplyJob', () => {
  /** The sample platform.yaml with `lines` (YAML, indented under kubernetes.postApplyJob) added. */
  const job = (lines: string) => edit(['  releaseNamespace: tenancy-system\n', `  releaseNamespace: tenancy-system\n  postApplyJob:\n${lines.replace(/^/gm, '    ')}\n`]);
  const IMAGE = 'image: ghcr.io/acme/tenancy:1.4.2';
  const cases: PlatformCase[] = [
    ['an untagged image', job('image: ghcr.io/acme/tenancy'), [{ path: 'kubernetes.postApplyJob.image', message: /^must be pinned: add a tag .* or a digest/, at: /^ {4}image: ghcr.io\/acme\/tenancy$/ }]],
    ['the latest tag', job('image: ghcr.io/acme/tenancy:latest'), [{ path: 'kubernetes.postApplyJob.image', message: /must be pinned: "latest" moves/, at: /^ {4}image:/ }]],
    ['an upper-case image', job('image: GHCR.io/Acme/tenancy:1.4.2'), [{ path: 'kubernetes.postApplyJob.image', message: /must be an image reference such as/, at: /^ {4}image:/ }]],
    ['an image with a space', job('image: "ghcr.io/acme/tenancy:1.4.2 --privileged"'), [{ path: 'kubernetes.postApplyJob.image', message: /must be an image reference/, at: /^ {4}image:/ }]],
    ['a short digest', job('image: ghcr.io/acme/tenancy@sha256:abc'), [{ path: 'kubernetes.postApplyJob.image', message: /must be an image reference/, at: /^ {4}image:/ }]],
    ['no image', job('serviceAccount: tenancy-hooks'), [{ path: 'kubernetes.postApplyJob.image', message: /^required: Image with the `tenancy` CLI/ }]],
    ['a ServiceAccount name with an underscore', job(`${IMAGE}\nserviceAccount: tenancy_hooks`), [{ path: 'kubernetes.postApplyJob.serviceAccount', message: /must be a Kubernetes name/, at: /^ {4}serviceAccount:/ }]],
    ['a ServiceAccount in another namespace', job(`${IMAGE}\nserviceAccount: kube-system/admin`), [{ path: 'kubernetes.postApplyJob.serviceAccount', message: /must be a Kubernetes name/, at: /^ {4}serviceAccount:/ }]],
    ['an upper-case ConfigMap name', job(`${IMAGE}\nplatformOutputsConfigMap: Platform-Outputs`), [{ path: 'kubernetes.postApplyJob.platformOutputsConfigMap', message: /must be a Kubernetes name/, at: /^ {4}platformOutputsConfigMap:/ }]],
    ['a Secret name with a path', job(`${IMAGE}\ncontrolPlaneSecret: ../control-plane`), [{ path: 'kubernetes.postApplyJob.controlPlaneSecret', message: /must be a Kubernetes name/, at: /^ {4}controlPlaneSecret:/ }]],
    ['a too long Secret name', job(`${IMAGE}\ncontrolPlaneSecret: ${'a'.repeat(64)}`), [{ path: 'kubernetes.postApplyJob.controlPlaneSecret', message: /1-63/, at: /^ {4}controlPlaneSecret:/ }]],
    ['an unknown field', job(`${IMAGE}\nnamespace: tenant-acme`), [{ path: 'kubernetes.postApplyJob.namespace', message: /^unknown field$/, at: /^ {4}namespace:/ }]],
    ['a bare image string', edit(['  releaseNamespace: tenancy-system\n', '  releaseNamespace: tenancy-system\n  postApplyJob: ghcr.io/acme/tenancy:1.4.2\n']), [{ path: 'kubernetes.postApplyJob', message: /expected object/, at: /^ {2}postApplyJob:/ }]],
  ];
  test.each(cases)('%s', (_name, platform, expected) => {
    run(platform, expected);
  });

  test('unset by default: no Job', () => {
    expect(expectAccepted({ tenants: { 'acme.yaml': tenantYaml() } }).platform.kubernetes.postApplyJob).toBeUndefined();
  });

  test('only the image is required; the names default', () => {
    const reg = expectAccepted({ platform: job(IMAGE), tenants: { 'acme.yaml': tenantYaml() } });
    expect(reg.platform.kubernetes.postApplyJob).toEqual({ image: 'ghcr.io/acme/tenancy:1.4.2', serviceAccount: 'tenancy-hooks', platformOutputsConfigMap: 'tenancy-platform-outputs' });
  });

  test.each([
    `ghcr.io/acme/tenancy@sha256:${'0'.repeat(64)}`,
    `registry.example.com:5000/platform/tenancy:2024.06.1@sha256:${'a'.repeat(64)}`,
    'tenancy:v1',
  ])('a pinned image is accepted: %s', (image) => {
    const reg = expectAccepted({ platform: job(`image: ${q(image)}\ncontrolPlaneSecret: tenancy-control-plane`), tenants: { 'acme.yaml': tenantYaml() } });
    expect(reg.platform.kubernetes.postApplyJob).toMatchObject({ image, controlPlaneSecret: 'tenancy-control-plane' });
  });
});

describe('platform.yaml as a file', () => {
  test('missing: reported on platform.yaml, and tenants are still checked', () => {
    expectRejected({ platform: null, tenants: { 'acme.yaml': tenantYaml({ plan: 'gold' }) } }, [
      { file: 'platform.yaml', path: '', message: /./ },
      { file: 'tenants/acme.yaml', path: 'plan', message: /expected one of/, at: /^plan:/ },
    ]);
  });

  test.each([
    ['empty', '', /must be a YAML mapping/],
    ['a list', '- us-east-1\n', /must be a YAML mapping/],
    ['a duplicate key', `${PLATFORM_YAML}name: other\n`, /Map keys must be unique/],
    ['two documents', `${PLATFORM_YAML}---\nname: other\n`, /multiple documents/],
    ['a custom tag', PLATFORM_YAML.replace('name: tenancy', 'name: !!js/function "f"'), /Unresolved tag/],
    ['too big', `${PLATFORM_YAML}# ${'x'.repeat(MAX_FILE_BYTES)}\n`, /registry files are limited to 65536/],
    ['not UTF-8 (Latin-1)', Buffer.from(`${PLATFORM_YAML}# caf\u00e9\n`, 'latin1'), /not valid UTF-8/],
  ])('%s', (_name, text, message) => {
    const p = makeProject({ tenants: { 'acme.yaml': tenantYaml() } });
    try {
      writeFileSync(join(p.root, 'platform.yaml'), text);
      const err = rejectionOf(p.root);
      expect(err.problems).toEqual([expect.objectContaining({ file: 'platform.yaml', path: '', message: expect.stringMatching(message) })]);
    } finally {
      p.remove();
    }
  });

  test('a symbolic link', () => {
    const p = makeProject({ tenants: { 'acme.yaml': tenantYaml() } });
    try {
      renameSync(join(p.root, 'platform.yaml'), join(p.root, 'real-platform.yaml'));
      symlinkSync(join(p.root, 'real-platform.yaml'), join(p.root, 'platform.yaml'));
      expect(rejectionOf(p.root).problems).toEqual([{ file: 'platform.yaml', path: '', message: 'must be a regular file, not a symbolic link' }]);
    } finally {
      p.remove();
    }
  });

  test('an invalid platform.yaml still lets every tenant file be checked', () => {
    expectRejected(
      { platform: edit(['name: tenancy', 'name: tenancy\nowner: x']), tenants: { 'acme.yaml': tenantYaml({ slug: q('../x') }), 'beta.yml': '' } },
      [
        { file: 'platform.yaml', path: 'owner', message: /unknown field/, at: /^owner:/ },
        { file: 'tenants/acme.yaml', path: 'slug', message: /must be 3-30 characters/, at: /^slug:/ },
        { file: 'tenants/beta.yml', path: '', message: /unexpected file/ },
      ],
    );
  });

  test('the sample platform.yaml with an S3 backend is valid', () => {
    const reg = expectAccepted({
      platform: edit(['  backend: local\n  directory: state', '  backend: s3\n  bucket: my-tenancy-state\n  region: us-east-1']),
      tenants: { 'acme.yaml': tenantYaml() },
    });
    expect(reg.platform.state).toEqual({ backend: 's3', bucket: 'my-tenancy-state', region: 'us-east-1', keyPrefix: 'tenancy' });
  });
});

describe('known bugs in platform.yaml checks (fail until lib/ is fixed)', () => {
  // BUG (message): a missing platform.yaml is reported as "must be a regular file", which reads
  // as if the file existed; a new user needs "does not exist". Fix in YamlFile.read: when
  // lstat returns undefined, push "does not exist" (load-registry already says so for tenants/).
  test('a missing platform.yaml says that it does not exist', () => {
    expectRejected({ platform: null, tenants: { 'acme.yaml': tenantYaml() } }, [{ file: 'platform.yaml', path: '', message: /does not exist|not found|missing/ }]);
  });

  // BUG: the keys of `regions` are not validated. They become the platform stack id
  // (platform-<key>), the AWS provider region and the state key platform/<key>.tfstate, so
  // "../../x" writes state outside the state directory, and "US-EAST-1" is not a region.
  test.each([
    ['a path', '../../etc'],
    ['upper case', 'US-EAST-1'],
    ['not a region', 'prod'],
  ])('a region key that is %s is rejected', (_name, key) => {
    run(edit(['  eu-central-1:', `  ${q(key)}:`]), [{ path: `regions.${key}`, message: /AWS region/, at: new RegExp(`^ {2}${q(key).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:`) }]);
  });

  // BUG: name allows a trailing or doubled hyphen ("tenancy-"), which makes the shared RDS
  // cluster identifiers "tenancy--bridge" / "tenancy--pool": RDS rejects identifiers with two
  // consecutive hyphens at apply time, long after synth said everything was fine.
  test.each(['tenancy-', 'ten--ancy'])('name %s is rejected', (name) => {
    run(edit(['name: tenancy', `name: ${name}`]), [{ path: 'name', message: /./, at: /^name:/ }]);
  });
});
