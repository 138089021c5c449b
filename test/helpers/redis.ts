/**
 * Test helpers that run real, private `redis-server` processes (never the system one on 6379).
 *
 * Every process started here is registered in a module-level set and SIGKILLed on
 * `process.on('exit')` and on SIGTERM/SIGINT/SIGHUP (vitest stops fork workers with SIGTERM),
 * so servers never outlive the test run even if a test forgets `close()`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const CLUSTER_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
const OUTPUT_LIMIT = 16_384;

const REDIS_SERVER_MISSING =
  'redis-server not found on PATH: install Redis (apt-get install -y redis-server) to run the Redis tests';
const REDIS_CLI_MISSING =
  'redis-cli not found on PATH: install Redis (apt-get install -y redis-server) to run the Redis tests';

// ---------------------------------------------------------------------------
// Process bookkeeping: nothing we start may outlive this process.
// ---------------------------------------------------------------------------

const liveProcesses = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function killAllSync(): void {
  for (const child of liveProcesses) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveProcesses.clear();
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
  // Vitest stops its fork workers with SIGTERM, which skips 'exit' handlers: clean up on the
  // usual termination signals too, then re-raise the signal if nobody else handles it, so the
  // default behaviour (terminate) is kept.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAllSync();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (listen on port 0, read the port, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: could not read the listening port'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** A short random key prefix for per-test isolation, e.g. `tk3j9x2a1q`. */
export function uniquePrefix(): string {
  return `t${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36).slice(-3)}`;
}

/**
 * Probe a port over a raw socket with a pipelined `PING` + `INFO server`. The server is ready
 * when PING answers `+PONG` (not `-LOADING ...`), and the `process_id` tells us it is really
 * our process (and not some other server that won a race for the same port).
 */
function probe(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ pong: boolean; pid?: number; reply: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    let done = false;
    const finish = (reply: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const pid = /^process_id:(\d+)\r$/m.exec(buf)?.[1];
      resolve({
        pong: buf.startsWith('+PONG\r\n'),
        pid: pid === undefined ? undefined : Number(pid),
        reply,
      });
    };
    const timer = setTimeout(
      () => finish(`timeout: ${JSON.stringify(buf.slice(0, 200))}`),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('PING\r\nINFO server\r\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (/^process_id:\d+\r$/m.test(buf)) finish(buf.slice(0, buf.indexOf('\r\n')));
    });
    sock.on('error', (err) => finish(`error: ${err.message}`));
    sock.on('close', () => finish(`closed: ${JSON.stringify(buf.slice(0, 200))}`));
  });
}

function unrefStreams(child: ChildProcess): void {
  // Do not let the server (or its pipes) keep the test worker's event loop alive.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as net.Socket | null)?.unref?.();
  }
}

// ---------------------------------------------------------------------------
// RedisServer
// ---------------------------------------------------------------------------

export interface RedisServerOptions {
  /** Run with `--appendonly yes` (default false). */
  appendonly?: boolean;
  /** Extra `redis-server` arguments, appended last (so they override the defaults). */
  extraArgs?: string[];
  /** Use this port instead of a free one (no retry on a port collision then). */
  port?: number;
  /** Start in cluster mode: `--cluster-enabled yes`, own nodes.conf, a free cluster bus port. */
  cluster?: boolean;
}

