import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

/**
 * The repository root (charts/, migrations/, dist/), from the sources or compiled into dist/
 * (benchmarks). Never a registry to test against: its tenants/ and platform.yaml belong to the
 * user, who edits them; tests use {@link SAMPLE_PROJECT} (test/support/user-registry-guard.ts
 * makes reading the user's registry fail).
 */
export const REPO_ROOT = [join(__dirname, '..', '..'), join(__dirname, '..', '..', '..')].find((d) => existsSync(join(d, 'jest.config.js'))) ?? join(__dirname, '..', '..');

/**
 * The tests' own copy of the sample registry (platform.yaml and tenants/, as shipped when the
 * tests were written): what every test that needs "the sample" builds on, always through a
 * temporary copy ({@link FixtureProject.fromSample}, loadSampleRegistry()).
 */
export const SAMPLE_PROJECT = join(REPO_ROOT, 'test', 'fixtures', 'sample-project');

/** A throwaway project directory with a platform.yaml and a tenants/ directory. */
export class FixtureProject {
  readonly root: string;
  readonly tenantsDir: string;

  private constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'tenancy-fixture-'));
    this.tenantsDir = join(this.root, 'tenants');
    mkdirSync(this.tenantsDir);
  }

  /** A project that starts as a copy of the tests' sample project (platform.yaml and tenants/). */
  static fromSample(): FixtureProject {
    const p = new FixtureProject();
    cpSync(join(SAMPLE_PROJECT, 'platform.yaml'), join(p.root, 'platform.yaml'));
    cpSync(join(SAMPLE_PROJECT, 'tenants'), p.tenantsDir, { recursive: true });
    return p;
  }

  /** A project with the sample platform.yaml and no tenants. */
  static empty(): FixtureProject {
    const p = new FixtureProject();
    cpSync(join(SAMPLE_PROJECT, 'platform.yaml'), join(p.root, 'platform.yaml'));
    return p;
  }

  /** Writes `tenants/<name>` with raw text. */
  writeTenantFile(name: string, text: string): string {
    const file = join(this.tenantsDir, name);
    writeFileSync(file, text);
    return file;
  }

  /** Writes a tenant as YAML to `tenants/<slug>.yaml` (or `file`). */
  writeTenant(tenant: Record<string, unknown>, file = `${String(tenant.slug)}.yaml`): string {
    return this.writeTenantFile(file, stringify(tenant));
  }

  /** Reads a sample tenant file as an object, to edit it. */
  readTenant(slug: string): Record<string, unknown> {
    return parse(readFileSync(join(this.tenantsDir, `${slug}.yaml`), 'utf8')) as Record<string, unknown>;
  }

  writePlatform(text: string): void {
    writeFileSync(join(this.root, 'platform.yaml'), text);
  }

  /** Sets `kubernetes.enabled` in platform.yaml (the sample has it on); false gives the AWS-only stacks. */
  setKubernetesEnabled(enabled: boolean): this {
    const file = join(this.root, 'platform.yaml');
    const platform = parse(readFileSync(file, 'utf8')) as { kubernetes?: Record<string, unknown> };
    this.writePlatform(stringify({ ...platform, kubernetes: { ...platform.kubernetes, enabled } }));
    return this;
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

let counter = 0;
/** A valid tenant record; override any field. Ids are deterministic so snapshots are stable. */
export function validTenant(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter += 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    slug: `tenant${counter}`,
    company: `Company ${counter}`,
    adminEmail: `admin${counter}@example.com`,
    plan: 'pro',
    model: 'bridge',
    region: 'us-east-1',
    ...overrides,
  };
}
