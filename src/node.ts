/**
 * Assembles one node: the store (Redis or embedded), the relay, the hub, the HTTP app
 * and both websocket endpoints on one port. `startNode` is what `switchboard serve`
 * runs and what the tests start, several at a time, on ephemeral ports.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { Hub } from '../hub/hub.js';
import { MemoryRelay, RedisRelay, type Relay } from '../hub/relay.js';
import { MemoryStore } from '../stores/memory/store.js';
import { openRedis, type RedisTarget } from '../stores/redis/connection.js';
import { RedisStore } from '../stores/redis/store.js';
import type { RequestStore } from '../stores/store.js';
import { Auth, bearerToken, type Principal, singleAuthorization } from './auth.js';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { SECURITY_HEADERS } from './http/edge.js';
import { errorBody, HttpError, toHttpError } from './http/errors.js';
import { rawHeaderValues } from './http/raw-headers.js';
import { createLogger } from './logger.js';
import { startTracing } from './tracing.js';

export interface NodeOptions {
  config: Config;
  logger?: Logger;
  /** Embedded mode only: share one MemoryStore between in-process nodes (tests). */
  memoryStore?: MemoryStore;
  /** Wraps the relay (tests use it to drop hints). */
  wrapRelay?: (relay: Relay) => Relay;
  /**
   * Dev mode only: a client token handed to the dashboard page, so it works with no
   * setup. Anyone who can load `/` gets it: never set it outside dev mode.
   */
  devClientToken?: string;
}

export interface SwitchboardNode {
  readonly url: string;
  readonly port: number;
  readonly hub: Hub;
  readonly store: RequestStore;
  readonly auth: Auth;
  readonly config: Config;
  /** Graceful shutdown: drain, then close within SHUTDOWN_GRACE_MS. */
  close(): Promise<void>;
  /** Abrupt stop: sockets cut, nothing drained (a crash, for tests). */
  kill(): Promise<void>;
}

export async function startNode(options: NodeOptions): Promise<SwitchboardNode> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel, config.nodeId);
  const onRedisError = (err: Error) => logger.warn({ err: err.message }, 'redis connection error');
  const { store, relay: baseRelay } = await openStore(options, onRedisError);
  const stopTracing = await startTracing(config, logger);
  const relay = options.wrapRelay ? options.wrapRelay(baseRelay) : baseRelay;
  const hub = new Hub({
    store,
    relay,
    logger,
    settings: {
      nodeId: config.nodeId,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      leaseMs: config.leaseMs,
      sweepIntervalMs: config.sweepIntervalMs,
      shutdownGraceMs: config.shutdownGraceMs,
      maxPayloadBytes: config.maxPayloadBytes,
      maxSocketBufferBytes: config.maxSocketBufferBytes,
      readyTimeoutMs: config.readyTimeoutMs,
      storeLostDrainMs: config.storeLostDrainMs,
      maxBadFrames: config.maxBadFrames,
      maxSubscribedRuntimes: config.maxSubscribedRuntimes,
      maxSubscribedIds: config.maxSubscribedIds,
    },
  });
  const auth = new Auth(config.hubSecret);
  const app = createApp({
    hub,
    auth,
    config,
    logger,
    devClientToken: options.devClientToken,
    ready: () => hub.ready(),
    metricsText: async () => ({
      contentType: hub.metrics.registry.contentType,
      body: await hub.metrics.registry.metrics(),
    }),
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  const sockets = new WebSocketServer({ noServer: true, maxPayload: config.maxPayloadBytes });
  server.on('upgrade', (req, socket, head) => {
    void upgrade(req, socket, head).catch((err) => {
      logger.warn({ err }, 'upgrade failed');
      socket.destroy();
    });
  });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Node drops its own error listener from an upgrading socket: without this one, a
    // client resetting the connection while the token is checked crashes the process.
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route =
      url.pathname === '/v1/daemon/ws' ? 'daemon' : url.pathname === '/v1/ws' ? 'client' : null;
    if (!route) return refuse(socket, new HttpError('not_found', 'no websocket endpoint here'));
    if (hub.draining) return refuse(socket, new HttpError('draining', 'node is shutting down'));
    let principal: Principal;
    try {
      // `req.headers` keeps only the first of several Authorization headers: count raw.
      const header = singleAuthorization(rawHeaderValues(req.rawHeaders, 'authorization'));
      principal = await auth.verify(
        bearerToken(header, url.searchParams.get('access_token')) ?? '',
      );
    } catch (err) {
      return refuse(socket, toHttpError(err));
    }
    // Checked again: draining may have begun while the token was being verified.
    if (hub.draining) return refuse(socket, new HttpError('draining', 'node is shutting down'));
    if (principal.role !== route) {
      const message = `a ${principal.role} token cannot open this socket`;
      return refuse(socket, new HttpError('forbidden', message));
    }
    if (route === 'daemon' && hub.storeLost) {
      const message = 'this node cannot reach its store: connect to another node';
      return refuse(socket, new HttpError('store_unavailable', message));
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      if (route === 'daemon') {
        hub.attachDaemon(ws, {
          workspace: principal.workspace,
          runtime: principal.runtime as string,
          sub: principal.sub,
        });
      } else {
        hub.attachClient(ws, { workspace: principal.workspace });
      }
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  hub.start();
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, store: store.kind }, 'switchboard node listening');

  let closing: Promise<void> | null = null;
  const release = async () => {
    await hub.close();
    await relay.close();
    await store.close();
    await stopTracing();
  };
  return {
    url,
    port,
    hub,
    store,
    auth,
    config,
    close() {
      closing ??= (async () => {
        // Draining first, still listening: /readyz answers 503 so load balancers move
        // away, /v1 answers 503 draining, and new websocket upgrades are refused. The
        // whole shutdown fits in one SHUTDOWN_GRACE_MS: HTTP gets what the drain left.
        const deadline = Date.now() + config.shutdownGraceMs;
        await hub.drain();
        server.close();
        for (const ws of sockets.clients) ws.close(1001, 'node shutting down');
        server.closeIdleConnections();
        const left = Math.max(0, deadline - Date.now());
        const grace = setTimeout(() => server.closeAllConnections(), left);
        await new Promise<void>((resolve) => server.close(() => resolve()));
        clearTimeout(grace);
        await release();
        logger.info('switchboard node stopped');
      })();
      return closing;
    },
    kill() {
      closing ??= (async () => {
        for (const ws of sockets.clients) ws.terminate();
        server.closeAllConnections();
        server.close();
        await release();
      })();
      return closing;
    },
  };
}

