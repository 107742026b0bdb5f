/**
 * A local AWS API (moto) for deploy tests: lib/local/ holds the implementation (`npm run
 * deploy:local` uses it too); this adds the jest lifecycle and a fixture project.
 *
 *   const aws = useLocalAws();                       // beforeAll: moto + network + state bucket; afterAll: stop
 *   const project = localDeployProject(aws(), [validTenant({ slug: 'bravo', model: 'bridge' })]);
 *   const outputs = await project.runner.deploy('tenant-bravo');
 *   expect((await project.runner.plan('tenant-bravo')).unexpected).toEqual([]);
 *   await project.runner.destroy('tenant-bravo');
 *   project.remove();
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { synthesize } from '../../lib/app/synthesize';
import { createBucket, createNetworkFixture, type LocalNetwork } from '../../lib/local/aws-api';
import { LocalStackRunner } from '../../lib/local/cdktf-local';
import { localPlatformYaml } from '../../lib/local/local-platform-yaml';
import { startMoto, type MotoServer } from '../../lib/local/moto';
import { FixtureProject } from './fixture-project';

export * from '../../lib/local/moto';
export * from '../../lib/local/aws-api';
export * from '../../lib/local/cdktf-local';
export * from '../../lib/local/local-platform-yaml';
export * from '../../lib/local/local-databases';

export interface LocalAws {
  readonly moto: MotoServer;
  readonly endpoint: string;
  readonly network: LocalNetwork;
  /** The Terraform state bucket (S3 backend, use_lockfile). */
  readonly stateBucket: string;
}

/** Starts moto with the network fixture and the state bucket before the file's tests; stops it after. */
export function useLocalAws(region = 'us-east-1'): () => LocalAws {
  let aws: LocalAws | undefined;
  beforeAll(async () => {
    const moto = await startMoto();
    try {
      const network = await createNetworkFixture(moto.endpoint, region);
      const stateBucket = 'tenancy-test-state';
      await createBucket(moto.endpoint, stateBucket, region);
      aws = { moto, endpoint: moto.endpoint, network, stateBucket };
    } catch (e) {
      await moto.stop();
      throw e;
    }
  }, 60_000);
  afterAll(async () => {
    await aws?.moto.stop();
  });
  return () => {
    if (!aws) throw new Error('useLocalAws: moto did not start (see the beforeAll error)');
    return aws;
  };
}

export interface LocalDeployProject {
  readonly project: FixtureProject;
  readonly runner: LocalStackRunner;
  /** The state key prefix in the bucket (`<prefix>/tenants/<id>.tfstate`, `<prefix>/platform/<region>.tfstate`). */
  readonly stateKeyPrefix: string;
  /** Synthesizes the project's stacks (again, e.g. after editing platform.yaml). */
  synth(): void;
  /** Removes the project directory (synthesized stacks, logs, outputs files). */
  remove(): void;
}

export interface LocalDeployProjectOptions {
  /** State key prefix in the bucket; give two projects the same one to deploy the same stacks. @default unique per project */
  readonly stateKeyPrefix?: string;
  /** Changes the generated platform.yaml text before it is written (e.g. a broken subnet id). */
  readonly editPlatformYaml?: (yaml: string) => string;
}

let projects = 0;

/**
 * A throwaway project (the sample platform.yaml with the local network ids, S3 state in the
 * local bucket, Kubernetes side off) holding `tenants`, synthesized and ready to deploy.
 */
export function localDeployProject(aws: LocalAws, tenants: readonly Record<string, unknown>[], options: LocalDeployProjectOptions = {}): LocalDeployProject {
  const project = FixtureProject.empty();
  const base = parse(readFileSync(join(project.root, 'platform.yaml'), 'utf8')) as Record<string, any>;
  projects += 1;
  const stateKeyPrefix = options.stateKeyPrefix ?? `test-${process.pid}-${projects}`;
  const yaml = localPlatformYaml({ base, networks: [aws.network], stateBucket: aws.stateBucket, stateKeyPrefix });
  project.writePlatform(options.editPlatformYaml ? options.editPlatformYaml(yaml) : yaml);
  for (const t of tenants) project.writeTenant(t);
  const runner = new LocalStackRunner({ endpoint: aws.endpoint, root: project.root });
  const synth = () => void synthesize({ root: project.root });
  synth();
  return { project, runner, stateKeyPrefix, synth, remove: () => project.remove() };
}
