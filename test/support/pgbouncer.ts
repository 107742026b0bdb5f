/**
 * The real PgBouncer (Debian's package), started for a test with a configuration rendered by
 * lib/pgbouncer/pgbouncer-config.ts: its own temporary directory owned by the `postgres` OS user
 * (PgBouncer refuses root), a free port on 127.0.0.1, no Unix socket, the log on stderr
 * (captured, and written to `<dir>/pgbouncer.log`). It runs in the foreground as a child process
 * of the test, so it cannot outlive the test run unnoticed: stop() ends it, and a process-exit
 * hook kills whatever a crashed test left behind.
 *
 *   const bouncer = usePgbouncer(async () => ({ settings: { host: 'localhost', port: pg().port, ... }, users: [...] }));
 *   const client = new Client(bouncer().clientConfig({ user: 'app', password, database: 'tenant_acme' }));
 *
 * Set TENANCY_PGBOUNCER_BIN to use another binary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { ClientConfig } from 'pg';
import { renderPgbouncerIni, renderUserlist, type PgbouncerSettings, type PgbouncerUser } from '../../lib/pgbouncer/pgbouncer-config';
import { freePort, makeServiceDir, removeDir, serviceEnv, serviceUser, writeServiceFile } from './postgres';

export const PGBOUNCER_BIN = process.env.TENANCY_PGBOUNCER_BIN ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer');
/** Longest PgBouncer may take to start or stop before the test fails instead of hanging. */
const START_STOP_LIMIT_MS = 30_000;
const CONNECT_ATTEMPTS = 50;

/** What the harness chooses itself: where PgBouncer listens and where its files are. */
type HarnessSettings = 'listenAddr' | 'listenPort' | 'authFile' | 'unixSocketDir' | 'pidfile' | 'logfile';

export interface PgbouncerOptions {
  /** Everything renderPgbouncerIni needs except the listening address and the file paths, which the harness picks. */
  readonly settings: Omit<PgbouncerSettings, HarnessSettings>;
  /** The auth_file's entries (rendered with renderUserlist). */
  readonly users: readonly PgbouncerUser[];
}

const running = new Set<PgbouncerProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const bouncer of running) bouncer.killNow();
  });
}

/** Rejects with `message` after `ms` unless `promise` settles first (a bound on a wait, not a synchronisation). */
function within<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** One TCP connection attempt: true if something accepts on host:port. */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A running PgBouncer. Create with {@link PgbouncerProcess.start} or {@link usePgbouncer}. */
export class PgbouncerProcess {
  /** Where clients connect (no TLS between client and PgBouncer unless settings.clientTls). */
  readonly host = '127.0.0.1';
  readonly iniFile: string;
  readonly authFile: string;
  /** PgBouncer's log (its stderr, across restarts), as a file. */
  readonly logFile: string;
  private output = '';
  /** Where the current process's output starts in `output` (a restart appends). */
  private outputStart = 0;
  private readonly logStream: WriteStream;
  private stopped = false;
  private child!: ChildProcess;
  /** Settles when the current process has ended and its output is read (or it could not be spawned). */
  private closed!: Promise<void>;

  private constructor(
    /** PgBouncer's temporary directory (configuration, userlist, log). */
    readonly dir: string,
    readonly port: number,
    /** The rendered pgbouncer.ini. */
    readonly ini: string,
  ) {
    this.iniFile = join(dir, 'pgbouncer.ini');
    this.authFile = join(dir, 'userlist.txt');
    this.logFile = join(dir, 'pgbouncer.log');
    this.logStream = createWriteStream(this.logFile);
  }

