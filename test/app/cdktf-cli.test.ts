import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FixtureProject, REPO_ROOT } from '../support/fixture-project';

// The real `cdktf synth` CLI drives the app (dist/main.js, built by `npm test` before jest runs).
describe('cdktf CLI', () => {
  let project: FixtureProject;
  beforeAll(() => {
    project = FixtureProject.fromSample();
    writeFileSync(join(project.root, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `node ${join(REPO_ROOT, 'dist', 'main.js')}`, sendCrashReports: 'false' }));
  });
  afterAll(() => project.remove());

  const cdktf = (env: Record<string, string> = {}) =>
    execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'cdktf'), ['synth'], {
      cwd: project.root,
      env: { ...process.env, CHECKPOINT_DISABLE: '1', CI: '1', ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const stacks = () => readdirSync(join(project.root, 'cdktf.out', 'stacks')).sort();

  test('synthesizes every stack, then only the selected tenant, and cleans up the others', () => {
    cdktf();
    expect(stacks()).toHaveLength(9);
    cdktf({ TENANCY_SELECT: 'globex' });
    expect(stacks()).toEqual(['tenant-globex']);
    cdktf({ CDKTF_CONTEXT_JSON: JSON.stringify({ tenancySelect: ['acme', 'platform'] }) });
    expect(stacks()).toEqual(['platform-eu-central-1', 'platform-us-east-1', 'tenant-acme']);
  });
});
