import { z } from 'zod';
import { REGION_PATTERN } from './tenant-schema';

const ID = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), { message: `must be an AWS id such as "${prefix}-0123456789abcdef0"` });

export const RegionNetworkSchema = z
  .strictObject({
    vpcId: ID('vpc').describe('VPC the databases live in (the cluster VPC).'),
    privateSubnetIds: z.array(ID('subnet')).min(2, { message: 'needs at least two subnets in different AZs (RDS requires it)' }),
    workloadSecurityGroupId: ID('sg').describe("Security group of the cluster's workloads; only it may reach tenant databases."),
    clusterName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/).describe('EKS cluster the tenant namespaces live in.'),
  })
  .describe('Network and cluster inputs of one region (created outside this project).');

export const StateSchema = z
  .discriminatedUnion('backend', [
    z.strictObject({
      backend: z.literal('local'),
      directory: z
        .string()
        .regex(/^(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_][A-Za-z0-9_./-]*$/, { message: 'must be a relative path inside the project (no "..", not absolute)' })
        .default('state')
        .describe('Directory (relative to the project) for state files.'),
    }),
    z.strictObject({
      backend: z.literal('s3'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'must be an S3 bucket name' }),
      region: z.string().min(1),
      keyPrefix: z.string().regex(/^[A-Za-z0-9/_.-]*$/).default('tenancy'),
      kmsKeyId: z.string().optional().describe('KMS key for state encryption; SSE-S3 otherwise.'),
    }),
  ])
  .describe('Where Terraform state lives. The S3 backend locks with a lock file (use_lockfile).');

export const PlatformSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,20}$/, { message: 'must be 2-21 lowercase letters and digits with single inner hyphens, starting with a letter' }).default('tenancy').describe('Prefix of shared resource names.'),
    baseDomain: z.string().regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/).describe('Tenants get <subdomain>.<baseDomain>.'),
    controlPlaneRegion: z.string().min(1).describe('Region of the control-plane database.'),
    regions: z.record(z.string().regex(REGION_PATTERN, { message: 'must be an AWS region such as "us-east-1"' }), RegionNetworkSchema).refine((r) => Object.keys(r).length > 0, { message: 'needs at least one region' }),
    state: StateSchema.default({ backend: 'local', directory: 'state' }),
  })
  .describe('Shared platform settings (platform.yaml).');

export type PlatformConfig = z.output<typeof PlatformSchema>;
export type RegionNetwork = z.output<typeof RegionNetworkSchema>;
export type StateConfig = z.output<typeof StateSchema>;
