import { cidrWithin, cidrsOverlap, parseIpv4Cidr, type Cidr } from './cidr';
import type { PlatformConfig } from './platform-schema';

/**
 * Where a tenant's extra egress (registry `workload.egress`) may not go: the node's own and
 * link-local addresses (the instance metadata service, the EKS Pod Identity and ECS agents), the
 * cluster's pod, service and node ranges, the database subnets (the platform opens the database
 * port there itself), the API server and the Kubernetes control-plane ports anywhere. A range is
 * refused on any overlap, not only when the destination lies inside it: 128.0.0.0/1 holds
 * 169.254.169.254. platform.yaml can open a reserved destination explicitly
 * (kubernetes.egress.allow), per CIDR and ports, with a reason.
 *
 * IPv6 destinations (fd00:ec2::/64, ::1) cannot be written at all: registry egress is IPv4 only.
 */

/** A range no tenant egress may overlap, with the name the error uses. */
export interface ReservedRange {
  readonly name: string;
  readonly cidr: string;
}

/** An explicit exception of platform.yaml: tenants may reach `cidr` (or a block inside it) on `ports`. */
export interface EgressException {
  readonly cidr: string;
  readonly ports: readonly number[];
}

export interface EgressPolicy {
  readonly reserved: readonly ReservedRange[];
  /** Ports of the Kubernetes control plane, refused towards any destination. */
  readonly controlPlanePorts: readonly number[];
  readonly allow: readonly EgressException[];
}

/** Reserved on every node of every cluster, whatever platform.yaml says about the cluster. */
export const ALWAYS_RESERVED: readonly ReservedRange[] = [
  // 0.0.0.0 reaches the node itself on Linux.
  { name: '"this network"', cidr: '0.0.0.0/8' },
  { name: 'loopback', cidr: '127.0.0.0/8' },
  { name: 'link-local and metadata addresses', cidr: '169.254.0.0/16' },
];

/**
 * The private ranges, taken as the cluster's when platform.yaml does not declare the cluster's
 * ranges (regions.<region>.clusterCidrs): without them, any private block may be a pod, a node or
 * a peered network, so none is open (fail closed).
 */
export const PRIVATE_RANGES: readonly string[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'];

/** etcd, the API server, the kubelet (and its read-only port), kube-proxy, controller manager and scheduler. */
export const CONTROL_PLANE_PORTS: readonly number[] = [2379, 2380, 6443, 10250, 10255, 10256, 10257, 10259];

/** The policy a namespace applies when nobody says more: only what every node reserves. */
export const BASE_EGRESS_POLICY: EgressPolicy = { reserved: ALWAYS_RESERVED, controlPlanePorts: CONTROL_PLANE_PORTS, allow: [] };

/** The egress policy of tenants in `region`, from platform.yaml. */
export function egressPolicyFor(platform: PlatformConfig, region: string): EgressPolicy {
  const network = platform.regions[region];
  const cluster = network?.clusterCidrs;
  const reserved: ReservedRange[] = [...ALWAYS_RESERVED];
  if (cluster) {
    for (const [kind, name] of [['pods', 'pods'], ['services', 'services'], ['nodes', 'nodes'], ['apiServer', 'API server']] as const) {
      for (const cidr of cluster[kind]) reserved.push({ name, cidr });
    }
  } else {
    for (const cidr of PRIVATE_RANGES) reserved.push({ name: `cluster networks (platform.yaml regions.${region}.clusterCidrs is unset, so every private range counts)`, cidr });
  }
  for (const cidr of network?.databaseSubnetCidrs ?? []) reserved.push({ name: 'database subnets', cidr });
  return { reserved, controlPlanePorts: CONTROL_PLANE_PORTS, allow: platform.kubernetes.egress.allow };
}

/** One problem, with its path below the list of egress rules. */
export interface EgressProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const HOW_TO_ALLOW = 'tenants may not reach it unless platform.yaml kubernetes.egress.allow lists it';

/** The problems of a tenant's egress rules under `policy` (rules whose CIDR does not parse are left to the schema). */
export function egressRuleProblems(rules: readonly { cidr: string; ports: readonly number[] }[], policy: EgressPolicy): EgressProblem[] {
  const problems: EgressProblem[] = [];
  const allow = policy.allow.map((a) => ({ cidr: parseIpv4Cidr(a.cidr), ports: a.ports })).filter((a): a is { cidr: Cidr; ports: readonly number[] } => a.cidr !== undefined);
  const reserved = policy.reserved.map((r) => ({ name: r.name, cidr: parseIpv4Cidr(r.cidr)! }));
  rules.forEach((rule, i) => {
    const cidr = parseIpv4Cidr(rule.cidr);
    if (!cidr) return;
    // An exception covers the rule when the rule's block lies inside it, on ports it lists.
    const exceptions = allow.filter((a) => cidrWithin(cidr, a.cidr));
    const allowedOn = (port: number) => exceptions.some((a) => a.ports.includes(port));
    const coveredEverywhere = rule.ports.length > 0 && rule.ports.every(allowedOn);
    const hits = coveredEverywhere ? [] : reserved.filter((r) => cidrsOverlap(cidr, r.cidr));
    if (hits.length > 0) {
      problems.push({ path: [i, 'cidr'], message: `overlaps ${hits.map((h) => `${h.name} ${h.cidr.text}`).join(', ')}; ${HOW_TO_ALLOW} with these ports` });
    }
    rule.ports.forEach((port, j) => {
      if (policy.controlPlanePorts.includes(port) && !allowedOn(port)) {
        problems.push({ path: [i, 'ports', j], message: `is a Kubernetes control-plane port (control-plane port ${port}: etcd, API server, kubelet, …); ${HOW_TO_ALLOW}` });
      }
    });
  });
  return problems;
}
