// End to end: the real entry points (`npm start` = dist/bin/start.js, the cdktf app =
// dist/main.js) as child processes in a fixture project. A bad registry or selector must
// exit non-zero, name file and field on stderr without a stack trace, and write nothing:
// no cdktf.out, no staging directory, and a previous good cdktf.out left byte-identical.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FixtureProject, PLATFORM_YAML, REPO_ROOT, otherTenantYaml, q, tenantYaml, BETA_ID } from './helpers';

const ENTRY_POINTS = [
  ['npm start (dist/bin/start.js)', join(REPO_ROOT, 'dist', 'bin', 'start.js')],
  ['cdktf app (dist/main.js)', join(REPO_ROOT, 'dist', 'main.js')],
] as const;

/** Variables of the parent (a developer's shell, CI) that would change what the app does. */
const SCRUBBED = ['TENANCY_SELECT', 'CDKTF_OUTDIR', 'CDKTF_CONTEXT_JSON', 'TENANCY_DEBUG', 'NODE_OPTIONS'];

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runEntry(script: string, cwd: string, env: Record<string, string> = {}): Run {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1', ...env };
  for (const name of SCRUBBED) if (!(name in env)) delete childEnv[name];
  const r = spawnSync(process.execPath, [script], { cwd, env: childEnv, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What a run left in the project root that it must not have: the output and staging dirs. */
const leftovers = (root: string) => readdirSync(root).filter((n) => n === 'cdktf.out' || n.includes('staging') || n.endsWith('.old'));

/** Every file under `dir` with its bytes' hash and mtime, plus the directory's own inode. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': `ino ${statSync(dir).ino}` };
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const abs = join(d, name);
      const st = lstatSync(abs);
      const rel = relative(dir, abs);
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ino ${st.ino}`;
        walk(abs);
      } else {
        out[rel] = `${createHash('sha256').update(readFileSync(abs)).digest('hex')} mtime ${st.mtimeMs} size ${st.size}`;
      }
    }
  };
  walk(dir);
  return out;
}

const STACK_TRACE = /^\s+at\s+\S+.*(\(|:\d+:\d+)/m;

function expectCleanFailure(r: Run, root: string, stderr: RegExp[], status?: number): void {
  if (r.status === 0 || r.status === null || (status !== undefined && r.status !== status)) {
    throw new Error(`expected exit ${status ?? 'non-zero'}, got ${r.status}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  }
  for (const re of stderr) expect(r.stderr).toMatch(re);
  expect(r.stderr).not.toMatch(STACK_TRACE);
  expect(r.stdout).not.toMatch(/synthesized/);
  expect(leftovers(root)).toEqual([]);
}

beforeAll(() => {
  // The entry points run from dist/: compile the current sources first.
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 170_000 });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`npx tsc -p tsconfig.json failed:\n${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`);
  }
  for (const [, script] of ENTRY_POINTS) expect(existsSync(script)).toBe(true);
});

interface BadProject {
  readonly name: string;
  readonly setup: (p: FixtureProject) => void;
  /** What stderr must say: file:line:col: path: message. */
  readonly stderr: RegExp[];
}

const BAD_PROJECTS: BadProject[] = [
  {
    name: 'a path-traversal slug',
    setup: (p) => p.writeTenantFile('acme.yaml', tenantYaml({ slug: q('../x') })),
    stderr: [/^The tenant registry has 1 problem:$/m, /^ {2}tenants\/acme\.yaml:3:7: slug: must be 3-30 characters/m],
  },
  {
    name: 'a duplicate YAML key',
    setup: (p) => p.writeTenantFile('acme.yaml', tenantYaml({}, 'plan: enterprise\n')),
    stderr: [/tenants\/acme\.yaml:9:1: invalid YAML: Map keys must be unique/],
  },
  {
    name: 'an unknown field',
    setup: (p) => p.writeTenantFile('acme.yaml', tenantYaml({}, 'compliance:\n  sox: true\n')),
    stderr: [/tenants\/acme\.yaml:10:\d+: compliance\.sox: unknown field/],
  },
  {
    name: 'HIPAA on the pool model',
    setup: (p) => p.writeTenantFile('acme.yaml', tenantYaml({ model: 'pool' }, 'compliance:\n  hipaa: true\n')),
    stderr: [/tenants\/acme\.yaml:7:8: model: HIPAA tenants must use the silo model/],
  },
  {
    name: 'a bad vpc id in platform.yaml',
    setup: (p) => {
      p.writeTenantFile('acme.yaml', tenantYaml());
      p.writePlatform(PLATFORM_YAML.replace('vpc-0a1b2c3d4e5f60718', 'vpc-nope'));
    },
    stderr: [/platform\.yaml:10:12: regions\.us-east-1\.vpcId: must be an AWS id/],
  },
  {
    name: 'a missing platform.yaml',
    setup: (p) => {
      p.writeTenantFile('acme.yaml', tenantYaml());
      rmSync(join(p.root, 'platform.yaml'));
    },
    stderr: [/^ {2}platform\.yaml: /m],
  },
  {
    name: 'a symlinked tenant file',
    setup: (p) => {
      writeFileSync(join(p.root, 'outside.yaml'), tenantYaml());
      symlinkSync(join(p.root, 'outside.yaml'), join(p.tenantsDir, 'acme.yaml'));
    },
    stderr: [/tenants\/acme\.yaml: must be a regular file, not a symbolic link/],
  },
  {
    name: 'several problems in several files',
    setup: (p) => {
      p.writeTenantFile('acme.yaml', tenantYaml({ plan: 'gold' }));
      p.writeTenantFile('beta.yml', otherTenantYaml('beta', BETA_ID));
      p.writeTenantFile('gamma.yaml', '- not a mapping\n');
      p.writePlatform(PLATFORM_YAML.replace('name: tenancy', 'name: tenancy\nowner: x'));
    },
    stderr: [
      /^The tenant registry has 4 problems:$/m,
      /platform\.yaml:\d+:\d+: owner: unknown field/,
      /tenants\/acme\.yaml:6:7: plan: Invalid option/,
      /tenants\/beta\.yml: unexpected file/,
      /tenants\/gamma\.yaml: must be a YAML mapping/,
    ],
  },
];

describe.each(ENTRY_POINTS)('%s', (_label, script) => {
  let project: FixtureProject;
  afterEach(() => project?.remove());

  test.each(BAD_PROJECTS)('$name: exit 2, file and field on stderr, nothing written', (bad) => {
    project = FixtureProject.empty();
    bad.setup(project);
    const before = readdirSync(project.root).sort();
    const r = runEntry(script, project.root);
    expectCleanFailure(r, project.root, bad.stderr, 2);
    expect(readdirSync(project.root).sort()).toEqual(before);
  });

  test.each([
    ['an unknown slug', { TENANCY_SELECT: 'nope' }, /TENANCY_SELECT=nope: no tenant with slug or id "nope"/],
    ['a known and an unknown slug', { TENANCY_SELECT: 'acme,nope' }, /no tenant with slug or id "nope"/],
    ['a typo of a slug', { TENANCY_SELECT: 'acmee' }, /no tenant with slug or id "acmee"; did you mean "acme"\?/],
    ['an offboarded tenant', { TENANCY_SELECT: 'oldco' }, /tenant oldco is offboarded and has no stack/],
    ['an unknown slug in the cdktf context', { CDKTF_CONTEXT_JSON: JSON.stringify({ tenancySelect: 'nope' }) }, /no tenant with slug or id "nope"/],
  ])('selector with %s: fails clearly and writes nothing', (_name, env, message) => {
    project = FixtureProject.fromSample();
    const r = runEntry(script, project.root, env);
    expectCleanFailure(r, project.root, [message, /nothing was written/]);
  });

  test('a failed run leaves the previous good cdktf.out byte-identical', () => {
    project = FixtureProject.fromSample();
    const good = runEntry(script, project.root);
    expect({ status: good.status, stderr: good.stderr }).toEqual({ status: 0, stderr: expect.not.stringMatching(STACK_TRACE) });
    const outdir = join(project.root, 'cdktf.out');
    expect(readdirSync(join(outdir, 'stacks'))).toContain('tenant-acme');
    // What `terraform init` leaves behind must survive too.
    writeFileSync(join(outdir, 'stacks', 'tenant-acme', '.terraform.lock.hcl'), '# lock\n');
    const before = snapshot(outdir);

    const failures: [string, () => void, Record<string, string>][] = [
      ['unknown selector', () => undefined, { TENANCY_SELECT: 'nope' }],
      ['offboarded selector', () => undefined, { TENANCY_SELECT: 'oldco' }],
      ['bad tenant', () => project.writeTenantFile('globex.yaml', tenantYaml({ slug: q("globex'; DROP SCHEMA public;--") })), {}],
      ['bad platform', () => project.writePlatform(PLATFORM_YAML.replace('controlPlaneRegion: us-east-1', 'controlPlaneRegion: us-west-2')), {}],
    ];
    for (const [name, breakIt, env] of failures) {
      breakIt();
      const r = runEntry(script, project.root, env);
      expect({ name, status: r.status === 0 ? 0 : 'non-zero' }).toEqual({ name, status: 'non-zero' });
      expect(r.stderr).not.toMatch(STACK_TRACE);
      expect({ name, after: snapshot(outdir) }).toEqual({ name, after: before });
      expect({ name, left: readdirSync(project.root).filter((n) => n.includes('staging') || n.endsWith('.old')) }).toEqual({ name, left: [] });
    }
  });
});
