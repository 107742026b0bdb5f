import { Writable } from 'node:stream';
import { Command, CommanderError } from 'commander';

/** What a `tenancy` command writes to and reads from (lib/cli/*-command.ts take it as `io`). */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

/**
 * Runs one `tenancy` command in-process, as bin/tenancy.ts would: its output captured, its exit
 * code returned (commander's for bad usage). `tty` makes stdout a terminal (human output).
 */
export async function runCommand(
  register: (program: Command, io: CliIo) => void,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; tty?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    Object.assign(new Writable({ write(chunk, _enc, done) { append(String(chunk)); done(); } }), options.tty ? { isTTY: true } : {});
  const io: CliIo = { stdout: sink((s) => { stdout += s; }), stderr: sink((s) => { stderr += s; }), env: options.env ?? {} };
  const program = new Command('tenancy').exitOverride();
  program.configureOutput({ writeErr: (s) => { stderr += s; }, writeOut: (s) => { stdout += s; } });
  register(program, io);
  process.exitCode = undefined;
  let code: number;
  try {
    await program.parseAsync([...args], { from: 'user' });
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    code = e.exitCode;
  } finally {
    process.exitCode = undefined;
  }
  return { code, stdout, stderr };
}
