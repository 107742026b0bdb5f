import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Provider mirror that holds hashicorp/aws 5.100.0 on these machines. */
export const PROVIDER_MIRROR = process.env.TENANCY_TF_MIRROR ?? '/opt/tf-plugins';

/** Providers the mirror holds (by their local name in the stack JSON). */
const MIRRORED_PROVIDERS: readonly string[] = ['aws'];

/** Set to keep each plan's working directory (its path is printed in errors) for debugging. */
const KEEP_DIRS = Boolean(process.env.TENANCY_KEEP_PLAN_DIRS);

/** Longest any one terraform command may run before the test fails instead of hanging. */
const COMMAND_TIMEOUT_MS = 150_000;

/** A terraform CLI config that installs hashicorp/aws from the local mirror only (no network). */
export function offlineCliConfig(dir: string): string {
  const file = join(dir, 'terraformrc');
  writeFileSync(
    file,
    `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(PROVIDER_MIRROR)}\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n`,
  );
  return file;
}

/** Provider arguments that would make the AWS provider call AWS (or read local profiles) while configuring. */
const ONLINE_PROVIDER_ARGS = ['profile', 'shared_config_files', 'shared_credentials_files', 'assume_role', 'assume_role_with_web_identity', 'token'];

/**
 * Makes a synthesized stack (cdk.tf.json) plannable offline: local state in the work dir,
 * dummy credentials and no AWS calls during plan. Data sources are refused (they would need AWS), and
 * so are providers the mirror does not hold: plan the AWS part of such a stack (awsProjection, test/support/aws-projection.ts).
 */
export function offlineStackJson(stackJson: Record<string, any>, workDir: string): Record<string, any> {
  const json = JSON.parse(JSON.stringify(stackJson));
  const dataSources = Object.entries(json.data ?? {}).flatMap(([type, byName]) => Object.keys(byName as object).map((name) => `data.${type}.${name}`));
  if (dataSources.length > 0) throw new Error(`an offline plan cannot read data sources (they call AWS): ${dataSources.join(', ')}; plan the AWS part of a stack with the cluster's data sources with awsProjection (test/support/aws-projection.ts)`);
  const unmirrored = [...new Set([...Object.keys(json.terraform?.required_providers ?? {}), ...Object.keys(json.provider ?? {})])].filter((p) => !MIRRORED_PROVIDERS.includes(p)).sort();
  if (unmirrored.length > 0) throw new Error(`an offline plan can install only ${MIRRORED_PROVIDERS.join(', ')} (the mirror at ${PROVIDER_MIRROR}), not ${unmirrored.join(', ')}; plan the AWS part with awsProjection (test/support/aws-projection.ts)`);
  json.terraform = { ...json.terraform };
  delete json.terraform.cloud;
  json.terraform.backend = { local: { path: join(workDir, 'terraform.tfstate') } };
  const aws = json.provider?.aws;
  for (const provider of Array.isArray(aws) ? aws : aws ? [aws] : []) {
    for (const arg of ONLINE_PROVIDER_ARGS) delete provider[arg];
    Object.assign(provider, {
      access_key: 'offline-test',
      secret_key: 'offline-test',
      skip_credentials_validation: true,
      skip_requesting_account_id: true,
      skip_metadata_api_check: true,
    });
  }
  return json;
}

export interface PlannedResource {
  readonly address: string;
  readonly type: string;
  /** Planned values; attributes unknown until apply are absent (see `unknown`). */
  readonly values: Record<string, any>;
  /** The plan's after_unknown: `true` for each attribute known only after apply. */
  readonly unknown: Record<string, any>;
  /** The configuration's expressions (constant_value / references), e.g. to check what an unknown value refers to. */
  readonly expressions: Record<string, any>;
  /** The configuration's depends_on (explicit dependencies only). */
  readonly dependsOn: readonly string[];
  /** Planned actions; always ["create"] from the empty state. */
  readonly actions: readonly string[];
}

