/**
 * A throwaway redis-server for tests that need a real Redis (the lifecycle queue and lock).
 *
 * The server is a child process of the test on a free port of 127.0.0.1, with no persistence,
 * in its own temporary directory; it is ready when it says so on stdout ("Ready to accept
 * connections"), and is stopped (SIGTERM, then SIGKILL) in afterAll, or at process exit if a
 * test crashed before that.
 *
 *   const redis = useRedis();               // beforeAll: start, afterAll: stop
 *   new IORedis(redis().port)               // or redis().url
 *
 * Set TENANCY_REDIS_SERVER to use another binary (default: redis-server on the PATH, else /usr/bin/redis-server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, KEEP_TEST_DIRS } from './postgres';

export const REDIS_SERVER = process.env.TENANCY_REDIS_SERVER ?? (existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server');
const START_TIMEOUT_MS = 60_000;

const running = new Set<RedisServer>();
let exitHookInstalled = false;

/** A redis-server child on `port` with its data in `dir`; `ready` resolves when it accepts connections. */
function spawnRedis(port: number, dir: string): { child: { process: ChildProcess; ready: Promise<void> }; output: () => string } {
  const child = spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--protected-mode', 'yes', '--loglevel', 'notice', '--databases', '1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += String(chunk);
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${REDIS_SERVER}: ${e.message} (install redis-server, or set TENANCY_REDIS_SERVER)`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
  ready.catch(() => undefined); // awaited by the caller; an exit after it was ready is no error
  return { child: { process: child, ready }, output: () => output };
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

export class RedisServer {
  private stopped = false;
  private exited: Promise<void>;

  private constructor(readonly port: number, readonly dir: string, private child: ChildProcess, readonly output: () => string) {
    this.exited = exitOf(child);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server on a free port; retried on another port when the chosen one was taken meanwhile. */
  static async start(): Promise<RedisServer> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'tenancy-redis-'));
      const { child, output } = spawnRedis(port, dir);
      try {
        await child.ready;
      } catch (e) {
        child.process.kill('SIGKILL');
        if (!KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
        if (attempt < 3 && /Address already in use/i.test(output())) continue;
        throw e;
      }
      const server = new RedisServer(port, dir, child.process, output);
      running.add(server);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', () => {
          for (const s of running) s.stopNowSync();
        });
      }
      return server;
    }
  }

  /**
   * An outage that keeps the data, as a Redis with persistence has: SHUTDOWN SAVE (the data written
   * to its directory, the process gone, every client disconnected), then the server started again
   * on the same port from that data. Resolves once it accepts connections again.
   */
  async restart(): Promise<void> {
    await this.shutdown();
    await this.startAgain();
  }

  /** The first half of {@link restart}: SHUTDOWN SAVE, resolved once the process is gone (clients get connection refused until startAgain). */
  async shutdown(): Promise<void> {
    if (this.stopped) throw new Error('RedisServer.shutdown: the server was stopped');
    await new Promise<void>((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1', () => socket.write('SHUTDOWN SAVE\r\n'));
      // A reply means it refused (an OK shutdown closes the connection without one).
      socket.on('data', (reply) => {
        socket.destroy();
        reject(new Error(`redis-server refused SHUTDOWN SAVE: ${String(reply).trim()}`));
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    await this.exited;
  }

  /** The second half of {@link restart}: the server started again on the same port from its saved data. */
  async startAgain(): Promise<void> {
    if (this.stopped) throw new Error('RedisServer.startAgain: the server was stopped');
    const { child } = spawnRedis(this.port, this.dir);
    this.child = child.process;
    this.exited = exitOf(child.process);
    await child.ready;
  }

  /** SIGTERM and wait for the exit (SIGKILL after 10 s); removes the directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    running.delete(this);
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
    if (!KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs (connections open, no replies) and then answers again. */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  thaw(): void {
    this.child.kill('SIGCONT');
  }

  stopNowSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    running.delete(this);
    try {
      this.child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
    if (!KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A redis-server for the enclosing describe block (or file): started in beforeAll, stopped in afterAll. */
export function useRedis(): () => RedisServer {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('useRedis: the server did not start (see the beforeAll error)');
    return server;
  };
}