async function openStore(
  options: NodeOptions,
  onError: (err: Error) => void,
): Promise<{ store: RequestStore; relay: Relay }> {
  const { config } = options;
  const settings = {
    prefix: config.prefix,
    pendingTimeoutMs: config.pendingTimeoutMs,
    leaseMs: config.leaseMs,
    retentionMs: config.retentionMs,
    maxOutputChunks: config.maxOutputChunks,
    maxOutputBytes: config.maxOutputBytes,
    maxPendingPerRuntime: config.maxPendingPerRuntime,
    createRate: config.createRate,
  };
  if (!config.redisUrl) {
    const store = options.memoryStore ?? new MemoryStore(settings);
    return { store, relay: new MemoryRelay(store.bus) };
  }
  const target: RedisTarget = config.redisCluster
    ? clusterTarget(config.redisUrl)
    : { url: config.redisUrl };
  const store = await RedisStore.connect(
    { ...target, name: `${config.nodeId}:cmd` },
    settings,
    onError,
  );
  const sub = await openRedis({ ...target, name: `${config.nodeId}:sub` }, onError, {
    enableOfflineQueue: true,
    autoResubscribe: false,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  });
  return { store, relay: new RedisRelay(sub, store.redis, onError) };
}

/** REDIS_CLUSTER=true: startup nodes from the URL list; credentials and TLS from the first. */
function clusterTarget(urls: string): RedisTarget {
  const parsed = urls.split(',').map((u) => new URL(u.trim()));
  const first = parsed[0] as URL;
  return {
    cluster: parsed.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
    username: decodeURIComponent(first.username) || undefined,
    password: decodeURIComponent(first.password) || undefined,
    tls: first.protocol === 'rediss:',
  };
}

/** An upgrade refused before any socket: a plain HTTP answer, then the connection ends. */
function refuse(socket: Duplex, err: HttpError): void {
  const body = JSON.stringify(errorBody(err.code, err.message));
  const headers = [
    `HTTP/1.1 ${err.status} ${err.code}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(SECURITY_HEADERS).map(([name, value]) => `${name}: ${value}`),
    'Cache-Control: no-store',
    'Connection: close',
  ];
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
