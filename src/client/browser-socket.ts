/**
 * The browser client's one websocket (`/v1/ws`): every subscription of the client on it,
 * each frame handed to the listeners it is for, and reconnecting with the backoff of
 * protocol/backoff.js. Its modes (idle, connecting, open, backoff, unavailable, closed)
 * and their moves are browser-socket-modes.ts; `#setMode()` here is the only place the
 * mode changes, and the only one that does what entering a mode means.
 *
 * Output (DESIGN.md section 6): a listener with `output` streams the output of its ids.
 * Those ids go to the hub in their own `subscribe {requests, output: true, after}` frame,
 * `after` the smallest offset any of their listeners has, so after a reconnect every
 * listener gets what it missed (each drops what it already has). The hub keeps one
 * output follower per id and socket and ignores a second subscribe for it: a listener
 * that joins one already followed on this socket is told so by `isFollowing()`.
 */
import { Backoff } from '../../protocol/backoff.js';
import type { ClientOutbound } from '../../protocol/index.js';
import { assertSocketMove, SOCKET_MODES, type SocketMode } from './browser-socket-modes.js';

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

/** A frame from the hub, or `connection` when the client's socket changes mode. */
export type ClientEvent = ClientOutbound | { type: 'connection'; mode: SocketMode };

/** A listener on this runtime name watches every runtime (no runtime id has a `*`). */
export const ALL_RUNTIMES = '*';

export interface Listener {
  runtime: string;
  /** null: the whole runtime. */
  ids: Set<string> | null;
  onEvent: (event: ClientEvent) => void;
  /** Streams the output of `ids` too: returns the last offset this listener has. */
  output?: () => number;
}

/** What the hub should hold for a runtime; ids null: the whole runtime. */
interface Wanted {
  ids: Set<string> | null;
  /** Ids whose output is streamed, each with the smallest offset a listener of it has. */
  output: Map<string, number>;
}

/** The hub takes at most this many ids in one subscribe frame. */
const IDS_PER_FRAME = 500;
const OPEN = 1;

export class SharedSocket {
  #mode: SocketMode = SOCKET_MODES.idle;
  #ws: WebSocketLike | null = null;
  #listeners = new Set<Listener>();
  #onChange = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #backoff: Backoff;
  /** `runtime id` pairs the hub follows the output of on the socket open now. */
  #following = new Set<string>();

  constructor(
    private readonly url: string,
    private readonly Ctor: WebSocketConstructor | undefined,
    initialMs: number,
    maxMs: number,
  ) {
    this.#backoff = new Backoff(initialMs, maxMs);
  }

  get mode(): SocketMode {
    return this.#mode;
  }

