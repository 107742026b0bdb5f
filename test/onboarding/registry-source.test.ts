import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryRegistrySource } from '../../lib/onboarding/directory-registry-source';
import { RegistryConflictError, type TenantEntry } from '../../lib/onboarding/registry-source';
import { RegistryError } from '../../lib/registry/registry-error';
import { FixtureProject } from '../support/fixture-project';

/** The GitOps registry source: atomic, never-overwriting writes; commits of the one file in a git work tree. */
const entry = (overrides: Partial<TenantEntry> = {}): TenantEntry => ({
  id: '3f0b8c2e-6a1d-4f7b-9c3e-5d2a1b0c9e8f', slug: 'newco', company: 'NewCo', adminEmail: 'a@newco.example', plan: 'pro', model: 'bridge', region: 'us-east-1',
  dataResidency: 'none', compliance: { hipaa: false, pci: false, soc2: true, gdpr: false }, status: 'provisioning', ...overrides,
});

let project: FixtureProject;
beforeEach(() => {
  project = FixtureProject.fromSample();
});
afterEach(() => project.remove());

test('creates tenants/<slug>.yaml, valid for loadRegistry, with the editor schema line; no temporary file is left', async () => {
  const source = new DirectoryRegistrySource({ root: project.root, git: 'off' });
  expect(await source.create(entry(), 'msg')).toBe('created');
  const text = readFileSync(join(project.tenantsDir, 'newco.yaml'), 'utf8');
  expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./tenant.schema.json');
  const registry = await source.load();
  expect(registry.tenants.find((t) => t.slug === 'newco')).toMatchObject({ id: entry().id, status: 'provisioning' });
  expect(readdirSync(project.tenantsDir).filter((f) => f.startsWith('.'))).toEqual([]);
});

test('the same entry again is unchanged (a retry); another tenant with the slug is a conflict and the file is kept', async () => {
  const source = new DirectoryRegistrySource({ root: project.root, git: 'off' });
  await source.create(entry(), 'msg');
  const before = readFileSync(join(project.tenantsDir, 'newco.yaml'), 'utf8');
  expect(await source.create(entry(), 'msg')).toBe('unchanged');
  await expect(source.create(entry({ id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d' }), 'msg')).rejects.toBeInstanceOf(RegistryConflictError);
  await expect(source.create(entry({ slug: 'acme' }), 'msg')).rejects.toThrow(/tenants\/acme\.yaml already exists with another tenant/);
  expect(readFileSync(join(project.tenantsDir, 'newco.yaml'), 'utf8')).toBe(before);
  expect(readdirSync(project.tenantsDir).filter((f) => f.startsWith('.'))).toEqual([]);
});

test('setStatus rewrites the status only, keeping comments; a second call is unchanged', async () => {
  const source = new DirectoryRegistrySource({ root: project.root, git: 'off' });
  const file = join(project.tenantsDir, 'acme.yaml');
  writeFileSync(file, `# a comment that stays\n${readFileSync(file, 'utf8')}`);
  expect(await source.setStatus('acme', 'offboarded', 'msg')).toBe('updated');
  expect(await source.setStatus('acme', 'offboarded', 'msg')).toBe('unchanged');
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(/^# a comment that stays/);
  expect(text).toMatch(/^status: offboarded$/m);
  expect((await source.load()).tenants.find((t) => t.slug === 'acme')!.status).toBe('offboarded');
});

test('archive moves the entry (status offboarded) and its values file to tenants/offboarded/<slug>.<id>, out of the loaded registry; a retry is unchanged', async () => {
  const source = new DirectoryRegistrySource({ root: project.root, git: 'off' });
  const { id } = project.readTenant('globex') as { id: string };
  const values = readFileSync(join(project.tenantsDir, 'globex.values.yaml'), 'utf8');
  expect(await source.archive('globex', id, 'msg')).toBe('archived');
  const archived = join(project.tenantsDir, 'offboarded', `globex.${id}`);
  expect(readdirSync(project.tenantsDir).filter((f) => f.startsWith('globex'))).toEqual([]);
  expect(readFileSync(`${archived}.yaml`, 'utf8')).toMatch(/^status: offboarded$/m);
  expect(readFileSync(`${archived}.yaml`, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../tenant.schema.json');
  expect(readFileSync(`${archived}.values.yaml`, 'utf8')).toBe(values);
  expect(await source.archived('globex', id)).toMatchObject({ id, slug: 'globex', status: 'offboarded' });
  // Not loaded, and the slug is free for a new entry.
  expect((await source.load()).tenants.map((t) => t.slug)).not.toContain('globex');
  expect(await source.create(entry({ slug: 'globex' }), 'msg')).toBe('created');
  expect((await source.load()).tenants.find((t) => t.slug === 'globex')).toMatchObject({ id: entry().id });
  // A retry (the slug belongs to the new tenant now) finds the archive; another id is a conflict.
  expect(await source.archive('globex', id, 'msg')).toBe('unchanged');
  await expect(source.archive('acme', id, 'msg')).rejects.toBeInstanceOf(RegistryConflictError);
  expect(readdirSync(join(project.tenantsDir, 'offboarded')).filter((f) => f.startsWith('.'))).toEqual([]);
});

test('in a git work tree, only the tenant file is committed, with the message; other staged changes stay staged', async () => {
  const git = (...args: string[]) => execFileSync('git', ['-C', project.root, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'init');
  writeFileSync(join(project.root, 'platform.yaml'), `${readFileSync(join(project.root, 'platform.yaml'), 'utf8')}# staged elsewhere\n`);
  git('add', 'platform.yaml');
  const source = new DirectoryRegistrySource({ root: project.root });
  await source.create(entry(), 'Onboard tenant newco');
  expect(git('log', '-1', '--format=%s%n%an', '--name-only').trim().split('\n')).toEqual(['Onboard tenant newco', 'tenancy', '', 'tenants/newco.yaml']);
  expect(git('diff', '--cached', '--name-only').trim()).toBe('platform.yaml');
  // A retry after the write but before the commit commits; after the commit it is a no-op.
  expect(await source.create(entry(), 'again')).toBe('unchanged');
  expect(git('rev-list', '--count', 'HEAD').trim()).toBe('2');
});

test('the registry is validated on load: a broken file fails every load with its place', async () => {
  const source = new DirectoryRegistrySource({ root: project.root, git: 'off' });
  project.writeTenantFile('broken.yaml', 'slug: broken\n');
  await expect(source.load()).rejects.toBeInstanceOf(RegistryError);
  await expect(source.load()).rejects.toThrow(/tenants\/broken\.yaml/);
});
