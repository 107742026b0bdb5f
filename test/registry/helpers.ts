// Shared helpers of the registry rejection tests: write a small fixture project, load it,
// and compare the RegistryError's problems with what each case expects.
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadRegistry, type Registry } from '../../lib/registry/load-registry';
import { RegistryError, type RegistryProblem } from '../../lib/registry/registry-error';
import { FixtureProject, REPO_ROOT, SAMPLE_PROJECT } from '../support/fixture-project';

export { FixtureProject, REPO_ROOT };

/** The tests' sample platform.yaml: regions us-east-1 and eu-central-1, baseDomain saas.example.com. */
export const PLATFORM_YAML = readFileSync(join(SAMPLE_PROJECT, 'platform.yaml'), 'utf8');

export const ACME_ID = '748c14ae-d5b9-4538-874e-3def38dacb74';
export const BETA_ID = '11111111-1111-4111-8111-111111111111';
export const GAMMA_ID = '22222222-2222-4222-8222-222222222222';

/** A YAML double-quoted scalar of `s` (JSON strings are valid YAML double-quoted scalars). */
export const q = (s: string): string => JSON.stringify(s);

/** Fields of the default tenant, each as a raw YAML fragment. */
const DEFAULT_FIELDS: Record<string, string> = {
  id: ACME_ID,
  slug: 'acme',
  company: 'Acme Corp',
  adminEmail: 'ops@acme.example',
  plan: 'pro',
  model: 'bridge',
  region: 'us-east-1',
};

/**
 * A valid tenant file (pro, bridge, us-east-1, slug acme) as text, line 1 a comment so
 * that line numbers are not trivially the field's index. `over` replaces fields by raw YAML
 * fragments (null drops the field); `extra` is appended verbatim.
 */
export function tenantYaml(over: Record<string, string | null> = {}, extra = ''): string {
  const fields = { ...DEFAULT_FIELDS, ...over };
  const body = Object.entries(fields)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
  return `# yaml-language-server: $schema=./tenant.schema.json\n${body}${extra}`;
}

/** A second valid tenant with its own id and slug. */
export const otherTenantYaml = (slug: string, id: string, over: Record<string, string | null> = {}, extra = ''): string =>
  tenantYaml({ id, slug, company: `${slug} Inc`, adminEmail: `ops@${slug}.example`, ...over }, extra);

/** 1-based line of the first line of `text` matching `re` (tested line by line). */
export function lineOf(text: string, re: RegExp): number {
  const lines = text.split(/\r?\n/);
  const i = lines.findIndex((l) => re.test(l));
  if (i < 0) throw new Error(`test bug: no line matches ${re}`);
  return i + 1;
}

/** What a case expects to be reported. */
export interface ExpectedProblem {
  /** Relative to the project root, e.g. "tenants/acme.yaml". */
  readonly file: string;
  /** Dotted field path; "" for the whole file. */
  readonly path: string;
  readonly message: RegExp;
  /** A regex for the line the problem must point at (resolved against the file's text), or a line number. */
  readonly at?: RegExp | number;
}

export type FileContent = string | Buffer | { symlinkTo: string } | { directory: true };

/** A project: platform.yaml (the sample one unless given; null for none) and files under tenants/. */
export interface ProjectSpec {
  readonly platform?: string | null;
  readonly tenants?: Record<string, FileContent>;
}

/** Writes a fixture project; the caller removes it. */
export function makeProject(spec: ProjectSpec): FixtureProject {
  const p = FixtureProject.empty();
  if (spec.platform === null) rmSync(join(p.root, 'platform.yaml'));
  else if (spec.platform !== undefined) p.writePlatform(spec.platform);
  for (const [name, content] of Object.entries(spec.tenants ?? {})) {
    const file = join(p.tenantsDir, name);
    mkdirSync(dirname(file), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(file, content);
    else if ('symlinkTo' in content) symlinkSync(content.symlinkTo, file);
    else mkdirSync(file);
  }
  return p;
}

/** Loads the project's registry, which must be rejected with a RegistryError; returns it. */
export function rejectionOf(root: string): RegistryError {
  let error: unknown;
  let accepted: Registry | undefined;
  try {
    accepted = loadRegistry({ root });
  } catch (e) {
    error = e;
  }
  if (accepted) {
    throw new Error(`the registry was accepted but must be rejected; tenants: ${JSON.stringify(accepted.tenants)}`);
  }
  if (!(error instanceof RegistryError)) {
    throw new Error(`expected a RegistryError naming file and field, got a crash instead:\n${error instanceof Error ? error.stack : String(error)}`);
  }
  return error;
}

/** The file text a problem's line is resolved against. */
function textOf(spec: ProjectSpec, file: string): string {
  if (file === 'platform.yaml') return spec.platform ?? PLATFORM_YAML;
  const content = spec.tenants?.[file.replace(/^tenants\//, '')];
  if (typeof content === 'string') return content;
  if (Buffer.isBuffer(content)) return content.toString('latin1');
  throw new Error(`test bug: no text for ${file}`);
}

/**
 * Asserts that every expected problem was reported (file, path, message and, where given,
 * line), that each problem names a relative file, and with `exact` that nothing else was.
 */
export function expectProblems(spec: ProjectSpec, problems: readonly RegistryProblem[], expected: readonly ExpectedProblem[], exact = true): void {
  const wanted = expected.map((e) => {
    const line = e.at === undefined ? undefined : typeof e.at === 'number' ? e.at : lineOf(textOf(spec, e.file), e.at);
    return expect.objectContaining({
      file: e.file,
      path: e.path,
      message: expect.stringMatching(e.message),
      ...(line === undefined ? {} : { line }),
    });
  });
  expect(problems).toEqual(expect.arrayContaining(wanted));
  if (exact) expect(problems).toHaveLength(expected.length);
  for (const p of problems) {
    expect(p.file).not.toMatch(/^\//); // relative to the project, never an absolute temp path
    expect(p.message).not.toMatch(/\n\s+at /); // no stack traces in messages
    expect(p.message.length).toBeGreaterThan(0);
  }
}

/** Writes `spec`, loads it, and checks the rejection; removes the project afterwards. */
export function expectRejected(spec: ProjectSpec, expected: readonly ExpectedProblem[], exact = true): RegistryError {
  const p = makeProject(spec);
  try {
    const error = rejectionOf(p.root);
    expectProblems(spec, error.problems, expected, exact);
    return error;
  } finally {
    p.remove();
  }
}

/** Writes `spec` and loads it; it must be accepted. */
export function expectAccepted(spec: ProjectSpec): Registry {
  const p = makeProject(spec);
  try {
    return loadRegistry({ root: p.root });
  } finally {
    p.remove();
  }
}

/** A single-tenant case: `tenants/<file>` holds `text`. */
export interface TenantCase {
  readonly name: string;
  readonly text: string | Buffer;
  /** File name under tenants/; acme.yaml by default. */
  readonly file?: string;
  readonly expected: readonly Omit<ExpectedProblem, 'file'>[] | Omit<ExpectedProblem, 'file'>;
  /** Only check that the expected problems are present, not that they are the only ones. */
  readonly inexact?: boolean;
}

/** Runs a single-file case. */
export function runTenantCase(c: TenantCase): RegistryError {
  const file = c.file ?? 'acme.yaml';
  const expected = (Array.isArray(c.expected) ? c.expected : [c.expected]) as Omit<ExpectedProblem, 'file'>[];
  return expectRejected(
    { tenants: { [file]: c.text } },
    expected.map((e) => ({ file: `tenants/${file}`, ...e })),
    !c.inexact,
  );
}
