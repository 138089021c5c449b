/**
 * The daemon SDK: run handlers for a runtime's requests, and let the SDK do the rest.
 *
 * It keeps a websocket to the hub (reconnecting with exponential backoff and jitter, at
 * once on `drain`), falls back to HTTP heartbeat polling while no socket can be had and
 * returns to the socket when it can, renews leases, and reports every result until the
 * hub acknowledges it (retrying on `nack` with `retry: true`, on network errors and on
 * HTTP calls that time out, across reconnects and nodes; stopping on `lease_lost`).
 *
 * This module owns the wire (sockets, polling, HTTP); the job table — attempts keyed by
 * (id, epoch), the local bound of `capacity` running handlers, renewal from receipt until
 * the report settles, stale pushes — is jobs.ts. The capacity declared to the hub is net
 * of what runs here off the current socket's books.
 *
 * @example
 * const daemon = connectDaemon({
 *   url: 'https://hub.example.com',
 *   token: process.env.SWITCHBOARD_TOKEN!,
 *   capacity: 4,
 *   handlers: {
 *     'skills.list': async (payload, ctx) => listSkills(payload, { signal: ctx.signal }),
 *   },
 * });
 * process.on('SIGTERM', () => void daemon.close());
 */
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import {
  Backoff,
  DaemonOutbound,
  type DaemonRequest,
  type HelloFrame,
  parseFrame,
} from '../../protocol/index.js';
import { type HttpAnswer, parseRetryAfter, verdict } from './answers.js';
import { type Handler, type Job, Jobs, type RenewAnswer } from './jobs.js';
import { deliverable } from './outcome.js';
import { type JobOutcome, type Report, Reporter } from './reporter.js';

export type { Handler, HandlerContext } from './jobs.js';

export interface DaemonOptions {
  /** The hub's base URL (http or https), or several: tried in turn when one fails. */
  url: string | string[];
  /** A daemon token (`switchboard token --role daemon ...`). */
  token: string;
  /** Most handlers running at once. Default 1. */
  capacity?: number;
  /**
   * Request kind -> handler. `'*'` handles any kind without its own handler; a kind
   * with neither fails with `unknown_kind`.
   */
  handlers: Record<string, Handler>;
  /** Heartbeat polling period while no socket is up. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Failed socket attempts in a row before polling starts. Default 2. */
  socketFailuresBeforePolling?: number;
  /** Reconnect backoff. Default 250 ms doubling to 10 s, with full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long `close()` waits for running handlers and their reports. Default 10 s. */
  closeTimeoutMs?: number;
  /**
   * How long one HTTP call (heartbeat, result, renew) may take before it is given up and
   * retried like a network error, so a half-open connection cannot stall polling or a
   * report. Default 10 s.
   */
  httpTimeoutMs?: number;
}

export type DaemonState = 'connecting' | 'socket' | 'polling' | 'closing' | 'closed';

interface DaemonEvents {
  state: [DaemonState];
  request: [DaemonRequest];
  /** A report settled: acked, or dropped because the lease was lost. */
  reported: [{ id: string; epoch: number; status: string; accepted: boolean }];
  error: [Error];
}

/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 5_000;
const DEFAULT_LEASE_MS = 30_000;

export class Daemon extends EventEmitter<DaemonEvents> {
  #state: DaemonState = 'connecting';
  readonly #opts: Required<Omit<DaemonOptions, 'backoff' | 'url'>> & { urls: string[] };
  readonly #jobs: Jobs;
  readonly #backoff: Backoff;
  readonly #reporter: Reporter;
  #urlIndex = 0;
  #ws: WebSocket | null = null;
  #generation = 0;
  /** Generation of the socket in use (the one that said hello last). */
  #current = -1;
  #socketFailures = 0;
  #upSince = 0;
  #leaseMs = DEFAULT_LEASE_MS;
  /** The hub's frame and body limit (from hello; 1 MiB until one arrives). */
  #maxPayloadBytes = 1_048_576;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #polling = false;
  /** The heartbeat under way, if any: its claims must run before close() ends. */
  #beat: Promise<void> | null = null;
  /** Every socket opened and not yet closed (the current one, one connecting, one draining). */
  readonly #sockets = new Set<WebSocket>();

