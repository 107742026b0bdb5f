// The slug reaches SQL, Kubernetes, IAM, DNS and file paths; the file name must be the slug.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESERVED_SLUGS, SLUG_PATTERN } from '../../lib/registry/tenant-schema';
import { ACME_ID, expectAccepted, expectRejected, makeProject, q, rejectionOf, runTenantCase, tenantYaml } from './helpers';

const SLUG_RULE = /must be 3-30 characters: lowercase letters and digits, single inner hyphens, starting with a letter/;

describe('slug attacks and mistakes are rejected, with nothing else reported', () => {
  test.each([
    ['upper case', 'Acme'],
    ['all caps', 'ACME'],
    ['a Cyrillic homoglyph (а)', '\u0430cme'],
    ['a Greek homoglyph (ο)', 'acm\u03bf'],
    ['fullwidth letters', '\uff41\uff43\uff4d\uff45'],
    ['an accent', 'acm\u00e9'],
    ['a combining accent', 'acme\u0301'],
    ['a zero-width space', 'ac\u200bme'],
    ['SQL injection', "acme'; DROP SCHEMA public;--"],
    ['SQL injection with a double quote', 'acme"; DROP ROLE postgres; --'],
    ['path traversal', '../x'],
    ['deep path traversal', '../../etc/passwd'],
    ['an inner path', 'acme/../../x'],
    ['a Kubernetes label injection', 'acme,tier=admin'],
    ['a shell substitution', '$(id)'],
    ['a Terraform interpolation', '${var.x}'],
    ['31 characters', 'a'.repeat(31)],
    ['a leading digit', '1acme'],
    ['only digits', '123'],
    ['a leading hyphen', '-acme'],
    ['a trailing hyphen', 'acme-'],
    ['a double hyphen', 'ac--me'],
    ['an underscore (would collide with a-b in SQL names)', 'ac_me'],
    ['a dot', 'ac.me'],
    ['a space', 'ac me'],
    ['a leading space', ' acme'],
    ['a trailing newline', 'acme\n'],
    ['a NUL', 'acme\u0000'],
    ['two characters', 'ab'],
    ['empty', ''],
  ])('%s', (_name, slug) => {
    runTenantCase({ name: _name, text: tenantYaml({ slug: q(slug) }), expected: { path: 'slug', message: SLUG_RULE, at: /^slug:/ } });
  });

  test.each(['null', '123', 'true', '[acme]', '{ a: 1 }'])('slug: %s (not a string)', (slug) => {
    runTenantCase({ name: slug, text: tenantYaml({ slug }), expected: { path: 'slug', message: /expected string|must be/, at: /^slug:/ } });
  });

  // Names shorter than a slug (mx, ns, id) are reserved as subdomain labels; as slugs the pattern refuses them first.
  test.each([...RESERVED_SLUGS].filter((s) => SLUG_PATTERN.test(s)))('reserved slug %s, in a file of that name', (slug) => {
    runTenantCase({
      name: slug,
      file: `${slug}.yaml`,
      text: tenantYaml({ slug }),
      expected: { path: 'slug', message: /is reserved by the platform/, at: /^slug:/ },
    });
  });

  test('the reserved list covers the names the brief calls out', () => {
    for (const s of ['platform', 'admin', 'postgres', 'api', 'www', 'public', 'root', 'control-plane']) expect(RESERVED_SLUGS.has(s)).toBe(true);
  });

  test.each([
    ['3 characters', 'abc'],
    ['30 characters', `a${'b1'.repeat(14)}c`],
    ['inner hyphens and digits', 'a1-b2-c3'],
    ['a reserved word inside a longer slug', 'admin-tools'],
  ])('boundary: %s is a valid slug', (_name, slug) => {
    const reg = expectAccepted({ tenants: { [`${slug}.yaml`]: tenantYaml({ slug }) } });
    expect(reg.tenants.map((t) => t.slug)).toEqual([slug]);
  });
});

describe('the slug must match the file name', () => {
  test('a different valid slug', () => {
    runTenantCase({
      name: 'mismatch',
      text: tenantYaml({ slug: 'globex' }),
      expected: { path: 'slug', message: /must match the file name: expected "acme" or rename the file to globex\.yaml/, at: /^slug:/ },
    });
  });

  test('a prefix of the file name', () => {
    runTenantCase({ name: 'prefix', file: 'acme-corp.yaml', text: tenantYaml(), expected: { path: 'slug', message: /expected "acme-corp"/, at: /^slug:/ } });
  });
});

