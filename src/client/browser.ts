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
 * Socket modes: idle (no socket, nothing subscribed) -> connecting -> open ->
 * backoff (waiting to reconnect) -> connecting ...; unavailable (no WebSocket at all);
 * closed (after `close()`, final).
 *
 * It imports the protocol layer's plain constants (not its schemas), so the bundle a node
 * serves carries no schema library.
 */
import { backoffCeiling } from '../../protocol/backoff.js';
import { FINAL_HTTP_STATUSES } from '../../protocol/codes.js';
import type {
  ClientOutbound,
  CreateRequestBody,
  Request,
  RuntimeInfo,
} from '../../protocol/index.js';
import { isTerminal as isTerminalStatus } from '../../protocol/status.js';

export type { Request, RuntimeInfo };

const LONG_POLL_MS = 30_000;
/** How often `result()` reads over HTTP while it waits on an open socket (a safety net). */
const SOCKET_RECHECK_MS = 20_000;

/** The hub takes at most this many ids in one subscribe frame. */
const IDS_PER_FRAME = 500;

/**
 * Every failure the client reports: `status` and `code` from the hub's error body
 * (DESIGN.md section 4), or status 0 for what happened on this side: `network_error`,
 * `timeout` (`result`'s `timeoutMs` passed), `closed` (the client was closed),
 * `invalid_response`.
 */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** What `new WebSocket(url)` must give: the browser's, or `ws`'s in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** The hub's base URL, e.g. `https://hub.example.com`; '' means this page's origin. */
  url: string;
  /** A client token (`switchboard token --role client --workspace W`). */
  token: string;
  /** Default `globalThis.WebSocket`; without one, results are long-polled. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff of the socket. Default 250 ms doubling to 10 s, with full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
}

export type SendOptions = Omit<CreateRequestBody, 'kind' | 'payload'> & {
  /**
   * Same key and same body while the request is kept (RETENTION_MS after it ends, at
   * most 24 h): the same request comes back, not a new one.
   */
  idempotencyKey?: string;
};

export type SocketMode = 'idle' | 'connecting' | 'open' | 'backoff' | 'unavailable' | 'closed';

/** A frame from the hub, or `connection` when the client's socket changes mode. */
export type ClientEvent = ClientOutbound | { type: 'connection'; mode: SocketMode };

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

/** A listener on this runtime name watches every runtime (no runtime id has a `*`). */
const ALL_RUNTIMES = '*';

interface Listener {
  runtime: string;
  /** null: the whole runtime. */
  ids: Set<string> | null;
  onEvent: (event: ClientEvent) => void;
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

  const call = <T>(method: string, path: string, init: CallInit = {}): Promise<T> =>
    callHub<T>(base, token, method, path, init);
  const rt = (runtime: string) => `/v1/runtimes/${encodeURIComponent(runtime)}`;
  const req = (runtime: string, id: string) => `${rt(runtime)}/requests/${encodeURIComponent(id)}`;

  return {
    send(runtime, kind, payload, opts = {}) {
      const { idempotencyKey, ...rest } = opts;
      return call<Request>('POST', `${rt(runtime)}/requests`, {
        body: { kind, ...(payload === undefined ? {} : { payload }), ...rest },
        headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey },
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

function baseUrl(url: string): string {
  const origin = (globalThis as { location?: { origin: string } }).location?.origin;
  const base = url === '' && origin ? origin : url;
  return base.replace(/\/+$/, '');
}

interface CallInit {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function callHub<T>(
  base: string,
  token: string,
  method: string,
  path: string,
  init: CallInit,
): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
    text = await res.text();
  } catch (err) {
    if (init.signal?.aborted) throw closedError();
    const why = err instanceof Error ? err.message : String(err);
    throw new SwitchboardError(0, 'network_error', `could not reach ${base}: ${why}`);
  }
  let body: unknown;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })
      ?.error;
    throw new SwitchboardError(
      res.status,
      typeof error?.code === 'string' ? error.code : `http_${res.status}`,
      typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
      error?.details,
    );
  }
  if (body === undefined) {
    throw new SwitchboardError(res.status, 'invalid_response', 'the hub did not answer JSON');
  }
  return body as T;
}

const closedError = () => new SwitchboardError(0, 'closed', 'the client was closed');
const isTerminal = (r: Request | undefined): r is Request => !!r && isTerminalStatus(r.status);

interface ResultDeps {
  socket: SharedSocket;
  call: <T>(method: string, path: string, init?: CallInit) => Promise<T>;
  closing: AbortSignal;
}

/**
 * Waits for one request to end: socket events, a plain read whenever a snapshot does
 * not show the request (it may have ended before the subscription, or not exist), and
 * long-polls while the socket is not open. Whichever sees the end first wins.
 */
