// The valid side: the shipped sample registry validates (on a copy, whatever the user has added
// to it), the tests' own sample project loads as the tests expect, and the committed JSON
// Schemas (what editors validate against) are exactly what the zod schemas produce now.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemaFiles } from '../../bin/write-schema';
import { loadRegistry } from '../../lib/registry/load-registry';
import { SLUG_PATTERN, tenantJsonSchema } from '../../lib/registry/tenant-schema';
import { FixtureProject, REPO_ROOT, validTenant } from '../support/fixture-project';
import { copyUserRegistry } from '../support/user-registry-guard';

describe('the shipped sample registry', () => {
  // The only test that reads the repository's platform.yaml and tenants/ (on a copy). Users add,
  // edit and remove tenants there, so it checks validity only, never which tenants there are.
  test('platform.yaml and tenants/ of the repository validate', () => {
    const p = copyUserRegistry();
    try {
      const reg = loadRegistry({ root: p.root });
      expect(reg.platform.regions).toBeDefined();
    } finally {
      p.remove();
    }
  });
});

describe("the tests' sample project (test/fixtures/sample-project)", () => {
  test('loads, tenants sorted by slug, defaults applied', () => {
    const p = FixtureProject.fromSample();
    try {
      const reg = loadRegistry({ root: p.root });
      expect(reg.tenants.map((t) => t.slug)).toEqual(['acme', 'berlin-analytics', 'globex', 'initech', 'mediwell', 'oldco', 'payflow', 'tinyco']);
      expect(Object.keys(reg.platform.regions)).toEqual(['us-east-1', 'eu-central-1']);
      const tinyco = reg.tenants.find((t) => t.slug === 'tinyco')!;
      expect(tinyco).toMatchObject({ dataResidency: 'none', compliance: { hipaa: false, pci: false, soc2: true, gdpr: false }, domain: {}, workload: {}, quotas: {} });
      expect(reg.tenants.find((t) => t.slug === 'oldco')!.status).toBe('offboarded');
      for (const t of reg.tenants) {
        const text = readFileSync(join(p.tenantsDir, `${t.slug}.yaml`), 'utf8');
        expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./tenant.schema.json');
      }
    } finally {
      p.remove();
    }
  });

  test('generated valid tenants load', () => {
    const p = FixtureProject.empty();
    try {
      for (const model of ['silo', 'bridge', 'pool']) p.writeTenant(validTenant({ model }));
      p.writeTenant(validTenant({ plan: 'free', model: 'pool' }));
      p.writeTenant(validTenant({ model: 'silo', compliance: { hipaa: true, pci: true } }));
      p.writeTenant(validTenant({ region: 'eu-central-1', dataResidency: 'eu', compliance: { gdpr: true } }));
      expect(loadRegistry({ root: p.root }).tenants).toHaveLength(6);
    } finally {
      p.remove();
    }
  });
});

describe('committed JSON Schemas are up to date (run `npm run schema` when this fails)', () => {
  test('tenants/tenant.schema.json equals tenantJsonSchema()', () => {
    const committed = readFileSync(join(REPO_ROOT, 'tenants', 'tenant.schema.json'), 'utf8');
    expect(committed).toBe(`${JSON.stringify(tenantJsonSchema(), null, 2)}\n`);
  });

  test.each(schemaFiles(REPO_ROOT).map(([file, schema]) => [file.slice(REPO_ROOT.length + 1), file, schema] as const))('%s equals schemaFiles()', (_rel, file, schema) => {
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(schema, null, 2)}\n`);
  });

  test('schemaFiles() writes exactly the two schema files', () => {
    expect(schemaFiles(REPO_ROOT).map(([f]) => f)).toEqual([join(REPO_ROOT, 'tenants', 'tenant.schema.json'), join(REPO_ROOT, 'platform.schema.json')]);
  });

  test('the editor schema is as strict as the loader on what it can express', () => {
    const schema = tenantJsonSchema() as { additionalProperties?: boolean; required?: string[]; properties: Record<string, { pattern?: string; additionalProperties?: boolean }> };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(expect.arrayContaining(['id', 'slug', 'company', 'adminEmail', 'plan', 'model', 'region']));
    expect(schema.properties.slug.pattern).toBe(SLUG_PATTERN.source);
    for (const nested of ['compliance', 'domain', 'workload', 'quotas']) expect(schema.properties[nested].additionalProperties).toBe(false);
  });
});