describe('tenant file names', () => {
  test.each([
    ['.yml', 'acme.yml'],
    ['upper case', 'Acme.yaml'],
    ['upper-case extension', 'acme.YAML'],
    ['a backup copy', 'acme.yaml.bak'],
    ['an editor backup', 'acme.yaml~'],
    ['a JSON file', 'acme.json'],
    ['a text file', 'notes.txt'],
    ['no extension', 'acme'],
    ['a homoglyph name', '\u0430cme.yaml'],
    ['a space', 'ac me.yaml'],
    ['an underscore', 'ac_me.yaml'],
  ])('%s (%s) is an unexpected file', (_name, file) => {
    expectRejected({ tenants: { [file]: tenantYaml() } }, [
      { file: `tenants/${file}`, path: '', message: /unexpected file: tenant files are named <slug>\.yaml \(lowercase, \.yaml not \.yml\)/ },
    ]);
  });

  test('a directory named x.yaml', () => {
    expectRejected({ tenants: { 'x.yaml': { directory: true } } }, [{ file: 'tenants/x.yaml', path: '', message: /must be a regular file/ }]);
  });

  test('a sub-directory with tenant files in it is not searched, it is reported', () => {
    expectRejected({ tenants: { 'archive/acme.yaml': tenantYaml() } }, [{ file: 'tenants/archive', path: '', message: /unexpected file/ }]);
  });

  test('a symbolic link to a valid tenant file', () => {
    const p = makeProject({});
    try {
      writeFileSync(join(p.root, 'elsewhere.yaml'), tenantYaml());
      execFileSync('ln', ['-s', join(p.root, 'elsewhere.yaml'), join(p.tenantsDir, 'acme.yaml')]);
      expect(rejectionOf(p.root).problems).toEqual([{ file: 'tenants/acme.yaml', path: '', message: 'must be a regular file, not a symbolic link' }]);
    } finally {
      p.remove();
    }
  });

  test.each([
    ['outside the project', '/etc/passwd'],
    ['that dangles', '/nonexistent/acme.yaml'],
    ['to a sibling', './beta.yaml'],
  ])('a symbolic link %s', (_name, target) => {
    expectRejected({ tenants: { 'acme.yaml': { symlinkTo: target } } }, [{ file: 'tenants/acme.yaml', path: '', message: /not a symbolic link/ }]);
  });

  test('a named pipe is rejected without being read (reading it would hang)', () => {
    const p = makeProject({});
    try {
      execFileSync('mkfifo', [join(p.tenantsDir, 'acme.yaml')]);
      expect(rejectionOf(p.root).problems).toEqual([{ file: 'tenants/acme.yaml', path: '', message: 'must be a regular file' }]);
    } finally {
      p.remove();
    }
  });

  test('hidden files, README.md, the schema and <slug>.values.yaml are not tenant records', () => {
    const reg = expectAccepted({
      tenants: {
        'acme.yaml': tenantYaml(),
        '.acme.yaml.swp': 'binary junk \u0000',
        'README.md': '# tenants\n',
        'tenant.schema.json': '{}',
        'acme.values.yaml': 'replicaCount: 2\n',
      },
    });
    expect(reg.tenants.map((t) => t.slug)).toEqual(['acme']);
  });

  test('an empty tenants/ directory is a valid (empty) registry', () => {
    expect(expectAccepted({}).tenants).toEqual([]);
  });

  test('a missing tenants/ directory', () => {
    const p = makeProject({});
    try {
      rmSync(p.tenantsDir, { recursive: true });
      expect(rejectionOf(p.root).problems).toEqual([{ file: 'tenants', path: '', message: 'tenant registry directory does not exist' }]);
    } finally {
      p.remove();
    }
  });

  test('file problems in several files are all reported, in name order', () => {
    const err = expectRejected(
      { tenants: { 'b.yml': 'x', 'a.json': '{}', 'acme.yaml': tenantYaml({ id: ACME_ID }), 'c.txt': '' } },
      [
        { file: 'tenants/a.json', path: '', message: /unexpected file/ },
        { file: 'tenants/b.yml', path: '', message: /unexpected file/ },
        { file: 'tenants/c.txt', path: '', message: /unexpected file/ },
      ],
    );
    expect(err.problems.map((p) => p.file)).toEqual(['tenants/a.json', 'tenants/b.yml', 'tenants/c.txt']);
  });
});

describe('known bugs: crashes instead of a RegistryError (fail until lib/ is fixed)', () => {
  // BUG: existsSync(tenantsDir) is true for a regular file, then readdirSync throws ENOTDIR,
  // which escapes loadRegistry as a plain Error (exit 1, "Synthesis failed") instead of a
  // problem on "tenants" together with every other problem.
  test('tenants/ being a regular file is reported as a registry problem', () => {
    const p = makeProject({});
    try {
      rmSync(p.tenantsDir, { recursive: true });
      writeFileSync(p.tenantsDir, tenantYaml());
      const err = rejectionOf(p.root);
      expect(err.problems).toEqual([expect.objectContaining({ file: 'tenants', path: '', message: expect.stringMatching(/directory/) })]);
    } finally {
      p.remove();
    }
  });
});
