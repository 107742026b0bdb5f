import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port';

/**
 * A local AWS API: moto's `moto_server` (Python, moto 5.x) on a free 127.0.0.1 port, started
 * through lib/local/moto_launcher.py, which fixes one moto gap before serving (every RDS DB
 * instance got the same dbi_resource_id). Used by `npm run deploy:local` and the deploy tests.
 *
 *   const moto = await startMoto();
 *   try { … AWS_ENDPOINT_URL = moto.endpoint … } finally { await moto.stop(); }
 */

/** moto is not installed, or cannot be imported by the Python that runs moto_server. */
export class MotoUnavailableError extends Error {}

export interface MotoOptions {
  /** The Python that has moto installed. @default $TENANCY_MOTO_PYTHON, else the interpreter of `moto_server` on the PATH */
  readonly python?: string;
  /** Port on 127.0.0.1. @default a free port */
  readonly port?: number;
  /** Longest to wait for the server to answer. @default 30 s */
  readonly startTimeoutMs?: number;
}

export interface MotoServer {
  /** `http://127.0.0.1:<port>`: AWS_ENDPOINT_URL of every client and of Terraform. */
  readonly endpoint: string;
  readonly port: number;
  /** The server's process id (to stop it from another process: `npm run deploy:local -- --down`). */
  readonly pid: number | undefined;
  /** The server's output so far (requests and errors), for failure messages. */
  log(): string;
  /** Stops the server (idempotent); all its state is gone. */
  stop(): Promise<void>;
}

const LAUNCHER = join(__dirname, 'moto_launcher.py');
/** The launcher is not compiled: from dist/lib/local, use the source next to it in lib/local. */
function launcherPath(): string {
  const fromDist = join(__dirname, '..', '..', '..', 'lib', 'local', 'moto_launcher.py');
  return existsSync(LAUNCHER) ? LAUNCHER : fromDist;
}

/**
 * The Python interpreter that runs moto: the shebang of `moto_server` on the PATH (resolving a
 * pyenv shim), checked by importing moto. Throws {@link MotoUnavailableError} with what to install.
 */
export function motoPython(explicit = process.env.TENANCY_MOTO_PYTHON): string {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  else {
    const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
    const server = which.status === 0 ? which.stdout.trim() : '';
    if (!server) {
      throw new MotoUnavailableError('moto_server is not on the PATH: the local AWS API needs moto 5 (Python): pip install "moto[server]==5.2.1" (not available from apt or npm), or set TENANCY_MOTO_PYTHON to a Python that has it');
    }
    const pyenv = spawnSync('pyenv', ['which', 'moto_server'], { encoding: 'utf8' });
    const script = pyenv.status === 0 ? pyenv.stdout.trim() : server;
    const shebang = spawnSync('head', ['-n1', script], { encoding: 'utf8' }).stdout ?? '';
    const interpreter = shebang.startsWith('#!') ? shebang.slice(2).trim().split(/\s+/) : [];
    if (interpreter.length === 1 && interpreter[0].includes('python')) candidates.push(interpreter[0]);
    candidates.push('python3');
  }
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import moto.server, moto.rds.models; print(moto.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  throw new MotoUnavailableError(`moto is not importable by ${candidates.join(' or ')}: install moto 5 with its server extra (pip install "moto[server]==5.2.1"), or set TENANCY_MOTO_PYTHON`);
}


/** Starts moto on 127.0.0.1 and resolves once it answers; rejects with its output if it does not. */
export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const python = motoPython(options.python);
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(python, [launcherPath(), '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // moto reads no AWS settings, but keep the server's environment free of real credentials.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))),
  });
  const keep = (chunk: Buffer) => {
    output = (output + String(chunk)).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => child.once('exit', (code) => {
    exited = code;
    resolve();
  }));

  const server: MotoServer = {
    endpoint,
    port,
    pid: child.pid,
    log: () => output,
    async stop() {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited !== undefined) throw new MotoUnavailableError(`moto_server exited (code ${exited}) before serving on ${endpoint}:\n${output.trim()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`moto_server did not answer on ${endpoint} within ${(options.startTimeoutMs ?? 30_000) / 1000} s:\n${output.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
