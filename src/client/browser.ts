/**
 * The browser client: send requests to runtimes, await their results and watch them
 * change, from a plain `<script type="module">` (a node serves it compiled at
 * `GET /client/browser.js`) or from Node (pass `ws`'s WebSocket).
 *
 * One websocket per client (`/v1/ws`) carries every subscription, opened on first use.
 * It reconnects with exponential backoff and full jitter and, once reconnected, sends
 * every subscription again: the fresh snapshot covers whatever changed while it was
 * down. `result()` listens on that socket and falls back to long-polling
 * (`GET .../requests/:id?wait_ms=`) whenever the socket cannot be opened or drops.
 *
 * `output()` streams a request's output chunks on the same socket (resuming after the
 * last offset it has on every reconnect) and reads them over HTTP when it cannot.
 *
 * The parts: browser-http.ts (calls and SwitchboardError), browser-socket.ts (the socket,
 * its modes and subscriptions), browser-result.ts (waiting for a result),
 * browser-output.ts (following output). This file is the entry the bundle is built
 * from, and the public API.
 *
 * It imports the protocol layer's plain constants (not its schemas), so the bundle a node
 * serves carries no schema library.
 */
import type { CreateRequestBody, OutputChunk, Request, RuntimeInfo } from '../../protocol/index.js';
import {
  baseUrl,
  closedError,
  DEFAULT_RETRY_POLICY,
  hubCaller,
  type SwitchboardError,
} from './browser-http.js';
import { followOutput, type OutputOptions, outputIterator } from './browser-output.js';
import { awaitResult } from './browser-result.js';
import {
  ALL_RUNTIMES,
  type ClientEvent,
  type Listener,
  SharedSocket,
  type WebSocketConstructor,
} from './browser-socket.js';
import type { SocketMode } from './browser-socket-modes.js';
import { activeTraceHeaders } from './browser-trace.js';

export { SwitchboardError } from './browser-http.js';
export type { ClientEvent, WebSocketConstructor, WebSocketLike } from './browser-socket.js';
export type { SocketMode } from './browser-socket-modes.js';
export type { OutputChunk, OutputOptions, Request, RuntimeInfo };

export interface ClientOptions {
  /** The hub's base URL, e.g. `https://hub.example.com`; '' means this page's origin. */
  url: string;
  /** A client token (`switchboard token --role client --workspace W`). */
  token: string;
  /** Default `globalThis.WebSocket`; without one, results are long-polled. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff of the socket. Default 250 ms doubling to 10 s, with full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Calls answered 429 `limit_exceeded` (a quota) are tried again after the hub's
   * `Retry-After` plus up to half of it again (jitter): `retries` times (default 3),
   * unless it asks for more than `maxWaitMs` (default 30000). Then the call rejects with
   * the SwitchboardError, whose `retryAfterMs` says when to come back.
   */
  rateLimit?: { retries?: number; maxWaitMs?: number };
}

export type SendOptions = Omit<CreateRequestBody, 'kind' | 'payload'> & {
  /**
   * Same key and same body while the request is kept (RETENTION_MS after it ends, at
   * most 24 h): the same request comes back, not a new one.
   */
  idempotencyKey?: string;
};

export interface Client {
  /** Creates a request (201), or returns the one an `idempotencyKey` already made. */
  send(runtime: string, kind: string, payload?: unknown, options?: SendOptions): Promise<Request>;
  /**
   * Resolves with the request once it is terminal (completed, failed, timeout,
   * cancelled: check `status`). Rejects with a SwitchboardError (`not_found`, `timeout`
   * after `timeoutMs`, `closed`). Without `timeoutMs` it waits until the hub ends the
   * request, which its pending and lease timeouts always do.
   */
  result(runtime: string, id: string, opts?: { timeoutMs?: number }): Promise<Request>;
  /**
   * Watches a runtime (or only some of its requests): a `snapshot` first (again after
   * every reconnect), then `request` on every state change and `runtime` on presence
   * changes. Returns the function that stops it.
   */
  subscribe(
    runtime: string,
    onEvent: (event: ClientEvent) => void,
    opts?: { requests?: string[] },
  ): () => void;
  /**
   * Presence of every runtime of the workspace, including ones that appear later: a
   * `runtime` event per known runtime (again after every reconnect), then one on every
   * presence change. Returns the function that stops it. (The `watch_runtimes` frame:
   * an addition to the protocol, see the README.)
   */
  watchRuntimes(onEvent: (event: ClientEvent) => void): () => void;
  /**
   * A request's output: each chunk once, in offset order, from the first (or past
   * `after`), as the daemon streams it; the iteration ends once the request has ended
   * and every chunk was yielded. A chunk's `epoch` is its attempt's: after a redelivery
   * the next attempt's chunks follow. Throws a SwitchboardError (`not_found`, `closed`).
   * Leaving the loop early stops the stream.
   *
   * @example
   * ```js
   * for await (const chunk of client.output('laptop', req.id)) console.log(chunk.data);
   * ```
   */
  output(runtime: string, id: string, opts?: OutputOptions): AsyncIterableIterator<OutputChunk>;
  /**
   * `output()` as callbacks: `onChunk` for every chunk in order, then `onEnd` once (with
   * the error that ended it, if any). Returns the function that stops it (no `onEnd`).
   */
  onOutput(
    runtime: string,
    id: string,
    onChunk: (chunk: OutputChunk) => void,
    opts?: OutputOptions & { onEnd?: (error?: SwitchboardError) => void },
  ): () => void;
  /** One request as it is now. */
  get(runtime: string, id: string): Promise<Request>;
  /** Cancels a pending or running request (409 `already_terminal` when it has ended). */
  cancel(runtime: string, id: string, reason?: string): Promise<Request>;
  /** The workspace's runtimes with presence, connections and counts. */
  runtimes(): Promise<RuntimeInfo[]>;
  /** One runtime's presence, connections and counts (404 `not_found` if never seen). */
  runtime(runtime: string): Promise<RuntimeInfo>;
  /** The socket's mode right now. */
  readonly mode: SocketMode;
  /** Closes the socket; pending `result` calls reject with `closed`. */
  close(): void;
}

