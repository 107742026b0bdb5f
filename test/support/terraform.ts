import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Provider mirror that holds hashicorp/aws 5.100.0 on these machines. */
export const PROVIDER_MIRROR = process.env.TENANCY_TF_MIRROR ?? '/opt/tf-plugins';

/** A terraform CLI config that installs hashicorp/aws from the local mirror only (no network). */
export function offlineCliConfig(dir: string): string {
  const file = join(dir, 'terraformrc');
  writeFileSync(
    file,
    `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(PROVIDER_MIRROR)}\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n`,
  );
  return file;
}

/**
 * Makes a synthesized stack (cdk.tf.json) plannable offline: local state in the work dir,
 * dummy credentials and no AWS calls during plan.
 */
export function offlineStackJson(stackJson: Record<string, any>, workDir: string): Record<string, any> {
  const json = JSON.parse(JSON.stringify(stackJson));
  json.terraform.backend = { local: { path: join(workDir, 'terraform.tfstate') } };
  for (const provider of json.provider?.aws ?? []) {
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
  readonly values: Record<string, any>;
}

/** Runs terraform init, validate and plan on `stackJson`; returns the planned resources (terraform show -json). */
export function planOffline(stackJson: Record<string, any>): { resources: PlannedResource[]; outputs: Record<string, any> } {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-plan-'));
  const work = join(dir, 'stack');
  mkdirSync(work);
  writeFileSync(join(work, 'main.tf.json'), JSON.stringify(offlineStackJson(stackJson, work), null, 2));
  const env = { ...process.env, TF_CLI_CONFIG_FILE: offlineCliConfig(dir), CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
  const tf = (...args: string[]) => execFileSync('terraform', args, { cwd: work, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  tf('init', '-input=false', '-no-color');
  tf('validate', '-no-color');
  tf('plan', '-input=false', '-no-color', '-refresh=false', '-lock=false', '-out=plan.bin');
  const plan = JSON.parse(tf('show', '-json', 'plan.bin'));
  const resources: PlannedResource[] = (plan.planned_values?.root_module?.resources ?? []).map((r: any) => ({ address: r.address, type: r.type, values: r.values }));
  return { resources, outputs: plan.planned_values?.outputs ?? {} };
}

export function readStackJson(outdir: string, stack: string): Record<string, any> {
  return JSON.parse(readFileSync(join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
}
