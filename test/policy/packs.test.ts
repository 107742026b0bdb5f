// Which packs apply, where the rules link to, and that docs/compliance.md documents every rule.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_RULES, PACKS, packsFor, packsOfAspect, rulesOf } from '../../lib/policy/packs';
import { PACK_NAMES } from '../../lib/policy/policy-rule';
import { headingAnchor, REFERENCE, REFERENCE_PATH_FROM_REPO } from '../../lib/policy/reference';
import { REPO_ROOT } from '../support/fixture-project';
import { registry, sample, tenantStack } from './fixtures';

describe('packs', () => {
  test('tenancy and soc2 apply to everyone; hipaa, pci and gdpr follow the compliance flags', () => {
    const flags = (f: Partial<Record<'hipaa' | 'pci' | 'soc2' | 'gdpr', boolean>>) => ({ compliance: { hipaa: false, pci: false, soc2: false, gdpr: false, ...f } });
    expect(packsFor(flags({}))).toEqual(['tenancy', 'soc2']);
    expect(packsFor(flags({ hipaa: true, gdpr: true }))).toEqual(['tenancy', 'soc2', 'hipaa', 'gdpr']);
    expect(packsFor(flags({ pci: true }))).toEqual(['tenancy', 'soc2', 'pci']);
    expect(packsFor()).toEqual(['tenancy', 'soc2']);
  });

  test.each([
    ['mediwell', ['tenancy', 'soc2', 'hipaa']],
    ['payflow', ['tenancy', 'soc2', 'pci']],
    ['berlin-analytics', ['tenancy', 'soc2', 'gdpr']],
    ['acme', ['tenancy', 'soc2']],
  ])('tenant stack %s gets %j', (slug, packs) => {
    const { policy } = tenantStack(sample(slug));
    expect(packsOfAspect(policy)).toEqual(packs);
    expect(policy.rules).toEqual(rulesOf(packs as never));
  });

  test('rule ids are unique, and each pack lists only its own rules', () => {
    expect(new Set(ALL_RULES.map((r) => r.id)).size).toBe(ALL_RULES.length);
    for (const name of PACK_NAMES) for (const rule of PACKS[name].rules) expect(rule.pack).toBe(name);
    for (const name of PACK_NAMES) {
      expect(PACKS[name].covers.length).toBeGreaterThan(0);
      expect(PACKS[name].doesNotCover.length).toBeGreaterThan(0);
    }
  });

  test('every live sample tenant has a stack with its packs', () => {
    for (const t of registry.tenants.filter((x) => x.status !== 'offboarded')) expect(packsOfAspect(tenantStack(t).policy)).toEqual(packsFor(t));
  });
});

describe('links to the domain reference', () => {
  const referenceFile = join(REPO_ROOT, REFERENCE_PATH_FROM_REPO);
  const headings = readFileSync(referenceFile, 'utf8').split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => l.replace(/^#+ /, '').trim());

  test('anchors are GitHub slugs of headings', () => {
    expect(headingAnchor('SOC 2 Type II')).toBe('soc-2-type-ii');
    expect(headingAnchor('NetworkPolicy: Block Cross-Namespace Traffic')).toBe('networkpolicy-block-cross-namespace-traffic');
    expect(headingAnchor('Database / Schema Provisioning')).toBe('database--schema-provisioning');
  });

  test('every section a rule links to is a heading of the reference', () => {
    for (const requirement of Object.values(REFERENCE)) expect(headings).toContain(requirement.section);
    for (const rule of ALL_RULES) {
      expect(headings).toContain(rule.requirement!.section);
      expect(headings.map(headingAnchor)).toContain(rule.requirement!.anchor);
    }
  });
});

// The rules table moved from the README to docs/compliance.md, whose links are relative to docs/.
describe('docs/compliance.md', () => {
  const readme = readFileSync(join(REPO_ROOT, 'docs', 'compliance.md'), 'utf8');
  test.each(ALL_RULES.map((r) => [r.id, r] as const))('documents %s with its pack, level and link', (id, rule) => {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${id}\` |`));
    expect(row).toBeDefined();
    expect(row).toContain(`| ${rule.pack} |`);
    expect(row).toContain(`${REFERENCE_PATH_FROM_REPO.replace(/^docs\//, '')}#${rule.requirement!.anchor}`);
    if (rule.level === 'warning') expect(row).toContain('warning');
  });
});