  /**
   * Renders pgbouncer.ini and userlist.txt, starts PgBouncer on a free port (another one if the
   * port was taken meanwhile), waits until it accepts connections. On failure the process is
   * killed, the directory removed, and the error carries the log.
   */
  static async start(options: PgbouncerOptions): Promise<PgbouncerProcess> {
    const dir = makeServiceDir('tenancy-pgbouncer-');
    try {
      const authFile = writeServiceFile(join(dir, 'userlist.txt'), renderUserlist(options.users));
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        const ini = renderPgbouncerIni({ ...options.settings, listenAddr: '127.0.0.1', listenPort: port, authFile, unixSocketDir: '' });
        writeServiceFile(join(dir, 'pgbouncer.ini'), ini);
        const bouncer = new PgbouncerProcess(dir, port, ini);
        installExitHook();
        try {
          await bouncer.launch();
          return bouncer;
        } catch (e) {
          await bouncer.closeLog();
          if (attempt < 3 && /Address already in use/i.test(bouncer.readLog())) continue;
          throw e;
        }
      }
    } catch (e) {
      removeDir(dir);
      throw e;
    }
  }

  /**
   * Starts the process on this instance's port and configuration, waits for its "process up" log
   * line, then for a TCP connection to succeed. On failure the process is stopped (its log stays
   * open for the caller) and the error carries the log.
   */
  private async launch(): Promise<void> {
    this.outputStart = this.output.length;
    const child = spawn(PGBOUNCER_BIN, [this.iniFile], {
      cwd: this.dir,
      env: serviceEnv(this.dir),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(serviceUser() ?? {}),
    });
    this.child = child;
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      this.logStream.write(chunk);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.closed = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', (e) => {
        this.output += `\n[${PGBOUNCER_BIN} could not run: ${e.message}]\n`;
        resolve();
      });
    });
    running.add(this);
    const ready = await within(this.waitForLog(/LOG process up/), START_STOP_LIMIT_MS, () => `PgBouncer did not start within ${START_STOP_LIMIT_MS} ms\n${this.readLog()}`)
      .catch(async (e: Error) => {
        await this.endProcess();
        throw e;
      });
    if (!ready) {
      await this.endProcess();
      throw new Error(`PgBouncer exited while starting (${child.exitCode ?? child.signalCode}):\n${this.readLog()}\n--- pgbouncer.ini ---\n${this.ini}`);
    }
    for (let i = 1; !(await canConnect(this.host, this.port)); i++) {
      if (i >= CONNECT_ATTEMPTS || child.exitCode !== null) {
        await this.endProcess();
        throw new Error(`PgBouncer logged "process up" but ${this.host}:${this.port} refused ${i} connections:\n${this.readLog()}`);
      }
    }
  }

  /** Resolves true once a log line of the current process matches `pattern`, false if the process ends first. */
  waitForLog(pattern: RegExp): Promise<boolean> {
    const child = this.child;
    const matches = () => pattern.test(this.output.slice(this.outputStart));
    return new Promise((resolve) => {
      const check = () => {
        if (!matches()) return;
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
        resolve(true);
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      // 'close' comes after the last output; resolving twice is harmless.
      void this.closed.then(() => resolve(matches()));
      check();
    });
  }

  /** Connection settings for a client of PgBouncer (the database is the alias). */
  clientConfig(options: { user: string; password?: string; database: string }): ClientConfig {
    return { host: this.host, port: this.port, user: options.user, password: options.password, database: options.database, ssl: false };
  }

  /** PgBouncer's log so far (every process this instance ran). */
  readLog(): string {
    return this.output;
  }

  /** The process id (for tests that signal it, e.g. SIGHUP to reload). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * A PgBouncer restart as an operator does it: the process stops (SIGTERM: every client and
   * server connection is closed at once), then a new one starts on the same port and
   * configuration. Clients see their connections end, and new ones refused until it is back.
   */
  async restart(): Promise<void> {
    if (this.stopped) throw new Error('PgBouncer was stopped; it cannot restart');
    await this.endProcess();
    await this.launch();
  }

  /** Stops PgBouncer (SIGTERM; SIGKILL if it does not exit) and removes its directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.stopProcess();
    } finally {
      removeDir(this.dir);
    }
  }

  private async stopProcess(): Promise<void> {
    await this.endProcess();
    await this.closeLog();
  }

  private closeLog(): Promise<void> {
    return new Promise<void>((resolve) => this.logStream.end(resolve));
  }

  private async endProcess(): Promise<void> {
    running.delete(this);
    const gone = this.closed;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // SIGTERM: PgBouncer 1.18 closes every connection and exits at once (SIGINT would wait for clients).
      this.child.kill('SIGTERM');
      await within(gone, START_STOP_LIMIT_MS, () => 'PgBouncer did not exit').catch(async () => {
        this.child.kill('SIGKILL');
        await gone;
      });
    }
    await gone;
  }

  /** Synchronous kill at process exit. */
  killNow(): void {
    running.delete(this);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** The userlist as rendered (for tests that inspect it). */
  readUserlist(): string {
    return readFileSync(this.authFile, 'utf8');
  }
}

/**
 * A PgBouncer for the enclosing describe block: started in beforeAll from the options `options()`
 * returns (called then, so it can use a cluster started by an earlier beforeAll), stopped in
 * afterAll even when tests failed. Returns a getter.
 */
export function usePgbouncer(options: () => PgbouncerOptions | Promise<PgbouncerOptions>): () => PgbouncerProcess {
  let bouncer: PgbouncerProcess | undefined;
  beforeAll(async () => {
    bouncer = await PgbouncerProcess.start(await options());
  });
  afterAll(async () => {
    await bouncer?.stop();
  });
  return () => {
    if (!bouncer) throw new Error('usePgbouncer: PgBouncer did not start (see the beforeAll error)');
    return bouncer;
  };
}