  constructor(options: DaemonOptions) {
    super();
    this.#opts = {
      urls: (Array.isArray(options.url) ? options.url : [options.url]).map((u) =>
        u.replace(/\/+$/, ''),
      ),
      token: options.token,
      capacity: options.capacity ?? 1,
      handlers: options.handlers,
      pollIntervalMs: options.pollIntervalMs ?? 1_000,
      socketFailuresBeforePolling: options.socketFailuresBeforePolling ?? 2,
      closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
      httpTimeoutMs: options.httpTimeoutMs ?? 10_000,
    };
    if (this.#opts.urls.length === 0) throw new TypeError('connectDaemon: url is required');
    this.#backoff = new Backoff(
      options.backoff?.initialMs ?? 250,
      options.backoff?.maxMs ?? 10_000,
    );
    this.#reporter = new Reporter({
      http: (path, body) => this.#post(path, body),
      socket: () => (this.#ws?.readyState === WebSocket.OPEN ? this.#ws : null),
      backoff: this.#backoff,
    });
    this.#jobs = new Jobs({
      capacity: this.#opts.capacity,
      handlers: this.#opts.handlers,
      current: () => this.#current,
      leaseMs: () => this.#leaseMs,
      renew: (job) => this.#renew(job),
      report: (job, outcome) => this.#report(job, outcome),
      booksChanged: () => this.#declareCapacity(),
      received: (request) => this.emit('request', request),
      error: (err) => this.emit('error', err),
    });
    this.on('error', () => {}); // errors are informative; never crash the process
    this.#connect();
  }

  get state(): DaemonState {
    return this.#state;
  }

  /**
   * Attempts (a request at one epoch) whose handlers are running or waiting to start, or
   * whose results are being reported.
   */
  get inFlight(): number {
    return this.#jobs.size;
  }

  /**
   * Stops taking work, waits (up to `closeTimeoutMs`) for running handlers and their
   * reports, then aborts what is left and closes the connection.
   */
  async close(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#setState('closing');
    this.#stopPolling();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#sendFrame({ type: 'ready', capacity: 0 });
    const deadline = Date.now() + this.#opts.closeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>((r) => {
      timer = setTimeout(r, this.#opts.closeTimeoutMs);
    });
    // A heartbeat under way may claim work, and a push may arrive before the hub has
    // read `ready 0`: wait until no job is left, not only for the jobs of this moment.
    // Its failure is the poll loop's to report, not close()'s to throw.
    await Promise.race([this.#beat?.catch(() => {}), timeUp]);
    while (this.#jobs.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.all(this.#jobs.all().map((j) => j.done)), timeUp]);
    }
    clearTimeout(timer);
    this.#jobs.abortAll('daemon closed');
    this.#reporter.stop();
    this.#setState('closed');
    for (const ws of this.#sockets) ws.close(1000, 'daemon closing');
    this.#ws = null;
  }

  // ---- the socket -------------------------------------------------------------------

  #connect(): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const base = this.#opts.urls[this.#urlIndex % this.#opts.urls.length] as string;
    const generation = ++this.#generation;
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/daemon/ws`, {
      headers: { authorization: `Bearer ${this.#opts.token}` },
      handshakeTimeout: 5_000,
    });
    this.#sockets.add(ws);
    let helloSeen = false;
    let lastHeard = Date.now();
    let heartbeatMs = 15_000;
    // The hub pings every heartbeat interval; silence for three means a dead path.
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > 3 * heartbeatMs) ws.terminate();
    }, 1_000);
    watchdog.unref();
    ws.on('ping', () => {
      lastHeard = Date.now();
    });
    ws.on('message', (data) => {
      lastHeard = Date.now();
      // Frames are checked against the protocol: one this SDK does not know (a newer
      // hub's) or a malformed one is ignored, never half-handled.
      const parsed = parseFrame(DaemonOutbound, data.toString());
      if (!parsed.ok) return;
      const frame = parsed.frame;
      if (frame.type === 'hello') {
        helloSeen = true;
        heartbeatMs = frame.heartbeat_interval_ms || heartbeatMs;
        this.#maxPayloadBytes = frame.max_payload_bytes || this.#maxPayloadBytes;
        this.#adopt(ws, generation, frame.lease_ms);
      } else {
        this.#onFrame(ws, generation, frame);
      }
    });
    ws.on('error', (err) => this.emit('error', err));
    ws.on('close', () => {
      clearInterval(watchdog);
      this.#sockets.delete(ws);
      if (this.#ws === ws) this.#ws = null;
      this.#reporter.socketClosed(ws);
      if (generation !== this.#generation) return; // replaced on purpose (drain)
      if (helloSeen && Date.now() - this.#upSince > STABLE_MS) this.#backoff.reset();
      if (!helloSeen) this.#socketFailures++;
      this.#urlIndex++;
      this.#scheduleReconnect();
    });
  }

  /** A new socket said hello: it becomes the current one; an older one is let go. */
  #adopt(ws: WebSocket, generation: number, leaseMs: number): void {
    if (this.#state === 'closed') {
      ws.close(1000, 'daemon closed');
      return;
    }
    const previous = this.#ws;
    this.#ws = ws;
    this.#current = generation;
    this.#leaseMs = leaseMs > 0 ? leaseMs : DEFAULT_LEASE_MS;
    this.#upSince = Date.now();
    this.#socketFailures = 0;
    this.#stopPolling();
    if (this.#state !== 'closing') this.#setState('socket');
    this.#declareCapacity();
    this.#reporter.resend();
    if (previous && previous !== ws) previous.close(1000, 'replaced');
  }

  #onFrame(ws: WebSocket, generation: number, frame: Exclude<DaemonOutbound, HelloFrame>): void {
    switch (frame.type) {
      case 'request':
        // While closing a late push still runs (close() waits for it); once closed, the
        // lease brings it back to the hub.
        if (this.#state !== 'closed') this.#jobs.receive(frame.request, generation);
        return;
      case 'renewed':
        this.#jobs.renewed(frame.id, frame.epoch);
        return;
      case 'ack':
      case 'nack':
        this.#reporter.answer(frame);
        return;
      case 'cancel':
      case 'lease_lost':
        this.#jobs.lose(frame.id, frame.epoch, frame.type);
        return;
      case 'drain':
        // Reconnect at once (to the next URL); the old socket stays until the new one
        // says hello, and results may still go through it meanwhile.
        if (this.#ws === ws) {
          this.#urlIndex++;
          this.#connect();
        }
        return;
      default:
        return; // error: informative
    }
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#reconnectTimer) return;
    if (this.#socketFailures >= this.#opts.socketFailuresBeforePolling) this.#startPolling();
    else if (this.#state === 'socket') this.#setState('connecting');
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect();
    }, this.#backoff.next());
  }

  /**
   * The hub counts in flight per connection; jobs that came through another connection
   * (or HTTP), and lost ones still running here, are not on this one's books, so the
   * capacity declared here leaves room for them. Re-declared whenever that count changes.
   */
  #declareCapacity(): void {
    if (this.#state === 'closing') return;
    const capacity = Math.max(0, this.#opts.capacity - this.#jobs.unbooked());
    this.#sendFrame({ type: 'ready', capacity });
  }

  #sendFrame(frame: unknown): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  // ---- polling (no socket) ------------------------------------------------------------

  #startPolling(): void {
    if (this.#polling) return;
    this.#polling = true;
    this.#setState('polling');
    const tick = async () => {
      this.#pollTimer = null;
      if (!this.#polling) return;
      try {
        this.#beat = this.#heartbeat();
        await this.#beat;
        this.#pollTimer = setTimeout(tick, this.#opts.pollIntervalMs);
      } catch (err) {
        this.emit('error', err as Error);
        this.#urlIndex++;
        this.#pollTimer = setTimeout(
          tick,
          Math.max(this.#opts.pollIntervalMs, this.#backoff.peek()),
        );
      }
    };
    void tick();
  }

  #stopPolling(): void {
    this.#polling = false;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    this.#pollTimer = null;
  }

  async #heartbeat(): Promise<void> {
    // Every attempt held, from receipt until its report settles (also one still waiting).
    const held = this.#jobs.held();
    const sentAt = Date.now();
    const res = await this.#post('/v1/daemon/heartbeat', {
      max: Math.max(0, this.#opts.capacity - this.#jobs.size),
      leases: held.map((j) => ({ id: j.request.id, epoch: j.request.epoch })),
    });
    if (res.status !== 200) throw new Error(`heartbeat answered ${res.status}`);
    const body = res.body as {
      requests: DaemonRequest[];
      leases: { id: string; epoch: number; ok: boolean }[];
    };
    for (const lease of body.leases) {
      if (lease.ok) this.#jobs.renewed(lease.id, lease.epoch, sentAt);
      else this.#jobs.lose(lease.id, lease.epoch, 'lease_lost');
    }
    // Claims made by this heartbeat run here even if a socket came up meanwhile; a
    // socket that did declared its capacity before they existed: declare it again.
    for (const request of body.requests) this.#jobs.receive(request, 0);
    if (body.requests.length > 0) this.#declareCapacity();
  }

  // ---- jobs: the wire side (the table is jobs.ts) -------------------------------------

  /** Reports the attempt's outcome; its lease is renewed until the report settles. */
  async #report(job: Job, outcome: JobOutcome): Promise<void> {
    const { id, epoch } = job.request;
    const report: Report = { id, epoch, ...deliverable(outcome, this.#maxPayloadBytes) };
    const accepted = await this.#reporter.report(report);
    this.emit('reported', { id, epoch, status: report.status, accepted });
  }

  /** One renewal: a frame on the socket (answered by `renewed`), else an HTTP call. */
  async #renew(job: Job): Promise<RenewAnswer> {
    const { id, epoch } = job.request;
    if (this.#ws?.readyState === WebSocket.OPEN) {
      this.#sendFrame({ type: 'renew', id, epoch });
      return 'pending';
    }
    try {
      const path = `/v1/daemon/requests/${encodeURIComponent(id)}/renew`;
      const v = verdict(await this.#post(path, { epoch }));
      return v.kind === 'ok' ? 'renewed' : v.kind === 'final' ? 'lost' : 'pending';
    } catch (err) {
      this.emit('error', err as Error); // try again next round
      return 'pending';
    }
  }

  // ---- plumbing -----------------------------------------------------------------------

  async #post(path: string, body: unknown): Promise<HttpAnswer> {
    const base = this.#opts.urls[this.#urlIndex % this.#opts.urls.length] as string;
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.#opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.#opts.httpTimeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: the status says enough
    }
    if (res.status >= 500) this.#urlIndex++;
    return {
      status: res.status,
      body: parsed,
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
    };
  }

  #setState(state: DaemonState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}

/** Connects a daemon to the hub and starts taking work. See `Daemon`. */
export function connectDaemon(options: DaemonOptions): Daemon {
  return new Daemon(options);
}