async function awaitResult(
  { socket, call, closing }: ResultDeps,
  runtime: string,
  id: string,
  path: string,
  opts: { timeoutMs?: number },
): Promise<Request> {
  const stop = new AbortController();
  let finish!: (outcome: Request | SwitchboardError) => void;
  const outcome = new Promise<Request | SwitchboardError>((resolve) => {
    finish = (o) => {
      if (stop.signal.aborted) return;
      stop.abort();
      resolve(o);
    };
  });
  const onFailure = (err: unknown) => {
    if (err instanceof SwitchboardError && FINAL_HTTP_STATUSES.has(err.status)) finish(err);
  };
  const readOnce = () =>
    call<Request>('GET', path, { signal: stop.signal }).then(
      (r) => isTerminal(r) && finish(r),
      onFailure,
    );
  const listener: Listener = {
    runtime,
    ids: new Set([id]),
    onEvent(event) {
      if (event.type === 'request' && event.request.id === id) {
        if (isTerminal(event.request)) finish(event.request);
      } else if (event.type === 'snapshot') {
        const found = event.requests.find((r) => r.id === id);
        if (isTerminal(found)) finish(found);
        else if (!found) void readOnce();
      } else if (event.type === 'error') {
        // The hub could not read something for this socket: ask over HTTP instead.
        void readOnce();
      }
    },
  };
  // While the socket is up, frames carry the result; a frame the hub could not send
  // (a read that failed on its side) would leave this waiting, so read now and then.
  const recheck = setInterval(() => void readOnce(), SOCKET_RECHECK_MS);
  const onClose = () => finish(closedError());
  closing.addEventListener('abort', onClose);
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => finish(new SwitchboardError(0, 'timeout', `no result within ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
  socket.add(listener);
  try {
    void longPollWhileSocketIsDown();
    const o = await outcome;
    if (o instanceof SwitchboardError) throw o;
    return o;
  } finally {
    stop.abort();
    clearTimeout(timer);
    clearInterval(recheck);
    closing.removeEventListener('abort', onClose);
    socket.remove(listener);
  }

  async function longPollWhileSocketIsDown(): Promise<void> {
    let failures = 0;
    while (!stop.signal.aborted) {
      if (socket.mode === 'open' || socket.mode === 'connecting') {
        await socket.changed(stop.signal);
        continue;
      }
      const waitMs = Math.floor(Math.min(LONG_POLL_MS, deadline - Date.now()));
      if (waitMs <= 0) return; // the timer settles it
      try {
        const r = await call<Request>('GET', `${path}?wait_ms=${waitMs}`, { signal: stop.signal });
        failures = 0;
        if (isTerminal(r)) finish(r);
      } catch (err) {
        onFailure(err);
        const ms = Math.random() * backoffCeiling(failures++, 250, 10_000);
        await Promise.race([sleep(ms, stop.signal), socket.changed(stop.signal)]);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** The one client websocket, its subscriptions, and reconnecting. */
class SharedSocket {
  mode: SocketMode = 'idle';
  #ws: WebSocketLike | null = null;
  #listeners = new Set<Listener>();
  #onChange = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;

  constructor(
    private readonly url: string,
    private readonly Ctor: WebSocketConstructor | undefined,
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  add(listener: Listener): void {
    this.#listeners.add(listener);
    if (this.mode === 'open') {
      this.#subscribe(listener.runtime, listener.ids);
    } else if (this.mode === 'idle') {
      this.#connect();
    } else if (this.mode === 'unavailable' || this.mode === 'closed') {
      listener.onEvent({ type: 'connection', mode: this.mode });
    }
  }

  remove(listener: Listener): void {
    if (!this.#listeners.has(listener)) return;
    const before = this.#wanted(listener.runtime);
    this.#listeners.delete(listener);
    const after = this.#wanted(listener.runtime);
    if (this.#listeners.size === 0 && this.mode === 'backoff') {
      clearTimeout(this.#timer);
      this.#setMode('idle');
    }
    if (this.mode !== 'open' || !before) return;
    const { runtime } = listener;
    if (runtime === ALL_RUNTIMES) {
      if (!after) this.#send({ type: 'unwatch_runtimes' });
    } else if (!after) {
      this.#send({ type: 'unsubscribe', runtime });
    } else if (!before.ids && after.ids) {
      // The hub keeps a whole-runtime subscription whole: narrow it by starting over.
      this.#send({ type: 'unsubscribe', runtime });
      this.#subscribe(runtime, after.ids);
    } else if (before.ids && after.ids) {
      const gone = [...before.ids].filter((id) => !after.ids?.has(id));
      for (const ids of chunks(gone)) this.#send({ type: 'unsubscribe', runtime, requests: ids });
    }
  }

  /** Resolves at the next change of mode (or when `signal` aborts). */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#onChange.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      if (signal.aborted) return resolve();
      this.#onChange.add(done);
      signal.addEventListener('abort', done);
    });
  }

  close(): void {
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = null;
    this.#setMode('closed');
    ws?.close(1000, 'client closed');
  }

  /** What the hub should hold for a runtime: null nothing, ids null the whole runtime. */
  #wanted(runtime: string): { ids: Set<string> | null } | null {
    let ids: Set<string> | null = null;
    let any = false;
    for (const l of this.#listeners) {
      if (l.runtime !== runtime) continue;
      if (!l.ids) return { ids: null };
      any = true;
      ids ??= new Set();
      for (const id of l.ids) ids.add(id);
    }
    return any ? { ids } : null;
  }

  #subscribe(runtime: string, ids: Set<string> | null): void {
    if (runtime === ALL_RUNTIMES) this.#send({ type: 'watch_runtimes' });
    else if (!ids) this.#send({ type: 'subscribe', runtime });
    else for (const c of chunks([...ids])) this.#send({ type: 'subscribe', runtime, requests: c });
  }

  #send(frame: unknown): void {
    try {
      this.#ws?.send(JSON.stringify(frame));
    } catch {
      // A socket that is closing throws in some browsers; its close handler reconnects.
    }
  }

  #connect(): void {
    if (!this.Ctor) {
      this.#setMode('unavailable');
      return;
    }
    this.#setMode('connecting');
    let ws: WebSocketLike;
    try {
      ws = new this.Ctor(this.url);
    } catch {
      this.#retry();
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#attempt = 0;
      this.#setMode('open');
      // After every (re)connect the hub knows nothing of this client: tell it again.
      const runtimes = new Set([...this.#listeners].map((l) => l.runtime));
      for (const runtime of runtimes) {
        const wanted = this.#wanted(runtime);
        if (wanted) this.#subscribe(runtime, wanted.ids);
      }
    };
    ws.onmessage = ((event: { data: unknown }) => {
      if (this.#ws === ws) this.#dispatch(event.data);
    }) as (event: never) => void;
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#retry();
    };
    ws.onerror = () => {
      // `close` follows every error; reconnecting happens there.
    };
  }

  #retry(): void {
    if (this.mode === 'closed') return;
    if (this.#listeners.size === 0) {
      this.#setMode('idle');
      return;
    }
    const ceiling = backoffCeiling(this.#attempt++, this.initialMs, this.maxMs);
    this.#setMode('backoff');
    this.#timer = setTimeout(() => this.#connect(), Math.random() * ceiling);
  }

  #setMode(mode: SocketMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    for (const done of [...this.#onChange]) done();
    this.#emit(() => true, { type: 'connection', mode });
  }

  #dispatch(data: unknown): void {
    let parsed: ClientOutbound;
    try {
      parsed = JSON.parse(typeof data === 'string' ? data : String(data)) as ClientOutbound;
    } catch {
      return;
    }
    const frame = parsed;
    switch (frame.type) {
      case 'snapshot':
        this.#emit(
          (l) => l.runtime === frame.runtime,
          (l) =>
            l.ids ? { ...frame, requests: frame.requests.filter((r) => l.ids?.has(r.id)) } : frame,
        );
        break;
      case 'request':
        this.#emit(
          (l) => l.runtime === frame.request.runtime_id && (!l.ids || l.ids.has(frame.request.id)),
          frame,
        );
        break;
      case 'runtime':
        this.#emit((l) => l.runtime === frame.runtime_info.id || l.runtime === ALL_RUNTIMES, frame);
        break;
      case 'error':
        this.#emit(() => true, frame);
        // A subscribe the node could not serve (its store unreachable, or this socket's
        // reads or subscriptions over a limit) is not held: ask again for what is still
        // wanted, later for a limit.
        if (frame.runtime) {
          this.#resubscribeSoon(frame.runtime, frame.code === 'limit_exceeded' ? 5_000 : 500);
        }
        break;
    }
  }

  #resubscribeSoon(runtime: string, afterMs: number): void {
    setTimeout(
      () => {
        const wanted = this.#wanted(runtime);
        if (wanted && this.#ws?.readyState === 1) this.#subscribe(runtime, wanted.ids);
      },
      afterMs * (1 + Math.random() * 2),
    );
  }

  #emit(
    match: (l: Listener) => boolean,
    event: ClientEvent | ((l: Listener) => ClientEvent),
  ): void {
    for (const l of [...this.#listeners]) {
      if (!match(l)) continue;
      try {
        l.onEvent(typeof event === 'function' ? event(l) : event);
      } catch (err) {
        console.error('switchboard: a subscriber threw', err);
      }
    }
  }
}

function chunks(ids: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_FRAME) out.push(ids.slice(i, i + IDS_PER_FRAME));
  return out;
}
