// Messages a newcomer understands: a missing field says "required" (with what it takes), the
// problems come sorted by file and line, and a misspelt field name or stack selector gets a
// "did you mean".
import { selectStacks } from '../../stacks/select-tenants';
import { loadRegistry } from '../../lib/registry/load-registry';
import { ACME_ID, BETA_ID, GAMMA_ID, expectRejected, lineOf, makeProject, otherTenantYaml, PLATFORM_YAML, runTenantCase, tenantYaml } from './helpers';

describe('a missing field says "required"', () => {
  test.each([
    ['company', /^required: Company name as shown to people\.$/],
    ['adminEmail', /^required: Email of the tenant's first administrator/],
    ['plan', /^required: one of "free", "starter", "pro", "enterprise"$/],
    ['model', /^required: one of "silo", "bridge", "pool"$/],
  ])('%s', (field, message) => {
    runTenantCase({ name: field, text: tenantYaml({ [field]: null }), expected: { path: field, message } });
  });

  test('zod\'s wording ("Invalid input", "received undefined") never reaches the user', () => {
    const err = runTenantCase({ name: 'only a status', text: '# only a status\nstatus: active\n', expected: [], inexact: true });
    expect(err.problems.length).toBe(7);
    for (const p of err.problems) expect(p.message).toMatch(/^required/);
    expect(err.message).not.toMatch(/Invalid input|received undefined/);
  });

  test('a nested field that is missing is "required" too', () => {
    runTenantCase({
      name: 'suppression without a reason',
      text: tenantYaml({}, 'compliance:\n  suppressions:\n    - rule: TENANCY-K8S-3\n      path: namespace/release\n'),
      expected: { path: 'compliance.suppressions[0].reason', message: /^required/, at: /^ {4}- rule:/ },
    });
  });

  test('a field that is present but null is not "required": it says what it must be', () => {
    runTenantCase({ name: 'null plan', text: tenantYaml({ plan: 'null' }), expected: { path: 'plan', message: /expected one of/, at: /^plan:/ } });
  });
});

describe('problems are sorted by file, then line', () => {
  test('a file\'s schema problems and another file\'s rule problems come in file and line order', () => {
    // ccc.yaml fails its schema (found first); bcd.yaml breaks two registry-wide rules, found later
    // and in rule order (its slug on line 3 before its id on line 2).
    const bcd = tenantYaml({ id: ACME_ID, slug: 'acme', company: 'Bcd', adminEmail: 'ops@bcd.example' });
    const ccc = otherTenantYaml('ccc', BETA_ID, {}, 'plna: enterprise\n');
    const spec = { tenants: { 'abc.yaml': otherTenantYaml('abc', ACME_ID), 'bcd.yaml': bcd, 'ccc.yaml': ccc } };
    const err = expectRejected(spec, [
      { file: 'tenants/bcd.yaml', path: 'id', message: /already used/, at: /^id:/ },
      { file: 'tenants/bcd.yaml', path: 'slug', message: /must match the file name/, at: /^slug:/ },
      { file: 'tenants/ccc.yaml', path: 'plna', message: /unknown field/, at: /^plna:/ },
    ]);
    expect(err.problems.map((p) => `${p.file}:${p.line}`)).toEqual([
      `tenants/bcd.yaml:${lineOf(bcd, /^id:/)}`,
      `tenants/bcd.yaml:${lineOf(bcd, /^slug:/)}`,
      `tenants/ccc.yaml:${lineOf(ccc, /^plna:/)}`,
    ]);
    // The printed message lists them in the same order.
    const printed = err.message.split('\n').slice(1).map((l) => l.trim().split(':').slice(0, 2).join(':'));
    expect(printed).toEqual(err.problems.map((p) => `${p.file}:${p.line}`));
  });

  test('problems about whole files (no line) take their file\'s place too', () => {
    // Found in the order: ccc.yaml's schema, then the values file of no tenant, then aaa.yaml's rules.
    const aaa = tenantYaml({ slug: 'acme' });
    const spec = { tenants: { 'aaa.yaml': aaa, 'bbb.values.yaml': 'replicaCount: 1\n', 'ccc.yaml': otherTenantYaml('ccc', BETA_ID, {}, 'foo: 1\n') } };
    const err = expectRejected(spec, [
      { file: 'tenants/aaa.yaml', path: 'slug', message: /must match the file name/, at: /^slug:/ },
      { file: 'tenants/bbb.values.yaml', path: '', message: /values file of an unknown tenant/ },
      { file: 'tenants/ccc.yaml', path: 'foo', message: /unknown field/, at: /^foo:/ },
    ]);
    expect(err.problems.map((p) => p.file)).toEqual(['tenants/aaa.yaml', 'tenants/bbb.values.yaml', 'tenants/ccc.yaml']);
  });
});

describe('"did you mean" for a misspelt field name', () => {
  test.each([
    ['a transposition at the top level', tenantYaml({}, 'plna: enterprise\n'), 'plna', 'plan'],
    ['a wrong case', tenantYaml({ adminEmail: null }, 'adminemail: ops@acme.example\n'), 'adminemail', 'adminEmail'],
    ['a nested field', tenantYaml({}, 'compliance:\n  hipa: false\n'), 'compliance.hipa', 'hipaa'],
    ['inside a list item', tenantYaml({}, 'compliance:\n  suppressions:\n    - rule: TENANCY-K8S-3\n      path: namespace/release\n      reason: a reason for the auditor\n      reson: typo\n'), 'compliance.suppressions[0].reson', 'reason'],
  ])('%s', (_name, text, path, suggestion) => {
    const err = runTenantCase({ name: _name, text, expected: { path, message: new RegExp(`^unknown field; did you mean "${suggestion}"\\?$`) }, inexact: true });
    expect(err.problems.find((p) => p.path === path)?.line).toBe(lineOf(text, new RegExp(`^\\s*-?\\s*${path.split('.').pop()}:`)));
  });

  test('in platform.yaml', () => {
    expectRejected({ platform: `${PLATFORM_YAML}\nbaseDomian: x.example\n` }, [{ file: 'platform.yaml', path: 'baseDomian', message: /^unknown field; did you mean "baseDomain"\?$/ }]);
  });

  test('a name close to nothing gets no guess', () => {
    runTenantCase({ name: 'owner', text: tenantYaml({}, 'owner: someone\n'), expected: { path: 'owner', message: /^unknown field$/ } });
  });
});

describe('"did you mean" for a stack selector that matches no tenant', () => {
  const spec = { tenants: { 'acme.yaml': tenantYaml(), 'globex.yaml': otherTenantYaml('globex', BETA_ID) } };
  const withRegistry = (run: (registry: ReturnType<typeof loadRegistry>) => void) => {
    const p = makeProject(spec);
    try {
      run(loadRegistry({ root: p.root }));
    } finally {
      p.remove();
    }
  };

  test.each([
    ['acmee', 'acme'],
    ['glbex', 'globex'],
    ['ACME', 'acme'],
    ['platfrom', 'platform'],
  ])('%s suggests %s', (selector, suggestion) => {
    withRegistry((registry) => {
      expect(() => selectStacks(registry, selector)).toThrow(`no tenant with slug or id ${JSON.stringify(selector)}; did you mean ${JSON.stringify(suggestion)}?`);
    });
  });

  test('a selector close to nothing gets no guess, and the message still names it', () => {
    withRegistry((registry) => {
      expect(() => selectStacks(registry, 'acme,initech')).toThrow(/no tenant with slug or id "initech"$/);
    });
  });

  test('an offboarded tenant is not suggested', () => {
    const p = makeProject({ tenants: { ...spec.tenants, 'oldco.yaml': otherTenantYaml('oldco', GAMMA_ID, {}, 'status: offboarded\n') } });
    try {
      const registry = loadRegistry({ root: p.root });
      expect(() => selectStacks(registry, 'oldc')).toThrow(/no tenant with slug or id "oldc"$/);
    } finally {
      p.remove();
    }
  });
});
