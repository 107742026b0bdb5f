// Feedback on long work: `npm start` (scripts/start.sh, bin/start.ts) and `npm test`
// (scripts/test.sh) say which phase they are in, with the elapsed time, on stderr, leaving stdout
// to the result; in logs (CI=true, a pipe) as plain lines, without carriage returns.
// lib/app/progress.ts prints the phases inside `npm start`, scripts/phase.sh those of the scripts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhaseReporter, isInteractive } from '../../lib/app/progress';
import { FixtureProject, REPO_ROOT } from '../support/fixture-project';

const PHASE_SH = join(REPO_ROOT, 'scripts', 'phase.sh');
const START_SH = join(REPO_ROOT, 'scripts', 'start.sh');
const TEST_SH = join(REPO_ROOT, 'scripts', 'test.sh');
const ELAPSED = String.raw`\d+\.\d s`;

/** What a reporter writes, with a clock the test moves. */
function capture(animate: boolean) {
  const out: string[] = [];
  let now = 1_000;
  const reporter = new PhaseReporter({ prefix: 'npm start', stream: { write: (s: string) => (out.push(s), true) }, animate, now: () => now });
  return { reporter, text: () => out.join(''), advance: (ms: number) => (now += ms) };
}

describe('PhaseReporter (lib/app/progress.ts)', () => {
  test('plain lines: begin, throttled progress with elapsed time, end with elapsed time; no carriage return', () => {
    const { reporter, text, advance } = capture(false);
    const phase = reporter.begin('synth');
    phase.progress('registry loaded');
    advance(1_000);
    phase.progress('1/8 slices'); // within the interval of the previous line: not printed
    advance(5_000);
    phase.progress('5/8 slices');
    advance(250);
    phase.end();
    expect(text()).toBe(
      'npm start: synth …\n' +
        'npm start: synth registry loaded, 0.0 s\n' +
        'npm start: synth 5/8 slices, 6.0 s\n' +
        'npm start: synth done in 6.2 s\n',
    );
  });

  test('a failed phase says so with its elapsed time, once', async () => {
    const { reporter, text, advance } = capture(false);
    await expect(reporter.run('synth', () => {
      advance(1_500);
      throw new Error('bad registry');
    })).rejects.toThrow('bad registry');
    expect(text()).toBe('npm start: synth …\nnpm start: synth failed after 1.5 s\n');
  });

  test('on a terminal the progress line is redrawn in place and cleared before the end line', () => {
    const { reporter, text, advance } = capture(true);
    const phase = reporter.begin('synth');
    advance(2_000);
    phase.progress('3/8 slices');
    phase.end();
    expect(text()).toBe('npm start: synth …\n\r\x1b[Knpm start: synth 3/8 slices, 2.0 s\r\x1b[Knpm start: synth done in 2.0 s\n');
  });

  test('animation only on a terminal outside CI', () => {
    expect(isInteractive({ isTTY: true }, {})).toBe(true);
    expect(isInteractive({ isTTY: true }, { CI: 'true' })).toBe(false);
    expect(isInteractive({ isTTY: false }, {})).toBe(false);
    expect(isInteractive({}, { CI: 'false' })).toBe(false);
  });
});

