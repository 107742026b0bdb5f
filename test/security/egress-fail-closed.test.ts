// Reproduces: a tenant's registry egress (workload.egress) opens its namespace's NetworkPolicy to
// the instance metadata service and other link-local addresses, loopback, the cluster's own pod,
// service and node ranges, the database subnets and the Kubernetes control plane. Fails on
// 0f20909 (main before the fix): every such CIDR was accepted (only an exact "/0" was refused, so
// 128.0.0.0/1 or 169.254.0.0/15 went through), and the construct accepted them too.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Testing, TerraformStack } from 'cdktf';
import { synthesize } from '../../lib/app/synthesize';
import { TenantNamespace } from '../../lib/kubernetes/tenant-namespace';
import { loadRegistry } from '../../lib/registry/load-registry';
import { RegistryError } from '../../lib/registry/registry-error';
import { expectAccepted, expectRejected, makeProject, tenantYaml } from '../registry/helpers';

const REGION = `name: tenancy
baseDomain: saas.example.com
controlPlaneRegion: us-east-1
regions:
  us-east-1:
    vpcId: vpc-0a1b2c3d4e5f60718
    privateSubnetIds: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]
    workloadSecurityGroupId: sg-0a1b2c3d4e5f60aa1
    clusterName: tenancy-us-east-1
    databaseSubnetCidrs: [10.10.32.0/20]
    oidcProviderArn: arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9
`;
/** The cluster's ranges unset: every private range counts as the cluster's (fail closed). */
const PLATFORM = REGION;
/** The cluster's ranges declared, and one explicit exception (a NodeLocal DNS cache on a link-local address). */
const PLATFORM_WITH_CLUSTER = `${REGION}    clusterCidrs:
      pods: [100.64.0.0/16]
      services: [172.20.0.0/16]
      nodes: [10.10.0.0/19]
      apiServer: [203.0.113.10/32]
kubernetes:
  egress:
    allow:
      - cidr: 169.254.20.10/32
        ports: [53]
        reason: NodeLocal DNSCache on every node
`;

const withEgress = (cidr: string, ports: number[]) => tenantYaml({}, `workload:\n  egress:\n    - cidr: ${cidr}\n      ports: [${ports.join(', ')}]\n`);

const attacks: [name: string, cidr: string, ports: number[], message: RegExp, platform?: string][] = [
  ['the instance metadata service', '169.254.169.254/32', [80], /link-local and metadata addresses 169\.254\.0\.0\/16/],
  ['the ECS/EKS pod identity agent', '169.254.170.23/32', [80], /link-local/],
  ['a block around link-local (any overlap, not only inside)', '169.254.0.0/15', [80], /link-local/],
  ['half the internet, which holds link-local and loopback', '128.0.0.0/1', [443], /link-local/],
  ['loopback', '127.0.0.1/32', [8080], /loopback 127\.0\.0\.0\/8/],
  ['"this network" (0.0.0.0 reaches the node itself)', '0.0.0.0/8', [80], /0\.0\.0\.0\/8/],
  ['a private range while the cluster ranges are unset', '10.1.0.0/16', [443], /cluster networks.*clusterCidrs.*unset/],
  ['the database subnets on another port', '10.10.32.0/24', [22], /database subnets 10\.10\.32\.0\/20/],
  ['the kubelet port anywhere', '198.51.100.7/32', [10250], /control-plane port 10250/],
  ['the API server port anywhere', '198.51.100.7/32', [6443], /control-plane port 6443/],
  ['the pod range', '100.64.5.0/24', [8080], /pods 100\.64\.0\.0\/16/, PLATFORM_WITH_CLUSTER],
  ['the service range', '172.20.0.10/32', [53], /services 172\.20\.0\.0\/16/, PLATFORM_WITH_CLUSTER],
  ['a block around the node range', '10.0.0.0/8', [443], /nodes 10\.10\.0\.0\/19/, PLATFORM_WITH_CLUSTER],
  ['the API server endpoint on 443', '203.0.113.0/24', [443], /API server 203\.0\.113\.10\/32/, PLATFORM_WITH_CLUSTER],
  ['an allowed exception on another port', '169.254.20.10/32', [80], /link-local/, PLATFORM_WITH_CLUSTER],
  ['a block wider than an allowed exception', '169.254.20.0/24', [53], /link-local/, PLATFORM_WITH_CLUSTER],
];