export interface OfflinePlan {
  /** Every planned resource (child modules included), sorted by address. */
  readonly resources: PlannedResource[];
  /** Planned outputs as `terraform show -json` reports them ({ sensitive, value? }; no value when unknown). */
  readonly outputs: Record<string, any>;
  /** Warnings of terraform validate ("summary: detail (address)"). */
  readonly warnings: string[];
  /** The whole `terraform show -json` document. */
  readonly raw: Record<string, any>;
}

export type TerraformStep = 'init' | 'validate' | 'plan' | 'show';

/** A terraform command that failed; `output` holds its diagnostics. */
export class TerraformError extends Error {
  constructor(readonly step: TerraformStep, readonly output: string, dir: string) {
    super(`terraform ${step} failed${KEEP_DIRS ? ` in ${dir}` : ''}:\n${output.trim()}`);
    this.name = 'TerraformError';
  }
}

/** The environment of every terraform run: no inherited TF_* or AWS_* settings, no network, no prompts. */
function terraformEnv(cliConfig: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(TF_|AWS_)/.test(k)) env[k] = v;
  return {
    ...env,
    TF_CLI_CONFIG_FILE: cliConfig,
    CHECKPOINT_DISABLE: '1',
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

function formatDiagnostic(d: any): string {
  const where = d.address ?? (d.range ? `${d.range.filename}:${d.range.start?.line}` : undefined);
  return `${d.severity}: ${d.summary}${d.detail ? `: ${d.detail}` : ''}${where ? ` (${where})` : ''}`;
}

function collectResources(module: any): any[] {
  return [...(module?.resources ?? []), ...(module?.child_modules ?? []).flatMap(collectResources)];
}

function collectConfigResources(module: any, prefix = ''): Map<string, any> {
  const out = new Map<string, any>();
  for (const r of module?.resources ?? []) out.set(prefix + r.address, r);
  for (const [name, call] of Object.entries<any>(module?.module_calls ?? {})) {
    for (const [k, v] of collectConfigResources(call.module, `${prefix}module.${name}.`)) out.set(k, v);
  }
  return out;
}

/** Runs init, validate and plan in `work` (main.tf.json already written); returns `terraform show -json` and validate's warnings. */
function runTerraform(dir: string, work: string): { raw: Record<string, any>; diagnostics: any[] } {
  const env = terraformEnv(offlineCliConfig(dir));
  const tf = (step: TerraformStep, ...args: string[]): string => {
    try {
      return execFileSync('terraform', [step, ...args], {
        cwd: work, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024, timeout: COMMAND_TIMEOUT_MS,
      });
    } catch (e: any) {
      if (step === 'validate' && typeof e.stdout === 'string' && e.stdout.trim().startsWith('{')) {
        const result = JSON.parse(e.stdout);
        throw new TerraformError(step, (result.diagnostics ?? []).map(formatDiagnostic).join('\n'), dir);
      }
      throw new TerraformError(step, [e.stderr, e.stdout, e.signal ? `killed by ${e.signal}` : ''].filter(Boolean).join('\n'), dir);
    }
  };
  tf('init', '-input=false', '-no-color');
  const validation = JSON.parse(tf('validate', '-json', '-no-color'));
  tf('plan', '-input=false', '-no-color', '-refresh=false', '-lock=false', '-out=plan.bin');
  const raw = JSON.parse(tf('show', '-json', 'plan.bin'));
  return { raw, diagnostics: (validation.diagnostics ?? []).filter((d: any) => d.severity === 'warning') };
}

/** Reads a root-module-shaped `terraform show -json` document into an OfflinePlan. */
function toOfflinePlan(raw: Record<string, any>, warnings: string[]): OfflinePlan {
  const changes = new Map<string, any>((raw.resource_changes ?? []).map((c: any) => [c.address, c.change]));
  const config = collectConfigResources(raw.configuration?.root_module);
  const resources: PlannedResource[] = collectResources(raw.planned_values?.root_module)
    .map((r: any): PlannedResource => {
      // Configuration addresses have no instance keys (count/for_each); cdktf emits neither here.
      const conf = config.get(String(r.address).replace(/\[[^\]]*\]$/, ''));
      const change = changes.get(r.address);
      return {
        address: r.address,
        type: r.type,
        values: r.values ?? {},
        unknown: change?.after_unknown ?? {},
        expressions: conf?.expressions ?? {},
        dependsOn: conf?.depends_on ?? [],
        actions: change?.actions ?? [],
      };
    })
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { resources, outputs: raw.planned_values?.outputs ?? {}, warnings, raw };
}

