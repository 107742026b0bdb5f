// `npm run deploy:local`: deploys the sample registry's tenants for real against a local AWS API
// (moto) and a local PostgreSQL, runs the post-apply hooks and prints how to connect as each tenant.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { parse } from 'yaml';
import { synthesize } from '../lib/app/synthesize';
import { registerPostApplyCommand } from '../lib/cli/post-apply-command';
import { createBucket, createNetworkFixture, type LocalNetwork } from '../lib/local/aws-api';
import { LocalStackRunner, PROVIDER_MIRROR } from '../lib/local/cdktf-local';
import { prepareLocalDatabases, standInPlatformOutputs } from '../lib/local/local-databases';
import { localPlatformYaml } from '../lib/local/local-platform-yaml';
import { startLocalPostgres, stopLocalPostgres, postgresBin, type LocalPostgres } from '../lib/local/local-postgres';
import { motoPython, startMoto, type MotoServer } from '../lib/local/moto';
import { platformNames } from '../lib/naming';
import { loadRegistry } from '../lib/registry/load-registry';
import type { Tenant } from '../lib/registry/tenant-schema';
import { AwsSecretsManagerResolver } from '../lib/runtime/secret-resolver';

interface Options {
  withSilo?: boolean;
  down?: boolean;
  registry: string;
  workDir: string;
  exit?: boolean;
}