describe('scripts/phase.sh (sourced by npm test and npm start)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tenancy-phase-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `body` after sourcing phase.sh, its stderr into a file (where a command can wait for the ticker's lines). */
  function runPhases(body: string, env: Record<string, string> = {}) {
    const log = join(dir, 'stderr.log');
    const r = spawnSync('bash', ['-c', `set -euo pipefail; exec 2>"$LOG"; PHASE_PREFIX="npm test"; source "$PHASE_SH"; ${body}`], {
      env: { ...process.env, CI: 'true', PHASE_SH, LOG: log, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: readFileSync(log, 'utf8') };
  }

  test('each phase: a line when it begins, its elapsed time when it ends or fails, the failure status returned', () => {
    const r = runPhases('phase type-check true; phase build false || echo "status $?"; echo result');
    expect(r.stdout).toBe('status 1\nresult\n');
    expect(r.stderr).toMatch(new RegExp(
      `^npm test: type-check …\nnpm test: type-check done in ${ELAPSED}\nnpm test: build …\nnpm test: build failed after ${ELAPSED}\n$`,
    ));
  });

  test('a long phase prints its elapsed time while it runs, as plain lines under CI; none after it ends', () => {
    // The phase's command waits until the ticker has printed (a condition, not a duration).
    const r = runPhases(
      `phase jest-like bash -c 'until grep -q "^npm test: jest-like [0-9]" "$LOG"; do sleep 0.1; done'; echo after >&2`,
      { PHASE_TICK: '1' },
    );
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toBe('npm test: jest-like …');
    expect(lines.slice(1, -2).length).toBeGreaterThan(0);
    for (const tick of lines.slice(1, -2)) expect(tick).toMatch(new RegExp(`^npm test: jest-like ${ELAPSED}$`));
    expect(lines.slice(-2)).toEqual([expect.stringMatching(new RegExp(`^npm test: jest-like done in ${ELAPSED}$`)), 'after']);
    expect(r.stderr).not.toContain('\r');
  });

  test('npm test and npm start source it and name their phases', () => {
    for (const script of [TEST_SH, START_SH, PHASE_SH]) expect(spawnSync('bash', ['-n', script]).status).toBe(0);
    const testSh = readFileSync(TEST_SH, 'utf8');
    expect(testSh).toContain('source scripts/phase.sh');
    const phases = ['phase_begin "installing Debian packages', 'phase "npm ci"', 'phase_begin helm', 'phase type-check', 'phase build', 'phase_begin jest'];
    const at = phases.map((p) => testSh.indexOf(p));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(readFileSync(START_SH, 'utf8')).toMatch(/phase build /);
  });
});

describe('npm start (scripts/start.sh) in a fixture project', () => {
  let project: FixtureProject;
  beforeEach(() => (project = FixtureProject.fromSample()));
  afterEach(() => project.remove());

  const start = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', CHECKPOINT_DISABLE: '1', TENANCY_SYNTH_PROCESSES: '2' };
    for (const name of ['TENANCY_SELECT', 'CDKTF_OUTDIR', 'CDKTF_CONTEXT_JSON', 'TENANCY_DEBUG', 'NODE_OPTIONS']) delete env[name];
    const r = spawnSync('bash', [START_SH], { cwd: project.root, env, encoding: 'utf8', timeout: 170_000 });
    if (r.error) throw r.error;
    return r;
  };

  test('says build, then synth with the registry loaded, each with its elapsed time, on stderr; stdout is the summary', () => {
    const r = start();
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    // Without the progress lines a slow machine adds (the elapsed time every few seconds).
    const progress = new RegExp(`^npm start: (build|synth) (\\d+/\\d+ slices, )?${ELAPSED}$`);
    const phaseLines = r.stderr.split('\n').filter((l) => l.startsWith('npm start: ') && !progress.test(l));
    expect(phaseLines[0]).toBe('npm start: build …');
    expect(phaseLines[1]).toMatch(new RegExp(`^npm start: build done in ${ELAPSED}$`));
    expect(phaseLines[2]).toBe('npm start: synth …');
    expect(phaseLines[3]).toMatch(new RegExp(`^npm start: synth registry loaded: \\d+ of \\d+ tenants selected, 2 processes, ${ELAPSED}$`));
    expect(phaseLines[phaseLines.length - 1]).toMatch(new RegExp(`^npm start: synth done in ${ELAPSED}$`));
    expect(r.stderr).not.toContain('\r');
    expect(r.stdout).not.toContain('npm start:');
    expect(r.stdout).toMatch(/stacks synthesized to cdktf\.out\/stacks in .* \(2 processes\)/);
  });

  test('a bad registry: the synth phase fails with its elapsed time, exit non-zero', () => {
    project.writeTenantFile('broken.yaml', 'slug: [not, a, slug]\n');
    const r = start();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`npm start: synth …\n(.|\n)*npm start: synth failed after ${ELAPSED}\n`));
    expect(r.stdout).toBe('');
  });
});