interface Launch {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

/** A private `redis-server` process on 127.0.0.1, with its own temp dir. */
export class RedisServer {
  readonly host = HOST;
  private launch: Launch | undefined;
  private readonly clients = new Set<Redis>();
  private closed = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get isRunning(): boolean {
    const child = this.launch?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** The process id of the running server, if any. */
  get pid(): number | undefined {
    return this.isRunning ? this.launch?.child.pid : undefined;
  }

  /** Recent stdout+stderr of the current (or last) server process. */
  get output(): string {
    return this.launch?.output() ?? '';
  }

  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    if (!findOnPath('redis-server')) throw new Error(REDIS_SERVER_MISSING);
    installExitHook();
    const attempts = opts.port === undefined ? 5 : 1;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const port = opts.port ?? (await freePort());
      const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-redis-${port}-`));
      liveDirs.add(dir);
      const args = [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        opts.appendonly ? 'yes' : 'no',
        '--appendfsync',
        'everysec',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ];
      if (opts.cluster) {
        args.push(
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
          '--cluster-port',
          String(await freePort()),
        );
      }
      args.push(...(opts.extraArgs ?? []));
      const server = new RedisServer(port, dir, args);
      try {
        await server.spawnAndWait();
        return server;
      } catch (err) {
        lastError = err;
        await server.close();
        // Another process grabbed the port between freePort() and bind: try again.
        if (!/Address already in use/i.test(String(err))) throw err;
      }
    }
    throw lastError;
  }

  private async spawnAndWait(): Promise<void> {
    if (this.closed) throw new Error('RedisServer: already closed');
    if (this.isRunning) throw new Error(`RedisServer: already running on port ${this.port}`);

    let output = '';
    const append = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
    };
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        liveProcesses.delete(child);
        resolve();
      });
      child.once('error', (err) => {
        // ENOENT etc.: 'exit' may never fire.
        spawnError = err;
        liveProcesses.delete(child);
        resolve();
      });
    });
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    liveProcesses.add(child);
    unrefStreams(child);
    this.launch = { child, exited, output: () => output };

    const describe = () =>
      `redis-server on port ${this.port} (dir ${this.dir}, args: ${this.args.join(' ')})\n` +
      `--- output ---\n${output.trim() || '(none)'}`;

    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = '';
    let exitedEarly = false;
    void exited.then(() => {
      exitedEarly = true;
    });
    while (Date.now() < deadline) {
      if (exitedEarly) {
        if (spawnError && (spawnError as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new Error(REDIS_SERVER_MISSING);
        }
        throw new Error(
          `${spawnError ? `spawn failed: ${spawnError.message}` : `exited early (code ${child.exitCode}, signal ${child.signalCode})`}: ${describe()}`,
        );
      }
      const result = await probe(HOST, this.port, 1000);
      last = result.reply;
      if (result.pong && result.pid === child.pid && this.isRunning) return;
      if (result.pid !== undefined && result.pid !== child.pid) {
        last = `port ${this.port} is answered by another redis-server (pid ${result.pid})`;
      }
      await Promise.race([sleep(POLL_MS), exited]);
    }
    await this.killProcess();
    throw new Error(
      `timed out after ${START_TIMEOUT_MS} ms waiting for ${describe()}\nlast probe: ${last}`,
    );
  }

  /** A new ioredis client to this server, disconnected automatically on stop/kill/close. */
  client(options: RedisOptions = {}): Redis {
    const client = new Redis({ host: this.host, port: this.port, ...options });
    client.on('error', () => {
      // Expected while the server is killed/restarted; never crash the test process.
    });
    this.clients.add(client);
    client.once('end', () => this.clients.delete(client));
    return client;
  }

  private disconnectClients(): void {
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
  }

  private async killProcess(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const launch = this.launch;
    if (!launch || !this.isRunning) return;
    launch.child.kill(signal);
    if (signal === 'SIGKILL') {
      await launch.exited;
      return;
    }
    const timedOut = await Promise.race([
      launch.exited.then(() => false),
      sleep(STOP_TIMEOUT_MS).then(() => true),
    ]);
    if (timedOut) {
      launch.child.kill('SIGKILL');
      await launch.exited;
    }
  }

  /** SIGKILL the server (no AOF flush) and wait for it to exit. */
  async kill(): Promise<void> {
    this.disconnectClients();
    await this.killProcess('SIGKILL');
  }

  /** SIGTERM the server (graceful shutdown) and wait for it to exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.disconnectClients();
    await this.killProcess('SIGTERM');
  }

  /** Start again on the same port and dir (AOF data survives when appendonly). Stops it first if running. */
  async restart(): Promise<void> {
    if (this.isRunning) await this.stop();
    await this.spawnAndWait();
  }

  /** Kill the process and remove the temp dir. Idempotent. */
  async close(): Promise<void> {
    this.disconnectClients();
    await this.killProcess('SIGKILL');
    if (this.closed) return;
    this.closed = true;
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

// ---------------------------------------------------------------------------
// RedisCluster
// ---------------------------------------------------------------------------

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed: ${err.message}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
          ),
        );
      } else {
        resolve(stdout);
      }
    });
    liveProcesses.add(child);
    child.once('exit', () => liveProcesses.delete(child));
  });
}

/** A private Redis Cluster of `n` masters (no replicas) on 127.0.0.1. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((node) => ({ host: node.host, port: node.port }));
  }

  static async start(n = 3): Promise<RedisCluster> {
    if (!findOnPath('redis-cli')) throw new Error(REDIS_CLI_MISSING);
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => RedisServer.start({ cluster: true })),
    );
    const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const cluster = new RedisCluster(nodes);
    try {
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((node) => `${node.host}:${node.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        CLUSTER_TIMEOUT_MS,
      );
      await cluster.waitUntilOk();
      return cluster;
    } catch (err) {
      await cluster.close();
      throw err;
    }
  }

  /** Poll `CLUSTER INFO` on every node until each reports `cluster_state:ok`. */
  async waitUntilOk(timeoutMs = CLUSTER_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const clients = this.nodes.map((node) =>
      node.client({ maxRetriesPerRequest: 1, enableReadyCheck: false }),
    );
    let last: string[] = [];
    try {
      while (Date.now() < deadline) {
        last = await Promise.all(
          clients.map((c) =>
            c.cluster('INFO').then(
              (info) => String(info),
              (err: Error) => `error: ${err.message}`,
            ),
          ),
        );
        if (last.every((info) => /^cluster_state:ok\r?$/m.test(info))) return;
        await sleep(100);
      }
    } finally {
      for (const c of clients) c.disconnect();
    }
    const states = last.map((info, i) => {
      const state = /^cluster_state:(\S+)/m.exec(info)?.[1] ?? info;
      return `${this.nodes[i]?.port}: ${state}`;
    });
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for cluster_state:ok (${states.join(', ')})`,
    );
  }

  /** Kill every node and remove their temp dirs. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
  }
}
