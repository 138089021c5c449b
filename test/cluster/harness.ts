/**
 * The cluster under test: real hub node processes (spawned as `switchboard serve` with
 * the cluster environment of src/cluster/env.ts), one redis-server with AOF, a TCP proxy
 * in front of each node for daemon traffic, so a test can cut daemons' sockets abruptly
 * as a network would, and a TCP proxy between each node and Redis (the node's
 * REDIS_URL points at it), so a test can black-hole or cut one node's link to Redis.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { clusterNodeEnv, REDIS_SERVER_ARGS } from '../../src/cluster/env.js';
import { TcpProxy } from '../helpers/proxy.js';
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
  /** Stopped with SIGSTOP and not yet continued. */
  paused = false;

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

  /** Running and not paused: what a load balancer's health check would let through. */
  get serving(): boolean {
    return this.running && !this.paused;
  }

  async start(): Promise<void> {
    this.paused = false;
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

  /** SIGSTOP: the process freezes (a GC pause, a stalled VM); its sockets stay open. */
  pause(): void {
    if (this.running && this.#child?.kill('SIGSTOP')) this.paused = true;
  }

  /** SIGCONT: it carries on where it stopped, unaware that time passed. */
  resume(): void {
    if (this.paused && this.running) this.#child?.kill('SIGCONT');
    this.paused = false;
  }

  /** GET /readyz answers 200 (store reachable, subscriber connected, not draining). */
  async ready(timeoutMs = 1_000): Promise<boolean> {
    if (!this.serving) return false;
    try {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** SIGTERM: the graceful path. Resolves with the exit code. */
  async term(): Promise<number | null> {
    this.#child?.kill('SIGTERM');
    return this.#exited;
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
    /** `redisLinks[i]` carries every Redis connection of `nodes[i]`. */
    readonly redisLinks: TcpProxy[],
    readonly secret: string,
  ) {}

  static async start(opts: ClusterOptions & { secret: string }): Promise<ChaosCluster> {
    // `appendfsync always` (after the cluster's own settings, so it wins): every write
    // acknowledged to a node is on disk, so Redis may be SIGKILLed and restarted from
    // its AOF without losing an accepted request. With `everysec` a crash may lose up
    // to about two seconds of writes (docs/OPERATIONS.md).
    const redis = await RedisServer.start({
      appendonly: true,
      extraArgs: [...REDIS_SERVER_ARGS, '--appendfsync', 'always'],
    });
    // The links follow Redis's port, which a restart keeps.
    const redisLinks = Array.from({ length: opts.nodes }, () => new TcpProxy(() => redis.port));
    await Promise.all(redisLinks.map((l) => l.start()));
    const nodes: NodeProcess[] = [];
    for (let i = 1; i <= opts.nodes; i++) {
      const redisUrl = `redis://127.0.0.1:${(redisLinks[i - 1] as TcpProxy).port}`;
      const env = (port: number) => ({
        ...clusterNodeEnv(i, { port, host: '127.0.0.1', redisUrl, secret: opts.secret }),
        ...opts.env,
      });
      nodes.push(new NodeProcess(i, env));
    }
    await Promise.all(nodes.map((n) => n.start()));
    const proxies = nodes.map((n) => new TcpProxy(() => n.port));
    await Promise.all(proxies.map((p) => p.start()));
    return new ChaosCluster(redis, nodes, proxies, redisLinks, opts.secret);
  }

  /** A node that is up and not paused, at random (for clients, as a load balancer would). */
  liveNode(): NodeProcess {
    const live = this.nodes.filter((n) => n.serving);
    return (live[Math.floor(Math.random() * live.length)] ?? this.nodes[0]) as NodeProcess;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) n.resume();
    await Promise.all([...this.proxies, ...this.redisLinks].map((p) => p.close()));
    await Promise.all(this.nodes.map((n) => n.kill()));
    await this.redis.close();
  }
}
