import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Argument, CommanderError, InvalidArgumentError, type Command } from 'commander';
import type { PoolConfig } from 'pg';
import { controlPlaneConnection, ControlPlaneTlsError } from '../control-plane/connection';
import { loadMigrationSets, MigrationLoadError } from '../migrate/migration-set';
import { listTenantTargets, recordRun } from '../migrate/control-plane';
import { MIGRATE_DEFAULTS, migrateTargets } from '../migrate/runner';
import { renderRunTables, startProgress, summaryJsonLine, targetJsonLine } from '../migrate/report';
import { TARGET_KINDS, TargetError, type MigrationTarget, type TargetKind } from '../migrate/targets';
import { SLUG_PATTERN } from '../registry/tenant-schema';
import { loadTargetsFile, TargetsFileError } from '../migrate/targets-file';
import { FAILING_STATUSES, type MigrationRun, type TargetResult } from '../migrate/result';
import { migrateInWaves, type WaveMigrateOptions, type WaveReport, type WaveRunResult } from '../migrate/waves';
import { parseMaxFailures, parseWavePercents, WaveSpecError } from '../fleet/waves';

/**
 * `tenancy migrate [up|down]`: applies the repository's migrations to the targets of a targets
 * file, or to every bridge and silo tenant listed in the control plane. Exit code 0 when every
 * target is applied or up to date (or pending, in a dry run), 1 when any failed, was edited or
 * stayed locked (or the run could not be recorded), 2 for bad usage or input.
 */

export interface MigrateCommandIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

interface MigrateCliOptions {
  targets?: string;
  controlPlaneUrl?: string;
  tenantCredentialsUrl?: string;
  migrations: string;
  tenant: string[];
  kind: TargetKind[];
  to?: number;
  concurrency: number;
  databaseConcurrency: number;
  lockTimeout: number;
  statementTimeout: number;
  lockRetries: number;
  dryRun?: boolean;
  json?: boolean;
  actor?: string;
  waves?: string;
  canary: string[];
  maxFailures?: string;
  registry?: string;
}

const integer = (min: number) => (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return Number(value);
};
const collect = (value: string, previous: string[]) => [...previous, value];
const collectKind = (value: string, previous: TargetKind[]) => {
  if (!TARGET_KINDS.includes(value as TargetKind)) throw new InvalidArgumentError(`expected one of ${TARGET_KINDS.join(', ')}`);
  return [...previous, value as TargetKind];
};

/** The `migrations/` directory of this package (found from this file, in lib/ or dist/lib/). */
export function defaultMigrationsDir(): string {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'migrations')) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'cdktf-tenancy') return join(dir, 'migrations');
  }
  return resolve('migrations');
}