  add(listener: Listener): void {
    this.#listeners.add(listener);
    if (this.#mode === SOCKET_MODES.open) {
      const output = new Map<string, number>();
      const after = listener.output?.() ?? 0;
      if (listener.output) for (const id of listener.ids ?? []) output.set(id, after);
      this.#subscribe(listener.runtime, { ids: listener.ids, output });
    } else if (this.#mode === SOCKET_MODES.idle) {
      this.#setMode(this.Ctor ? SOCKET_MODES.connecting : SOCKET_MODES.unavailable);
    } else if (this.#mode === SOCKET_MODES.unavailable || this.#mode === SOCKET_MODES.closed) {
      listener.onEvent({ type: 'connection', mode: this.#mode });
    }
  }

  remove(listener: Listener): void {
    if (!this.#listeners.has(listener)) return;
    const before = this.#wanted(listener.runtime);
    this.#listeners.delete(listener);
    const after = this.#wanted(listener.runtime);
    if (this.#listeners.size === 0 && this.#mode === SOCKET_MODES.backoff) {
      this.#setMode(SOCKET_MODES.idle);
    }
    if (this.#mode !== SOCKET_MODES.open || !before) return;
    const { runtime } = listener;
    if (runtime === ALL_RUNTIMES) {
      if (!after) this.#send({ type: 'unwatch_runtimes' });
      return;
    }
    if (!after || (!before.ids && after.ids)) {
      // Nothing left, or the hub keeps a whole-runtime subscription whole: narrow it by
      // starting over.
      this.#send({ type: 'unsubscribe', runtime });
      for (const id of before.output.keys()) this.#following.delete(`${runtime} ${id}`);
      if (after) this.#subscribe(runtime, after);
      return;
    }
    const gone = before.ids ? [...before.ids].filter((id) => !after.ids?.has(id)) : [];
    // Ids still wanted but no longer their output: unsubscribed (which ends the output),
    // then, within a list of ids, subscribed again without it.
    const quieted = [...before.output.keys()].filter(
      (id) => !after.output.has(id) && !gone.includes(id),
    );
    for (const ids of chunks([...gone, ...quieted])) {
      this.#send({ type: 'unsubscribe', runtime, requests: ids });
    }
    for (const id of [...gone, ...quieted]) this.#following.delete(`${runtime} ${id}`);
    if (after.ids && quieted.length > 0) {
      this.#subscribe(runtime, { ids: new Set(quieted), output: new Map() });
    }
  }

  /** Whether the hub already streams this request's output on the socket open now. */
  isFollowing(runtime: string, id: string): boolean {
    return this.#mode === SOCKET_MODES.open && this.#following.has(`${runtime} ${id}`);
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
    if (this.#mode !== SOCKET_MODES.closed) this.#setMode(SOCKET_MODES.closed);
  }

  // ---- the modes ----------------------------------------------------------------------

  #setMode(next: SocketMode): void {
    assertSocketMove(this.#mode, next);
    this.#mode = next;
    switch (next) {
      case SOCKET_MODES.idle:
        clearTimeout(this.#timer);
        break;
      case SOCKET_MODES.connecting:
        this.#open();
        break;
      case SOCKET_MODES.open:
        this.#backoff.reset();
        this.#following.clear();
        this.#subscribeAll();
        break;
      case SOCKET_MODES.backoff:
        this.#timer = setTimeout(() => {
          if (this.#mode === SOCKET_MODES.backoff) this.#setMode(SOCKET_MODES.connecting);
        }, this.#backoff.next());
        break;
      case SOCKET_MODES.closed: {
        clearTimeout(this.#timer);
        const ws = this.#ws;
        this.#ws = null;
        ws?.close(1000, 'client closed');
        break;
      }
    }
    for (const done of [...this.#onChange]) done();
    this.#emit(() => true, { type: 'connection', mode: next });
  }

  /** Entering connecting: a new socket, its handlers bound to it alone. */
  #open(): void {
    let ws: WebSocketLike;
    try {
      ws = new (this.Ctor as WebSocketConstructor)(this.url);
    } catch {
      // After this move is told, not inside it: the listeners see connecting, then backoff.
      queueMicrotask(() => {
        if (this.#mode === SOCKET_MODES.connecting && this.#ws === null) this.#dropped();
      });
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws === ws) this.#setMode(SOCKET_MODES.open);
    };
    ws.onmessage = ((event: { data: unknown }) => {
      if (this.#ws === ws) this.#dispatch(event.data);
    }) as (event: never) => void;
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#dropped();
    };
    ws.onerror = () => {
      // `close` follows every error; reconnecting happens there.
    };
  }

  /** The socket went away (or could not be made): reconnect if anyone still listens. */
  #dropped(): void {
    if (this.#mode === SOCKET_MODES.closed) return;
    this.#setMode(this.#listeners.size === 0 ? SOCKET_MODES.idle : SOCKET_MODES.backoff);
  }

  // ---- subscriptions ------------------------------------------------------------------

  /** What the hub should hold for a runtime: null nothing. */
  #wanted(runtime: string): Wanted | null {
    let ids: Set<string> | null = new Set();
    const output = new Map<string, number>();
    let any = false;
    for (const l of this.#listeners) {
      if (l.runtime !== runtime) continue;
      any = true;
      if (!l.ids) ids = null;
      for (const id of l.ids ?? []) ids?.add(id);
      if (!l.output) continue;
      const after = l.output();
      for (const id of l.ids ?? []) output.set(id, Math.min(after, output.get(id) ?? after));
    }
    return any ? { ids, output } : null;
  }

  #subscribeAll(): void {
    const runtimes = new Set([...this.#listeners].map((l) => l.runtime));
    for (const runtime of runtimes) {
      const wanted = this.#wanted(runtime);
      if (wanted) this.#subscribe(runtime, wanted);
    }
  }

  #subscribe(runtime: string, { ids, output }: Wanted): void {
    if (runtime === ALL_RUNTIMES) {
      this.#send({ type: 'watch_runtimes' });
      return;
    }
    if (!ids) this.#send({ type: 'subscribe', runtime });
    const plain = ids ? [...ids].filter((id) => !output.has(id)) : [];
    for (const c of chunks(plain)) this.#send({ type: 'subscribe', runtime, requests: c });
    for (const c of chunks([...output.keys()])) {
      const after: Record<string, number> = {};
      for (const id of c) {
        const n = output.get(id) ?? 0;
        if (n > 0) after[id] = n;
        this.#following.add(`${runtime} ${id}`);
      }
      this.#send({ type: 'subscribe', runtime, requests: c, output: true, after });
    }
  }

  #send(frame: unknown): void {
    try {
      this.#ws?.send(JSON.stringify(frame));
    } catch {
      // A socket that is closing throws in some browsers; its close handler reconnects.
    }
  }

  #resubscribeSoon(runtime: string, afterMs: number): void {
    setTimeout(
      () => {
        const wanted = this.#wanted(runtime);
        if (wanted && this.#ws?.readyState === OPEN) this.#subscribe(runtime, wanted);
      },
      afterMs * (1 + Math.random() * 2),
    );
  }

  // ---- frames -------------------------------------------------------------------------

  #dispatch(data: unknown): void {
    let frame: ClientOutbound;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data)) as ClientOutbound;
    } catch {
      return;
    }
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
      case 'output':
        this.#emit(
          (l) => l.runtime === frame.runtime && !!l.output && !!l.ids?.has(frame.id),
          frame,
        );
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
