import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram, main } from '../../bin/tenancy';
import { registerPostApplyCommand } from '../../lib/cli/post-apply-command';
import { runCommand } from '../support/cli';
import { REPO_ROOT } from '../support/fixture-project';

/** What a well-kept CLI does: --version, required options marked, one name per environment variable, a clear message without dist/. */

const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

/** Runs bin/tenancy.ts's main() with stdout and stderr captured. */
async function runMain(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { stdout += String(chunk); return true; });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr += String(chunk); return true; });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}

test('tenancy --version and -V print package.json\'s version and exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const result = await runMain([flag]);
    expect(result).toEqual({ code: 0, stdout: `${packageJson.version}\n`, stderr: '' });
  }
});

const subcommand = (program: Command, name: string) => program.commands.find((c) => c.name() === name)!;

test('help marks required options as required, and only those', () => {
  const help = subcommand(buildProgram('onboard'), 'onboard').helpInformation();
  for (const option of ['--email <address>', '--company <name>', '--plan <plan>', '--model <model>', '--region <region>']) {
    expect(help).toMatch(new RegExp(`${option.replace(/[<>]/g, '.')}\\s+\\(required\\) `));
  }
  expect(help).not.toMatch(/--slug <slug>\s+\(required\)/);
  const postApply = subcommand(buildProgram('post-apply'), 'post-apply').helpInformation();
  expect(postApply).toMatch(/--outputs <file>\s+\(required\) /);
  expect(postApply.match(/\(required\)/g)).toHaveLength(1);
});

describe('environment variables: TENANCY_BILLING_* for the Checkout URLs, the old TENANCY_CHECKOUT_* names deprecated', () => {
  let dir: string;
  let outputs: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tenancy-cli-conventions-'));
    outputs = join(dir, 'outputs.json');
    writeFileSync(outputs, '{}');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // A lone success URL is refused before anything connects: which names were read shows in the message.
  const postApply = (env: NodeJS.ProcessEnv) => runCommand(registerPostApplyCommand, ['post-apply', '--outputs', outputs], { env });

  test('the old name is still read, with a one-line deprecation warning', async () => {
    const result = await postApply({ TENANCY_CHECKOUT_SUCCESS_URL: 'https://saas.example.com/done' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('tenancy: warning: TENANCY_CHECKOUT_SUCCESS_URL is deprecated, use TENANCY_BILLING_SUCCESS_URL\n');
    expect(result.stderr).toContain('give both --checkout-success-url and --checkout-cancel-url');
  });

  test('the current name is read without a warning', async () => {
    const result = await postApply({ TENANCY_BILLING_CANCEL_URL: 'https://saas.example.com/cancel' });
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain('deprecated');
    expect(result.stderr).toContain('give both --checkout-success-url and --checkout-cancel-url');
  });

  test('both names set: the current one wins and the warning says the old one is ignored', async () => {
    const result = await postApply({ TENANCY_CHECKOUT_CANCEL_URL: 'https://old.example.com', TENANCY_BILLING_CANCEL_URL: 'https://saas.example.com/cancel', TENANCY_BILLING_SUCCESS_URL: 'https://saas.example.com/done' });
    expect(result.stderr).toContain('TENANCY_CHECKOUT_CANCEL_URL is deprecated, use TENANCY_BILLING_CANCEL_URL (both are set: TENANCY_CHECKOUT_CANCEL_URL is ignored)');
    expect(result.stderr).not.toContain('give both');
  });

  test('the help names the current variables only', () => {
    const help = subcommand(buildProgram('post-apply'), 'post-apply').helpInformation();
    expect(help).toContain('TENANCY_BILLING_SUCCESS_URL');
    expect(help).toContain('TENANCY_BILLING_CANCEL_URL');
    expect(help).not.toContain('TENANCY_CHECKOUT_');
  });
});

describe('the package\'s bin without dist/', () => {
  let copy: string;
  beforeAll(() => {
    // The shim as it ships, in a package directory that was never built.
    copy = mkdtempSync(join(tmpdir(), 'tenancy-nodist-'));
    mkdirSync(join(copy, 'bin'), { recursive: true });
    copyFileSync(join(REPO_ROOT, packageJson.bin.tenancy), join(copy, packageJson.bin.tenancy));
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  test('says to run npm run build, exits 1, and shows no stack trace', () => {
    const result = spawnSync(process.execPath, [join(copy, packageJson.bin.tenancy), '--version'], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('tenancy: dist/ is missing: run `npm run build` first');
    expect(result.stderr).not.toMatch(/MODULE_NOT_FOUND|at Module|node:internal/);
    expect(result.stdout).toBe('');
  });

  test('with dist/ it runs the compiled CLI\'s main with the arguments and exits with its code', () => {
    mkdirSync(join(copy, 'dist', 'bin'), { recursive: true });
    writeFileSync(join(copy, 'dist', 'bin', 'tenancy.js'), 'exports.main = async (argv) => { process.stdout.write(JSON.stringify(argv)); return 3; };\n');
    const result = spawnSync(process.execPath, [join(copy, packageJson.bin.tenancy), 'status', 'acme', '--json'], { encoding: 'utf8' });
    expect(result.stdout).toBe('["status","acme","--json"]');
    expect(result.status).toBe(3);
    rmSync(join(copy, 'dist'), { recursive: true, force: true });
  });
});