/** What a running local deploy left behind, for `--down` after a hard kill. */
interface Processes {
  readonly pid: number;
  readonly motoPid?: number;
  readonly postgresDir?: string;
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const fail = (message: string): never => {
  process.stderr.write(`deploy:local: ${message}\n`);
  process.exit(2);
};

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function down(workDir: string): void {
  const file = join(workDir, 'processes.json');
  if (!existsSync(file)) {
    say('deploy:local: nothing is running (no .tenancy-local/processes.json)');
    return;
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as Processes;
  if (alive(p.pid) && p.pid !== process.pid) process.kill(p.pid, 'SIGTERM');
  if (alive(p.motoPid)) process.kill(p.motoPid!, 'SIGTERM');
  if (p.postgresDir && existsSync(p.postgresDir)) stopLocalPostgres(p.postgresDir);
  rmSync(file, { force: true });
  say('deploy:local: stopped the local AWS API and PostgreSQL; their data is gone');
}

/** Refuses early, naming what to install, when a binary the local deploy needs is missing. */
function preflight(root: string): void {
  try {
    motoPython();
    postgresBin();
  } catch (e) {
    fail((e as Error).message);
  }
  if (!existsSync(join(PROVIDER_MIRROR, 'registry.terraform.io', 'hashicorp', 'aws'))) fail(`no hashicorp/aws provider mirror at ${PROVIDER_MIRROR} (set TENANCY_TF_MIRROR)`);
  const terraform = spawnSync('terraform', ['version'], { encoding: 'utf8' });
  if (terraform.status !== 0) fail('terraform (>= 1.10) is not on the PATH');
  if (!existsSync(join(root, 'platform.yaml')) || !existsSync(join(root, 'tenants'))) fail(`${root} has no platform.yaml and tenants/ (give --registry)`);
}

/** One line per stack with its state and elapsed time: redrawn in place on a terminal, printed on change otherwise. */
class Progress {
  private readonly rows = new Map<string, { status: string; started: number; ended?: number }>();
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private readonly tty = Boolean(process.stdout.isTTY);

  set(stack: string, status: string, done = false): void {
    const row = this.rows.get(stack) ?? { status, started: Date.now() };
    row.status = status;
    if (done) row.ended = Date.now();
    this.rows.set(stack, row);
    if (this.tty) this.draw();
    else say(`  ${stack}: ${status} (${this.elapsed(row)})`);
  }

  start(): void {
    if (this.tty) this.timer = setInterval(() => this.draw(), 1000);
    else this.timer = setInterval(() => say(`  … ${[...this.rows].filter(([, r]) => !r.ended).map(([s, r]) => `${s} ${r.status} ${this.elapsed(r)}`).join(', ')}`), 30_000);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.tty) this.draw();
  }

  private elapsed(r: { started: number; ended?: number }): string {
    const s = Math.round(((r.ended ?? Date.now()) - r.started) / 1000);
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  }

  private draw(): void {
    if (this.drawn > 0) process.stdout.write(`\x1b[${this.drawn}A`);
    for (const [stack, r] of this.rows) process.stdout.write(`\x1b[2K  ${stack.padEnd(28)} ${r.status.padEnd(22)} ${this.elapsed(r)}\n`);
    this.drawn = this.rows.size;
  }
}

async function main(): Promise<void> {
  const program = new Command('deploy:local')
    .description('Deploy the sample registry\'s bridge and pool tenants (and with --with-silo its silo tenants and platform stacks) against a local AWS API (moto) and a local PostgreSQL.')
    .option('--with-silo', 'also deploy the silo tenants and the platform stacks (the AWS provider waits ~60 s per RDS resource: 4-6 minutes)')
    .option('--registry <root>', 'project root with platform.yaml and tenants/ (read only)', '.')
    .option('--work-dir <dir>', 'where the generated platform.yaml, synthesized stacks, logs and outputs go', '.tenancy-local')
    .option('--exit', 'stop everything once deployed and printed, instead of running until Ctrl-C')
    .option('--down', 'stop what a previous run left running (after it was killed)')
    .parse();
  const options = program.opts<Options>();
  const root = resolve(options.registry);
  const workDir = resolve(options.workDir);
  if (options.down) return down(workDir);

  preflight(root);
  const processesFile = join(workDir, 'processes.json');
  if (existsSync(processesFile) && alive((JSON.parse(readFileSync(processesFile, 'utf8')) as Processes).pid)) {
    fail('a local deploy is already running; stop it with Ctrl-C there, or: npm run deploy:local -- --down');
  }
  const project = join(workDir, 'project');
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });

  // The user's registry, read only: loaded from its own root, copied into the work dir.
  const registry = loadRegistry({ root });
  const selected = registry.tenants.filter((t: Tenant) => t.status !== 'offboarded' && (t.model !== 'silo' || options.withSilo));
  if (selected.length === 0) fail('the registry has no bridge or pool tenant to deploy');
  const regions = [...new Set(selected.map((t) => t.region))].sort();

  let moto: MotoServer | undefined;
  let postgres: LocalPostgres | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\ndeploy:local: stopping the local AWS API and PostgreSQL (all local AWS resources and data are discarded)');
    await moto?.stop();
    if (postgres) stopLocalPostgres(postgres.dir);
    rmSync(processesFile, { force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(130));
  process.on('SIGTERM', () => void stop(143));

  try {
    say(`deploy:local: starting moto and PostgreSQL (work dir ${workDir})`);
    moto = await startMoto();
    postgres = await startLocalPostgres();
    writeFileSync(processesFile, JSON.stringify({ pid: process.pid, motoPid: moto.pid, postgresDir: postgres.dir }));
    Object.assign(process.env, { AWS_ENDPOINT_URL: moto.endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: registry.platform.controlPlaneRegion, AWS_EC2_METADATA_DISABLED: 'true' });

    const networks: LocalNetwork[] = [];
    for (const region of regions) networks.push(await createNetworkFixture(moto.endpoint, region));
    const bucket = 'tenancy-local-state';
    await createBucket(moto.endpoint, bucket, regions[0]);
    const base = parse(readFileSync(join(root, 'platform.yaml'), 'utf8')) as Record<string, any>;
    // Regions without selected tenants are dropped; the control plane lives in the first region deployed.
    if (!regions.includes(base.controlPlaneRegion)) base.controlPlaneRegion = regions[0];
    writeFileSync(join(project, 'platform.yaml'), localPlatformYaml({ base, networks, stateBucket: bucket }));
    cpSync(join(root, 'tenants'), join(project, 'tenants'), { recursive: true });
    const controlPlaneRegion = String(base.controlPlaneRegion);

    const stacks = [...(options.withSilo ? regions.map((r) => `platform-${r}`) : []), ...selected.map((t) => `tenant-${t.slug}`)];
    synthesize({ root: project, select: [...(options.withSilo ? ['platform'] : []), ...selected.map((t) => t.slug)].join(',') });
    const runner = new LocalStackRunner({ endpoint: moto.endpoint, root: project, logDir: join(workDir, 'logs') });

    say(`deploy:local: cdktf deploy of ${stacks.length} stacks (logs in ${runner.logDir})`);
    const progress = new Progress();
    for (const s of stacks) progress.set(s, 'waiting');
    progress.start();
    const outputs: Record<string, Record<string, unknown>> = {};
    const failures: string[] = [];
    await Promise.all(stacks.map(async (stack) => {
      progress.set(stack, 'deploying');
      try {
        outputs[stack] = await runner.deploy(stack);
        progress.set(stack, 'deployed', true);
      } catch (e) {
        progress.set(stack, 'FAILED', true);
        failures.push(`${stack}: ${(e as Error).message}`);
      }
    }));
    progress.stop();
    if (failures.length > 0) throw new Error(`deploy failed:\n${failures.join('\n\n')}`);

    // Without the platform stacks, their clusters are stand-ins on the local server.
    const hostMap: string[] = [];
    if (options.withSilo) hostMap.push(`*.rds.amazonaws.com=127.0.0.1:${postgres.port}`);
    else {
      for (const region of regions) {
        const stand = await standInPlatformOutputs(moto.endpoint, region, registry.platform.name);
        if (region !== controlPlaneRegion) for (const k of Object.keys(stand)) if (k.startsWith('control_plane_')) delete stand[k];
        outputs[`platform-${region}`] = stand;
      }
      hostMap.push(`*.db.${registry.platform.name}.internal=127.0.0.1:${postgres.port}`);
    }
    const outputsFile = join(workDir, 'outputs.json');
    writeFileSync(outputsFile, JSON.stringify(outputs, null, 2));
    await prepareLocalDatabases({ endpoint: moto.endpoint, region: controlPlaneRegion, admin: postgres.admin, outputs });

    say('deploy:local: tenancy post-apply');
    const cli = new Command('tenancy').exitOverride();
    registerPostApplyCommand(cli, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    await cli.parseAsync(['post-apply', '--outputs', outputsFile, '--insecure-no-tls', '--registry', project, ...hostMap.flatMap((m) => ['--database-host-map', m])], { from: 'user' });
    if (process.exitCode) throw new Error('tenancy post-apply failed (see above)');

    await printConnections(outputs, postgres, registry.platform.name, controlPlaneRegion);
    if (options.exit) return void (await stop(0));
    say('\ndeploy:local: running. Ctrl-C stops the local AWS API and PostgreSQL (everything deployed is discarded);');
    say('              if this process is killed, run: npm run deploy:local -- --down');
    await new Promise(() => undefined);
  } catch (e) {
    process.stderr.write(`deploy:local: ${(e as Error).message}\n`);
    await stop(1);
  }
}

async function printConnections(outputs: Record<string, Record<string, any>>, pg: LocalPostgres, platformName: string, controlPlaneRegion: string): Promise<void> {
  const secrets = new AwsSecretsManagerResolver();
  const url = (user: string, password: string, db: string) => `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/${db}`;
  say('\nConnect as each tenant (local PostgreSQL, no TLS: local development only):');
  for (const [stack, o] of Object.entries(outputs)) {
    if (!stack.startsWith('tenant-')) continue;
    if (o.model === 'bridge') {
      const c = await secrets.resolve(o.credentials_secret_arn);
      say(`  ${o.slug} (bridge, schema ${o.schema}):  psql '${url(c.username, c.password, o.db_name)}'`);
    } else if (o.model === 'pool') {
      const c = await secrets.resolve(platformNames(platformName).poolAppSecretName);
      say(`  ${o.slug} (pool, RLS by ${o.tenant_setting}):  psql '${url(c.username, c.password, o.db_name)}'`);
      say(`      then per transaction: BEGIN; SELECT set_config('${o.tenant_setting}', '${o.tenant_id}', true); SELECT * FROM projects; COMMIT;`);
    } else if (o.model === 'silo') {
      const c = await secrets.resolve(o.app_credentials_secret_arn);
      say(`  ${o.slug} (silo, own database):  psql '${url(c.username, c.password, o.db_name)}'`);
    }
  }
  const cp = outputs[`platform-${controlPlaneRegion}`];
  if (cp?.control_plane_master_secret_arn) {
    const c = await secrets.resolve(cp.control_plane_master_secret_arn);
    say(`\nControl plane:  TENANCY_INSECURE_NO_TLS=1 TENANCY_CONTROL_PLANE_URL='${url(c.username, c.password, 'control_plane')}' node dist/bin/tenancy.js status`);
  }
  say(`Local AWS API:  AWS_ENDPOINT_URL=${process.env.AWS_ENDPOINT_URL} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws secretsmanager list-secrets`);
}

void main();