function withPlanDir<T>(run: (dir: string, work: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-plan-'));
  try {
    const work = join(dir, 'stack');
    mkdirSync(work);
    return run(dir, work);
  } finally {
    if (!KEEP_DIRS) rmSync(dir, { recursive: true, force: true });
  }
}

const parseStack = (stack: Record<string, any> | string): Record<string, any> => (typeof stack === 'string' ? JSON.parse(stack) : stack);

/**
 * Runs terraform init (providers from the local mirror only), validate and plan on a
 * synthesized stack (object or `Testing.synth` JSON string); returns the planned resources.
 * Throws a {@link TerraformError} naming the failed step with terraform's diagnostics.
 */
export function planOffline(stack: Record<string, any> | string): OfflinePlan {
  return withPlanDir((dir, work) => {
    writeFileSync(join(work, 'main.tf.json'), JSON.stringify(offlineStackJson(parseStack(stack), work), null, 2));
    const { raw, diagnostics } = runTerraform(dir, work);
    return toOfflinePlan(raw, diagnostics.map(formatDiagnostic));
  });
}

/** Plans of several stacks; `plan(name)` returns one stack's plan or throws its own error. */
export interface PlannedStacks {
  plan(name: string): OfflinePlan;
  /** False when the combined run failed and each stack is planned on its own, on demand. */
  readonly together: boolean;
}

const strip = (prefix: string) => (address: string) => (address.startsWith(prefix) ? address.slice(prefix.length) : address);

/**
 * Plans several stacks with one terraform run, which costs about as much as one plan (most of
 * a plan's time is loading the AWS provider's schema, three times). Each stack becomes a child
 * module that keeps its own provider configuration (region, default tags) and outputs; its
 * backend is dropped, as for {@link planOffline}. The result is split back into one plan per
 * stack, with the stack's own addresses, configuration and outputs, as if planned alone.
 *
 * If the combined run fails, every stack is planned on its own when asked for, so each test
 * fails with its own stack's diagnostics (and the others still pass).
 */
export function planOfflineTogether(stacks: Record<string, Record<string, any> | string>): PlannedStacks {
  const names = Object.keys(stacks);
  const moduleOf = new Map(names.map((name, i) => [name, `s${i}_${name.replace(/[^A-Za-z0-9_-]/g, '_')}`]));
  let plans: Map<string, OfflinePlan> | undefined;
  try {
    plans = withPlanDir((dir, work) => {
      const root: Record<string, any> = { terraform: { backend: { local: { path: join(work, 'terraform.tfstate') } } }, module: {}, output: {} };
      const outputsOf = new Map<string, [string, string][]>();
      for (const name of names) {
        const mod = moduleOf.get(name)!;
        const json = offlineStackJson(parseStack(stacks[name]), work);
        delete json.terraform.backend;
        mkdirSync(join(work, 'modules', mod), { recursive: true });
        writeFileSync(join(work, 'modules', mod, 'main.tf.json'), JSON.stringify(json, null, 2));
        root.module[mod] = { source: `./modules/${mod}` };
        const outputs = Object.entries<any>(json.output ?? {}).map(([out, o]): [string, string] => {
          const rootName = `${mod}__${out}`;
          root.output[rootName] = { value: `\${module.${mod}.${out}}`, ...(o.sensitive ? { sensitive: true } : {}) };
          return [out, rootName];
        });
        outputsOf.set(name, outputs);
      }
      writeFileSync(join(work, 'main.tf.json'), JSON.stringify(root, null, 2));
      const { raw, diagnostics } = runTerraform(dir, work);

      return new Map(names.map((name) => {
        const mod = moduleOf.get(name)!;
        const address = `module.${mod}`;
        const local = strip(`${address}.`);
        const relocate = (m: any): any => ({
          ...m,
          address: m.address === address ? undefined : local(m.address),
          resources: (m.resources ?? []).map((r: any) => ({ ...r, address: local(r.address) })),
          child_modules: (m.child_modules ?? []).map(relocate),
        });
        const planned = (raw.planned_values?.root_module?.child_modules ?? []).find((m: any) => m.address === address);
        const ownRaw = {
          ...raw,
          planned_values: {
            root_module: planned ? relocate(planned) : { resources: [] },
            outputs: Object.fromEntries(outputsOf.get(name)!.map(([out, rootName]) => [out, raw.planned_values?.outputs?.[rootName]])),
          },
          resource_changes: (raw.resource_changes ?? [])
            .filter((c: any) => c.module_address === address || String(c.module_address ?? '').startsWith(`${address}.`))
            .map((c: any) => ({ ...c, address: local(c.address), module_address: c.module_address === address ? undefined : local(c.module_address) })),
          configuration: {
            ...raw.configuration,
            provider_config: Object.fromEntries(
              Object.values<any>(raw.configuration?.provider_config ?? {})
                .filter((p) => p.module_address === address)
                .map((p) => [p.alias ? `${p.name}.${p.alias}` : p.name, { ...p, module_address: undefined }]),
            ),
            root_module: raw.configuration?.root_module?.module_calls?.[mod]?.module ?? {},
          },
        };
        const own = diagnostics.filter((d) => {
          const where = `${d.address ?? ''} ${d.range?.filename ?? ''}`;
          return where.includes(`modules/${mod}/`) || where.includes(`${address}.`) || !/modules\/|module\./.test(where);
        });
        return [name, toOfflinePlan(ownRaw, own.map(formatDiagnostic))];
      }));
    });
  } catch (e) {
    if (!(e instanceof TerraformError)) throw e;
    plans = undefined;
  }
  const alone = new Map<string, OfflinePlan | Error>();
  return {
    together: plans !== undefined,
    plan(name: string): OfflinePlan {
      if (!(name in stacks)) throw new Error(`planOfflineTogether: no stack ${JSON.stringify(name)} (have ${names.join(', ')})`);
      if (plans) return plans.get(name)!;
      if (!alone.has(name)) {
        try {
          alone.set(name, planOffline(stacks[name]));
        } catch (e) {
          alone.set(name, e as Error);
        }
      }
      const result = alone.get(name)!;
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

/**
 * Evaluates a Terraform expression with terraform itself (`terraform console` without any
 * configuration, so only constants and functions), e.g. a policy's jsonencode(...) once its
 * references are replaced by placeholders. Returns the value as JSON would hold it.
 */
export function evaluateExpression(expression: string): unknown {
  return withPlanDir((dir, work) => {
    let printed: string;
    try {
      printed = execFileSync('terraform', ['console'], {
        cwd: work, env: terraformEnv(offlineCliConfig(dir)), input: `jsonencode(${expression})\n`, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: COMMAND_TIMEOUT_MS,
      }).trim();
    } catch (e: any) {
      const output = [e.stderr, e.stdout].filter(Boolean).join('\n').replace(/\x1b\[[0-9;]*m/g, '').trim();
      throw new Error(`terraform console could not evaluate jsonencode(${expression}):\n${output}`);
    }
    // A quoted HCL string: JSON string escapes, plus $${ and %%{ for literal ${ and %{.
    if (!printed.startsWith('"') || !printed.endsWith('"')) throw new Error(`terraform console printed ${printed} for jsonencode(${expression})`);
    return JSON.parse(JSON.parse(printed.replace(/\$\$\{/g, '${').replace(/%%\{/g, '%{')));
  });
}

export function readStackJson(outdir: string, stack: string): Record<string, any> {
  return JSON.parse(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
}
