/**
 * Test helpers for whole nodes: start nodes in this process on ephemeral ports (each
 * with its own Redis connections, so they behave as separate processes would), mint
 * tokens, call the HTTP API, and drive a daemon or client websocket frame by frame.
 */
import { WebSocket } from 'ws';
import { Auth } from '../../src/auth.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type NodeOptions, type SwitchboardNode, startNode } from '../../src/node.js';
import { StoreError } from '../../stores/errors.js';
import type { RequestStore } from '../../stores/store.js';
import { RedisServer } from './redis.js';

export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
export const auth = new Auth(SECRET);

/**
 * The two stores a node can run on, for `describe.each`: the embedded one, and Redis on
 * a private redis-server started for the suite.
 */
export const STORE_BACKENDS: [
  string,
  () => Promise<{ env: Record<string, string>; stop(): Promise<void> }>,
][] = [
  ['memory', async () => ({ env: {}, stop: async () => {} })],
  [
    'redis',
    async () => {
      const server = await RedisServer.start();
      return { env: { REDIS_URL: server.url }, stop: () => server.close() };
    },
  ],
];

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    HUB_SECRET: SECRET,
    LOG_LEVEL: 'silent',
    HEARTBEAT_INTERVAL_MS: '1000',
    SWEEP_INTERVAL_MS: '200',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
}

export async function startTestNode(
  env: Record<string, string> = {},
  extra: Omit<NodeOptions, 'config'> = {},
): Promise<SwitchboardNode> {
  return startNode({ config: testConfig(env), ...extra });
}

export function clientToken(workspace = 'acme', sub = 'client-1'): Promise<string> {
  return auth.sign({ sub, ws: workspace, role: 'client' }, '1h');
}

export function daemonToken(runtime = 'laptop', workspace = 'acme', sub = `daemon-${runtime}`) {
  return auth.sign({ sub, ws: workspace, role: 'daemon', rt: runtime }, '1h');
}

/** Nodes on one Redis, each with its own connections, named `node-a`, `node-b`, ... */
export function startNodesOn(redisUrl: string, count: number): Promise<SwitchboardNode[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      startTestNode({ REDIS_URL: redisUrl, NODE_ID: `node-${String.fromCharCode(97 + i)}` }),
    ),
  );
}

/** fetch against a node, JSON in and out. */
export async function api(
  node: { url: string },
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${node.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, html)
  }
  return { status: res.status, body: parsed };
}

type Frame = { type: string; [k: string]: any };

/** A websocket that records every frame and lets a test await the next one it wants. */
/** Sum of a Prometheus counter on a node, over the series whose labels contain `label`. */
export async function metric(n: { url: string }, name: string, label = ''): Promise<number> {
  const { body } = await api(n, 'GET', '/metrics');
  const series = String(body)
    .split('\n')
    .filter((l) => l.match(/^[\w]+/)?.[0] === name && l.includes(label));
  return series.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

export class FrameSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #cursor = 0;
  #waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const w of this.#waiters.splice(0)) w();
      });
    });
    ws.on('error', () => {});
  }

  static open(url: string, path: string, token?: string, query = ''): Promise<FrameSocket> {
    const wsUrl = `${url.replace(/^http/, 'ws')}${path}${query}`;
    const ws = new WebSocket(wsUrl, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new FrameSocket(ws)));
      ws.once('unexpected-response', (_req, res) =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
            status: res.statusCode,
          }),
        ),
      );
      ws.once('error', reject);
    });
  }

  static daemon(node: { url: string }, token: string): Promise<FrameSocket> {
    return FrameSocket.open(node.url, '/v1/daemon/ws', token);
  }

  static client(node: { url: string }, token: string): Promise<FrameSocket> {
    return FrameSocket.open(node.url, '/v1/ws', token);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (after the last one taken) matching `pred`; earlier ones are skipped. */
  async next(pred: string | ((f: Frame) => boolean), timeoutMs = 10_000): Promise<Frame> {
    const match = typeof pred === 'string' ? (f: Frame) => f.type === pred : pred;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.frames.length) {
        const f = this.frames[this.#cursor++] as Frame;
        if (match(f)) return f;
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting');
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** All frames of a type received so far. */
  all(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** A daemon socket that said hello and declared its capacity. */
export async function readyDaemon(node: { url: string }, token: string, capacity = 1) {
  const d = await FrameSocket.daemon(node, token);
  await d.next('hello');
  d.send({ type: 'ready', capacity });
  return d;
}

/**
 * Records exceptions nobody caught while `work` runs. In production nothing catches
 * them: an uncaught exception in a socket handler kills the node process.
 */
export async function withUncaught<T>(
  work: () => Promise<T>,
): Promise<{ value: T; uncaught: unknown[] }> {
  const uncaught: unknown[] = [];
  const own = !process.hasUncaughtExceptionCaptureCallback();
  if (own) process.setUncaughtExceptionCaptureCallback((err) => uncaught.push(err));
  try {
    return { value: await work(), uncaught };
  } finally {
    if (own) process.setUncaughtExceptionCaptureCallback(null);
  }
}

/**
 * Makes the next `n` calls of the store's `method` fail with store_unavailable, then
 * passes them through; returns how many calls were made to it since (failed or not).
 */
export function failStoreCalls(
  store: RequestStore,
  method: 'get' | 'readOutput' | 'list',
  n: number,
): () => number {
  const real = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
  let calls = 0;
  (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
    if (calls++ < n) throw new StoreError('store_unavailable', 'injected');
    return real(...args);
  };
  return () => calls;
}
