/**
 * The few AWS calls a local deploy makes outside Terraform (network fixture, state bucket, RDS
 * deletion protection), as plain query/REST requests to a local AWS API (moto). moto does not
 * check signatures: the Authorization header only names the region and service it routes by.
 * Never point these at real AWS.
 */

/** Dummy credentials for the local API (moto accepts any). */
export const LOCAL_AWS_ACCESS_KEY_ID = 'testing';
export const LOCAL_AWS_SECRET_ACCESS_KEY = 'testing';

/** An AWS API error answered by the local API (code and message from its XML body). */
export class LocalAwsError extends Error {
  constructor(readonly action: string, readonly status: number, readonly body: string) {
    super(`${action} failed (HTTP ${status}): ${xmlValue(body, 'Code') ?? ''} ${xmlValue(body, 'Message') ?? body.slice(0, 500)}`.trim());
  }
}

const authorization = (service: string, region: string) =>
  `AWS4-HMAC-SHA256 Credential=${LOCAL_AWS_ACCESS_KEY_ID}/20250101/${region}/${service}/aws4_request, SignedHeaders=host, Signature=0`;

/** The first `<tag>value</tag>` of an XML document. */
export function xmlValue(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
}

/** One AWS query-protocol call (EC2, RDS, …); resolves to the XML body. */
export async function awsQuery(endpoint: string, service: string, region: string, version: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: authorization(service, region) },
    body: new URLSearchParams({ ...params, Version: version }).toString(),
  });
  const body = await res.text();
  if (!res.ok) throw new LocalAwsError(`${service}:${params.Action}`, res.status, body);
  return body;
}

const ec2 = (endpoint: string, region: string, params: Record<string, string>) => awsQuery(endpoint, 'ec2', region, '2016-11-15', params);
const rds = (endpoint: string, region: string, params: Record<string, string>) => awsQuery(endpoint, 'rds', region, '2014-10-31', params);

/** The network a platform team would have created: what platform.yaml's region entry references. */
export interface LocalNetwork {
  readonly region: string;
  readonly vpcId: string;
  readonly vpcCidr: string;
  /** One per availability zone (a, b, c). */
  readonly privateSubnetIds: readonly string[];
  readonly databaseSubnetCidrs: readonly string[];
  readonly workloadSecurityGroupId: string;
}

/**
 * Creates a VPC (10.10.0.0/16), three private subnets in zones a-c (10.10.32.0/20, …48, …64) and
 * the workloads' security group. EC2 ids cannot be chosen: the caller writes the returned ids
 * into a platform.yaml ({@link localPlatformYaml}).
 */
export async function createNetworkFixture(endpoint: string, region = 'us-east-1'): Promise<LocalNetwork> {
  const vpcCidr = '10.10.0.0/16';
  const vpcId = xmlValue(await ec2(endpoint, region, { Action: 'CreateVpc', CidrBlock: vpcCidr }), 'vpcId');
  if (!vpcId) throw new Error('CreateVpc returned no vpcId');
  const databaseSubnetCidrs = ['10.10.32.0/20', '10.10.48.0/20', '10.10.64.0/20'];
  const privateSubnetIds: string[] = [];
  for (const [i, cidr] of databaseSubnetCidrs.entries()) {
    const xml = await ec2(endpoint, region, { Action: 'CreateSubnet', VpcId: vpcId, CidrBlock: cidr, AvailabilityZone: `${region}${'abc'[i]}` });
    const id = xmlValue(xml, 'subnetId');
    if (!id) throw new Error(`CreateSubnet returned no subnetId: ${xml.slice(0, 300)}`);
    privateSubnetIds.push(id);
  }
  const sg = xmlValue(await ec2(endpoint, region, { Action: 'CreateSecurityGroup', GroupName: 'tenancy-workloads', GroupDescription: 'Cluster workloads (local fixture)', VpcId: vpcId }), 'groupId');
  if (!sg) throw new Error('CreateSecurityGroup returned no groupId');
  return { region, vpcId, vpcCidr, privateSubnetIds, databaseSubnetCidrs, workloadSecurityGroupId: sg };
}

/** Creates an S3 bucket (the Terraform state bucket) in `region`. */
export async function createBucket(endpoint: string, bucket: string, region = 'us-east-1'): Promise<void> {
  const body = region === 'us-east-1' ? undefined : `<CreateBucketConfiguration><LocationConstraint>${region}</LocationConstraint></CreateBucketConfiguration>`;
  const res = await fetch(`${endpoint}/${bucket}`, { method: 'PUT', headers: { authorization: authorization('s3', region) }, body });
  if (!res.ok) throw new LocalAwsError(`s3:CreateBucket ${bucket}`, res.status, await res.text());
}

/** The object's body, or undefined when there is no such object. */
export async function getObject(endpoint: string, bucket: string, key: string, region = 'us-east-1'): Promise<string | undefined> {
  const res = await fetch(`${endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`, { headers: { authorization: authorization('s3', region) } });
  if (res.status === 404) return undefined;
  const body = await res.text();
  if (!res.ok) throw new LocalAwsError(`s3:GetObject ${bucket}/${key}`, res.status, body);
  return body;
}

/** Writes an object (e.g. a planted state lock in a test). */
export async function putObject(endpoint: string, bucket: string, key: string, body: string, region = 'us-east-1'): Promise<void> {
  const res = await fetch(`${endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`, { method: 'PUT', headers: { authorization: authorization('s3', region) }, body });
  if (!res.ok) throw new LocalAwsError(`s3:PutObject ${bucket}/${key}`, res.status, await res.text());
}

/**
 * Turns RDS deletion protection off on the given DB instances and clusters, as offboarding does
 * before a destroy (lib/onboarding/stack-deployer.ts: `aws rds modify-db-instance --no-deletion-protection`).
 */
export async function liftDeletionProtection(endpoint: string, region: string, targets: { instances?: readonly string[]; clusters?: readonly string[] }): Promise<void> {
  for (const id of targets.instances ?? []) {
    await rds(endpoint, region, { Action: 'ModifyDBInstance', DBInstanceIdentifier: id, DeletionProtection: 'false', ApplyImmediately: 'true' });
  }
  for (const id of targets.clusters ?? []) {
    await rds(endpoint, region, { Action: 'ModifyDBCluster', DBClusterIdentifier: id, DeletionProtection: 'false', ApplyImmediately: 'true' });
  }
}