export function registerMigrateCommand(program: Command, io: MigrateCommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): void {
  const command = program
    .command('migrate')
    .description('Apply (up) or revert (down) the versioned SQL migrations of every target: silo databases, bridge schemas, the pool, the control plane.')
    .addArgument(new Argument('[direction]', 'up: apply pending migrations; down: revert to --to').choices(['up', 'down']).default('up'))
    .option('--targets <file>', 'JSON or YAML file listing the targets (kinds and connections; see README "Migrations")')
    .option('--control-plane-url <url>', 'control-plane database: the run is recorded there; without --targets, the bridge and silo tenants of tenancy.tenants are the targets (env TENANCY_CONTROL_PLANE_URL)')
    .option('--tenant-credentials-url <url>', 'postgres:// URL whose user, password and TLS settings reach tenant databases listed from the control plane (env TENANCY_TENANT_CREDENTIALS_URL; default: PGUSER, PGPASSWORD, …)')
    .option('--migrations <dir>', 'directory holding tenant/, pool/ and control-plane/', defaultMigrationsDir())
    .option('--tenant <slug>', 'only this tenant (repeatable)', collect, [])
    .option('--kind <kind>', `only targets of this kind: ${TARGET_KINDS.join(', ')} (repeatable)`, collectKind, [])
    .option('--to <version>', 'up: apply up to this version; down: revert every migration above it (required)', integer(0))
    .option('--concurrency <n>', 'targets (and databases) migrated at the same time', integer(1), MIGRATE_DEFAULTS.concurrency)
    .option('--database-concurrency <n>', 'connections to one database at the same time (more add catalog contention, not speed)', integer(1), MIGRATE_DEFAULTS.databaseConcurrency)
    .option('--lock-timeout <ms>', 'lock_timeout of each migration transaction', integer(0), MIGRATE_DEFAULTS.lockTimeoutMs)
    .option('--statement-timeout <ms>', 'statement_timeout of each migration transaction (0: none)', integer(0), MIGRATE_DEFAULTS.statementTimeoutMs)
    .option('--lock-retries <n>', 'further attempts for a target locked by another runner', integer(0), MIGRATE_DEFAULTS.lockRetries)
    .option('--dry-run', 'list what would be applied; change nothing')
    .option('--json', 'JSON lines on stdout (the default when stdout is not a terminal)')
    .option('--actor <name>', 'who runs this, recorded in the control plane (default: $TENANCY_ACTOR or $USER)')
    .option('--waves <percents>', 'migrate in waves, as fleet rollouts: canary tenants first, then cumulative percentages of the other targets, e.g. 1,10,50,100')
    .option('--canary <slug>', 'with --waves: a canary tenant, migrated first (repeatable)', collect, [])
    .option('--registry <root>', 'with --waves: project root (platform.yaml, tenants/) whose canary tenants (`canary: true`, platform.yaml fleet.canary.tenants) go first too')
    .option('--max-failures <n|p%>', 'with --waves: failed targets a wave tolerates before the run stops (default 0: any failure stops it; later waves are not started)')
    .action(async (direction: 'up' | 'down', options: MigrateCliOptions) => {
      // Bad usage or input: the message alone (no help text), exit code 2 through commander's exit handling.
      const usage = (message: string): never => {
        io.stderr.write(`tenancy migrate: ${message}\n`);
        throw new CommanderError(2, 'tenancy.usage', message);
      };
      process.exitCode = await runMigrate(direction, options, io, usage);
    });
  command.addHelpText('after', '\nExit codes: 0 every target applied or up to date, 1 a target failed, was edited or stayed locked (or, in waves, was not started), 2 bad usage or input.');
}

