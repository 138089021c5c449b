/**
 * The cluster under test: real hub node processes (spawned as `switchboard serve` with
 * the cluster environment of src/cluster/env.ts), one redis-server with AOF, and a TCP
 * proxy in front of each node for daemon traffic, so a test can cut daemons' sockets
 * abruptly as a network would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { clusterNodeEnv, REDIS_SERVER_ARGS } from '../../src/cluster/env.js';
import { freePort, RedisServer } from '../helpers/redis.js';

const NODE_START_TIMEOUT_MS = 20_000;

/**
 * One hub node process. Each start takes a fresh port: a port freed by a killed node
 * could be taken meanwhile by a server of another test file running in parallel, and
 * requests meant for this node would reach that one. The node's proxy follows it.
 */
export class NodeProcess {
  #child: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);
  port = 0;

  constructor(
    readonly index: number,
    private readonly env: (port: number) => Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: { ...process.env, ...this.env(this.port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + NODE_START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`hub-${this.index} exited at start: ${stderr}`);
      try {
        const ready = await fetch(`${this.url}/readyz`);
        const metrics = ready.ok ? await (await fetch(`${this.url}/metrics`)).text() : '';
        // Ready, and it is this node answering (not another process on the port).
        if (ready.ok && metrics.includes(`node="hub-${this.index}"`) && this.running) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`hub-${this.index} not ready within ${NODE_START_TIMEOUT_MS} ms: ${stderr}`);
  }

  /** SIGKILL: a crash. */
  async kill(): Promise<void> {
    this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM: the graceful path. Resolves with the exit code. */
  async term(): Promise<number | null> {
    this.#child?.kill('SIGTERM');
    return this.#exited;
  }
}

/** A TCP proxy that can drop every connection through it at once. */
export class TcpProxy {
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | null = null;
  port = 0;

  /** `targetPort` is read at each connection: the node may have moved. */
  constructor(private readonly targetPort: () => number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#server = net.createServer((inbound) => {
      const outbound = net.connect(this.targetPort(), '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  /** Cuts every connection (RST), as a network failure would. Returns how many. */
  dropAll(): number {
    const n = this.#sockets.size;
    for (const s of this.#sockets) s.resetAndDestroy();
    return n;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    );
  }
}

export interface ClusterOptions {
  nodes: number;
  /** Overrides of the cluster environment (timings for a fast test). */
  env?: Record<string, string>;
}

export class ChaosCluster {
  private constructor(
    readonly redis: RedisServer,
    readonly nodes: NodeProcess[],
    readonly proxies: TcpProxy[],
    readonly secret: string,
  ) {}

  static async start(opts: ClusterOptions & { secret: string }): Promise<ChaosCluster> {
    const redis = await RedisServer.start({ appendonly: true, extraArgs: [...REDIS_SERVER_ARGS] });
    const nodes: NodeProcess[] = [];
    for (let i = 1; i <= opts.nodes; i++) {
      const env = (port: number) => ({
        ...clusterNodeEnv(i, { port, host: '127.0.0.1', redisUrl: redis.url, secret: opts.secret }),
        ...opts.env,
      });
      nodes.push(new NodeProcess(i, env));
    }
    await Promise.all(nodes.map((n) => n.start()));
    const proxies = nodes.map((n) => new TcpProxy(() => n.port));
    await Promise.all(proxies.map((p) => p.start()));
    return new ChaosCluster(redis, nodes, proxies, opts.secret);
  }

  /** A node that is up, at random (for clients). */
  liveNode(): NodeProcess {
    const live = this.nodes.filter((n) => n.running);
    return (live[Math.floor(Math.random() * live.length)] ?? this.nodes[0]) as NodeProcess;
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close()));
    await Promise.all(this.nodes.map((n) => n.kill()));
    await this.redis.close();
  }
}