describe('a tenant cannot open egress to …', () => {
  test.each(attacks)('%s (%s)', (_name, cidr, ports, message, platform = PLATFORM) => {
    const text = withEgress(cidr, ports);
    const portAttack = /control-plane port/.test(message.source);
    expectRejected({ platform, tenants: { 'acme.yaml': text } }, [
      { file: 'tenants/acme.yaml', path: portAttack ? 'workload.egress[0].ports[0]' : 'workload.egress[0].cidr', message, at: portAttack ? /ports:/ : /cidr:/ },
    ], false);
  });

  test.each([['the IPv6 metadata service', 'fd00:ec2::254/128'], ['IPv6 loopback', '::1/128']])('%s (%s): IPv6 destinations are not accepted at all (also refused on 0f20909)', (_name, cidr) => {
    expectRejected({ platform: PLATFORM, tenants: { 'acme.yaml': withEgress(cidr, [80]) } }, [{ file: 'tenants/acme.yaml', path: 'workload.egress[0].cidr', message: /IPv4 CIDR/, at: /cidr:/ }]);
  });
});

describe('what stays open', () => {
  test('a public partner network; an exception platform.yaml lists, within its ports; a private peer once the cluster ranges are declared', () => {
    expectAccepted({ platform: PLATFORM, tenants: { 'acme.yaml': withEgress('198.51.100.0/24', [636]) } });
    expectAccepted({ platform: PLATFORM_WITH_CLUSTER, tenants: { 'acme.yaml': withEgress('169.254.20.10/32', [53]) } });
    expectAccepted({ platform: PLATFORM_WITH_CLUSTER, tenants: { 'acme.yaml': withEgress('10.200.0.0/24', [443]) } });
  });
});

describe('platform.yaml', () => {
  test('an exception needs a reason and a valid CIDR with ports', () => {
    const platform = `${REGION}kubernetes:\n  egress:\n    allow:\n      - cidr: 169.254.169.254/32\n        ports: [80]\n`;
    expectRejected({ platform, tenants: { 'acme.yaml': tenantYaml() } }, [{ file: 'platform.yaml', path: 'kubernetes.egress.allow[0].reason', message: /./ }]);
  });
});

describe('the construct and synth', () => {
  test('TenantNamespace refuses link-local, loopback and "this network" egress by itself (another registry source, a library user)', () => {
    const base = { tenantId: '748c14ae-d5b9-4538-874e-3def38dacb74', slug: 'acme', plan: 'pro' as const, model: 'bridge' as const, databaseEgress: [{ cidr: '10.10.32.0/20', ports: [5432] }] };
    for (const cidr of ['169.254.169.254/32', '127.0.0.0/8', '0.0.0.0/8', '128.0.0.0/1']) {
      const stack = new TerraformStack(Testing.app(), 'ns');
      expect(() => new TenantNamespace(stack, 'namespace', { ...base, extraEgress: [{ cidr, ports: [80] }] })).toThrow(/TenantNamespace acme: egress to .* overlaps/);
    }
    // The same namespace with a public destination builds.
    expect(() => new TenantNamespace(new TerraformStack(Testing.app(), 'ns'), 'namespace', { ...base, extraEgress: [{ cidr: '198.51.100.0/24', ports: [636] }] })).not.toThrow();
  });

  test('synth refuses the registry with file:line and writes nothing', () => {
    const project = makeProject({ platform: PLATFORM, tenants: { 'acme.yaml': withEgress('169.254.169.254/32', [80]) } });
    try {
      expect(() => synthesize({ root: project.root })).toThrow(RegistryError);
      expect(() => loadRegistry({ root: project.root })).toThrow(/tenants\/acme\.yaml:\d+:\d+: workload\.egress\[0\]\.cidr: /);
      expect(existsSync(join(project.root, 'cdktf.out'))).toBe(false);
      expect(readdirSync(project.root).filter((f) => f.includes('staging'))).toEqual([]);
    } finally {
      project.remove();
    }
  });
});