/**
 * Connects a browser (or Node) client to a hub. Nothing is opened until it is used.
 *
 * @example
 * ```html
 * <script type="module">
 *   import { createClient } from 'https://hub.example.com/client/browser.js';
 *   const client = createClient({ url: 'https://hub.example.com', token });
 *   const req = await client.send('laptop', 'skills.list', { q: 'x' }, { max_attempts: 3 });
 *   const done = await client.result('laptop', req.id, { timeoutMs: 60_000 });
 *   if (done.status === 'completed') console.log(done.result);
 *   else console.warn(done.status, done.error);
 *   const stop = client.subscribe('laptop', (e) => e.type === 'request' && console.log(e.request));
 * </script>
 * ```
 */
export function createClient(options: ClientOptions): Client {
  const base = baseUrl(options.url);
  const { token } = options;
  const Ctor =
    options.WebSocket ??
    (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
    undefined;
  const socket = new SharedSocket(
    `${base.replace(/^http/, 'ws')}/v1/ws?access_token=${encodeURIComponent(token)}`,
    Ctor,
    options.backoff?.initialMs ?? 250,
    options.backoff?.maxMs ?? 10_000,
  );
  const closing = new AbortController();

  const call = hubCaller(base, token, {
    retries: options.rateLimit?.retries ?? DEFAULT_RETRY_POLICY.retries,
    maxWaitMs: options.rateLimit?.maxWaitMs ?? DEFAULT_RETRY_POLICY.maxWaitMs,
  });
  const rt = (runtime: string) => `/v1/runtimes/${encodeURIComponent(runtime)}`;
  const req = (runtime: string, id: string) => `${rt(runtime)}/requests/${encodeURIComponent(id)}`;

  return {
    send(runtime, kind, payload, opts = {}) {
      const { idempotencyKey, ...rest } = opts;
      return call<Request>('POST', `${rt(runtime)}/requests`, {
        body: { kind, ...(payload === undefined ? {} : { payload }), ...rest },
        headers: {
          // The active span's context, when the page traces (a no-op otherwise).
          ...activeTraceHeaders(),
          ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
        },
      });
    },
    result(runtime, id, opts = {}) {
      if (closing.signal.aborted) return Promise.reject(closedError());
      return awaitResult(
        { socket, call, closing: closing.signal },
        runtime,
        id,
        req(runtime, id),
        opts,
      );
    },
    subscribe(runtime, onEvent, opts = {}) {
      const listener: Listener = {
        runtime,
        ids: opts.requests ? new Set(opts.requests) : null,
        onEvent,
      };
      socket.add(listener);
      return () => socket.remove(listener);
    },
    watchRuntimes(onEvent) {
      const listener: Listener = { runtime: ALL_RUNTIMES, ids: null, onEvent };
      socket.add(listener);
      return () => socket.remove(listener);
    },
    output(runtime, id, opts = {}) {
      return outputIterator((sink) =>
        followOutput(
          { socket, call, closing: closing.signal },
          runtime,
          id,
          req(runtime, id),
          opts,
          sink,
        ),
      );
    },
    onOutput(runtime, id, onChunk, opts = {}) {
      const { onEnd, ...rest } = opts;
      return followOutput(
        { socket, call, closing: closing.signal },
        runtime,
        id,
        req(runtime, id),
        rest,
        {
          chunk: onChunk,
          end: (error) => onEnd?.(error),
        },
      );
    },
    get: (runtime, id) => call<Request>('GET', req(runtime, id)),
    cancel: (runtime, id, reason) =>
      call<Request>('POST', `${req(runtime, id)}/cancel`, { body: reason ? { reason } : {} }),
    runtimes: async () => (await call<{ runtimes: RuntimeInfo[] }>('GET', '/v1/runtimes')).runtimes,
    runtime: (runtime) => call<RuntimeInfo>('GET', rt(runtime)),
    get mode() {
      return socket.mode;
    },
    close() {
      closing.abort();
      socket.close();
    },
  };
}