async function runMigrate(direction: 'up' | 'down', options: MigrateCliOptions, io: MigrateCommandIo, usage: (message: string) => never): Promise<number> {
  const controlPlaneUrl = options.controlPlaneUrl ?? io.env.TENANCY_CONTROL_PLANE_URL;
  const credentialsUrl = options.tenantCredentialsUrl ?? io.env.TENANCY_TENANT_CREDENTIALS_URL;
  if (direction === 'down' && options.to === undefined) usage('down needs --to <version> (the version to go back to; 0 reverts everything)');
  if (!options.targets && !controlPlaneUrl) usage('give --targets <file> or --control-plane-url <url>');
  let controlPlane: PoolConfig | undefined;
  try {
    controlPlane = controlPlaneUrl ? controlPlaneConnection(controlPlaneUrl, { env: io.env, applicationName: 'tenancy-migrate' }) : undefined;
  } catch (e) {
    if (e instanceof ControlPlaneTlsError) usage(e.message);
    throw e;
  }

  let migrations;
  try {
    migrations = loadMigrationSets(resolve(options.migrations));
  } catch (e) {
    if (e instanceof MigrationLoadError) usage(e.message);
    throw e;
  }

  let targets: MigrationTarget[];
  try {
    if (options.targets) {
      targets = loadTargetsFile(options.targets, io.env);
      const missing = options.tenant.filter((slug) => !targets.some((t) => t.slug === slug));
      if (missing.length) usage(`--tenant ${missing.join(', ')}: not in ${options.targets}`);
      if (options.tenant.length) targets = targets.filter((t) => t.slug !== undefined && options.tenant.includes(t.slug));
    } else {
      targets = await listTenantTargets(controlPlane!, { credentialsUrl, slugs: options.tenant });
    }
  } catch (e) {
    if (e instanceof TargetsFileError || e instanceof TargetError) usage(e.message);
    throw e;
  }
  if (options.kind.length) targets = targets.filter((t) => options.kind.includes(t.kind));

  const waveOptions = options.waves === undefined ? undefined : await waveSettings(options, usage);
  if (!waveOptions && (options.canary.length || options.maxFailures !== undefined || options.registry !== undefined)) usage('--canary, --max-failures and --registry go with --waves <percents>');

  const json = Boolean(options.json) || !io.stdout.isTTY;
  const progress = json || targets.length === 0 ? undefined : startProgress(io.stdout, targets.length);
  const onResult = (result: TargetResult) => {
    if (json) io.stdout.write(`${targetJsonLine(result)}\n`);
    else progress?.tick(result);
  };
  let run: MigrationRun;
  let waves: WaveRunResult | undefined;
  const onWave = (wave: WaveReport) => {
    if (json) io.stdout.write(`${JSON.stringify({ type: 'wave', ...wave })}\n`);
    else if (wave.status !== 'running') io.stderr.write(`tenancy migrate: wave ${wave.name} (${wave.targets.length} targets): ${wave.status}${wave.status === 'not-started' ? '' : `, ${wave.failures} failed`}\n`);
  };
  try {
    const common = {
      targets,
      migrations,
      direction,
      toVersion: options.to,
      concurrency: options.concurrency,
      databaseConcurrency: options.databaseConcurrency,
      lockTimeoutMs: options.lockTimeout,
      statementTimeoutMs: options.statementTimeout,
      lockRetries: options.lockRetries,
      dryRun: options.dryRun,
      onResult,
    };
    if (waveOptions) {
      waves = await migrateInWaves({ ...common, ...waveOptions, onWave });
      run = waves.run;
    } else {
      run = await migrateTargets(common);
    }
  } catch (e) {
    progress?.stop();
    if (e instanceof TargetError) usage(e.message);
    throw e;
  }
  progress?.stop();

  let recordError: string | undefined;
  if (controlPlaneUrl) {
    try {
      await recordRun(controlPlane!, run, { actor: options.actor ?? io.env.TENANCY_ACTOR ?? io.env.USER ?? 'tenancy-cli' });
    } catch (e) {
      recordError = `could not record the run in the control plane: ${(e as Error).message}`;
    }
  }
  if (json) {
    const waveSummary = waves ? { waves: waves.waves.map((w) => ({ name: w.name, status: w.status, targets: w.targets.length, failures: w.failures })), stopped: waves.stopped ?? null } : {};
    io.stdout.write(`${summaryJsonLine(run, { recorded: controlPlaneUrl ? !recordError : null, ...(recordError ? { recordError } : {}), ...waveSummary })}\n`);
    if (io.stderr.isTTY) io.stderr.write(renderRunTables(run));
  } else {
    io.stdout.write(renderRunTables(run));
  }
  if (waves?.stopped) {
    const notStarted = run.results.filter((r) => r.status === 'not-started').map((r) => r.slug ?? r.target);
    const failed = run.results.filter((r) => FAILING_STATUSES.has(r.status) && r.status !== 'not-started').map((r) => r.slug ?? r.target);
    io.stderr.write(`tenancy migrate: stopped after wave ${waves.stopped.wave}: ${waves.stopped.failures} failed (${failed.join(', ')}), more than --max-failures ${waves.stopped.maxFailures}; not started: ${notStarted.join(', ')}\n`);
  }
  if (recordError) io.stderr.write(`tenancy migrate: ${recordError}\n`);
  return run.summary.ok && !recordError ? 0 : 1;
}

/** --waves, --canary, --max-failures and --registry as the wave runner's options; bad input is a usage error naming the option. */
async function waveSettings(options: MigrateCliOptions, usage: (message: string) => never): Promise<Pick<WaveMigrateOptions, 'waves' | 'maxFailures' | 'canaryIfPresent'>> {
  let percents: number[];
  let maxFailures;
  try {
    percents = parseWavePercents(options.waves!, '--waves');
    maxFailures = options.maxFailures === undefined ? { count: 0 } : parseMaxFailures(options.maxFailures, '--max-failures');
  } catch (e) {
    if (e instanceof WaveSpecError) usage(e.message);
    throw e;
  }
  for (const slug of options.canary) if (!SLUG_PATTERN.test(slug)) usage(`--canary: ${JSON.stringify(slug)} is not a tenant slug`);
  let canaryIfPresent: string[] = [];
  if (options.registry !== undefined) {
    // Loaded only here: the registry's modules are not needed by a plain run.
    const { loadRegistry } = await import('../registry/load-registry');
    const { RegistryError } = await import('../registry/registry-error');
    try {
      const registry = loadRegistry({ root: resolve(options.registry) });
      canaryIfPresent = [...registry.tenants.filter((t) => t.canary === true).map((t) => t.slug), ...(registry.platform.fleet?.canary?.tenants ?? [])];
    } catch (e) {
      if (e instanceof RegistryError) usage(`--registry ${options.registry}: ${e.message}`);
      throw e;
    }
  }
  return { waves: { canary: options.canary, percents }, maxFailures, canaryIfPresent };
}
