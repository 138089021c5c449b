/**
 * The daemon SDK: run handlers for a runtime's requests, and let the SDK do the rest.
 *
 * It keeps a websocket to the hub (reconnecting with exponential backoff and jitter, at
 * once on `drain`), falls back to HTTP heartbeat polling while no socket can be had and
 * returns to the socket when it can, renews leases while handlers run, and reports every
 * result until the hub acknowledges it (retrying on `nack` with `retry: true` and on
 * network errors, across reconnects and nodes; stopping on `lease_lost`). It never runs
 * more than `capacity` handlers at once.
 *
 * Jobs are attempts, keyed by (id, epoch). When the hub claims a request again for this
 * daemon at a newer epoch (the older lease lapsed: a lost hint, a reconnect), the newer
 * claim runs as its own attempt: the older one is dead (its signal aborts; a report it
 * has pending goes on until the hub refuses it), and the newer handler starts once the
 * older one has returned, unless its own epoch was cancelled meanwhile. Leases are renewed
 * from the handler's start until its report settles, so a report that takes retries does
 * not let the lease lapse.
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
import type { DaemonRequest } from '../../stores/domain.js';
import { type HttpAnswer, parseRetryAfter, verdict } from './answers.js';
import { Backoff } from './backoff.js';
import { deliverable } from './outcome.js';
import { attemptKey, type JobOutcome, type Report, Reporter } from './reporter.js';

export interface HandlerContext {
  id: string;
  kind: string;
  attempt: number;
  epoch: number;
  /**
   * Fires on a `cancel` from the hub, a lost lease, a newer claim of the same request
   * (this attempt is then dead), or `close()` running out of time.
   */
  signal: AbortSignal;
}

export type Handler = (payload: unknown, ctx: HandlerContext) => unknown;

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
}

export type DaemonState = 'connecting' | 'socket' | 'polling' | 'closing' | 'closed';

interface DaemonEvents {
  state: [DaemonState];
  request: [DaemonRequest];
  /** A report settled: acked, or dropped because the lease was lost. */
  reported: [{ id: string; epoch: number; status: string; accepted: boolean }];
  error: [Error];
}

/** One attempt: a request at one epoch. */
interface Job {
  /** attemptKey(id, epoch): the key in #jobs. */
  key: string;
  readonly request: DaemonRequest;
  /** This request's lease length, as far as this daemon's clock can tell. */
  leaseMs: number;
  /** The socket generation it came through (0: HTTP polling). */
  via: number;
  controller: AbortController;
  renewTimer: NodeJS.Timeout | null;
  /** The handler has started: from then on the lease is renewed. */
  started: boolean;
  /**
   * Lost (cancelled, lease lost, superseded by a newer epoch): no more renewals, and an
   * outcome its handler returns afterwards is not reported.
   */
  lost: boolean;
  /** The handler has returned (or will never run): a newer attempt may start. */
  handled: Promise<void>;
  /** Handled and reported: the job is gone. */
  done: Promise<void>;
}

/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 5_000;
const DEFAULT_LEASE_MS = 30_000;

export class Daemon extends EventEmitter<DaemonEvents> {
  #state: DaemonState = 'connecting';
  readonly #opts: Required<Omit<DaemonOptions, 'backoff' | 'url'>> & { urls: string[] };
  /** Attempts by attemptKey(id, epoch). */
  readonly #jobs = new Map<string, Job>();
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
      await Promise.race([Promise.all([...this.#jobs.values()].map((j) => j.done)), timeUp]);
    }
    clearTimeout(timer);
    for (const job of this.#jobs.values()) job.controller.abort(new Error('daemon closed'));
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
      let frame: { type?: string; [k: string]: unknown };
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (frame.type === 'hello') {
        helloSeen = true;
        heartbeatMs = Number(frame.heartbeat_interval_ms) || heartbeatMs;
        this.#maxPayloadBytes = Number(frame.max_payload_bytes) || this.#maxPayloadBytes;
        this.#adopt(ws, generation, frame.lease_ms as number);
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

  #onFrame(
    ws: WebSocket,
    generation: number,
    frame: { type?: string; [k: string]: unknown },
  ): void {
    switch (frame.type) {
      case 'request':
        // While closing a late push still runs (close() waits for it); once closed, the
        // lease brings it back to the hub.
        if (this.#state !== 'closed') this.#start(frame.request as DaemonRequest, generation);
        return;
      case 'ack':
      case 'nack':
        this.#reporter.answer(frame as never);
        return;
      case 'cancel':
      case 'lease_lost':
        this.#lose(frame.id as string, frame.epoch as number, frame.type);
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
        return; // renewed, error: informative
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
   * (or HTTP) are not on this one's books, so the capacity declared here leaves room
   * for them. Re-declared whenever one of them finishes.
   */
  #declareCapacity(): void {
    if (this.#state === 'closing') return;
    let unbooked = 0;
    for (const job of this.#jobs.values()) if (this.#offBooks(job)) unbooked++;
    this.#sendFrame({ type: 'ready', capacity: Math.max(0, this.#opts.capacity - unbooked) });
  }

  /**
   * A job the hub does not count against the current socket: one that came through
   * another connection, or one lost (cancelled, lease lost) whose handler still runs
   * (the hub freed its slot; the handler has not let go of it yet).
   */
  #offBooks(job: Job): boolean {
    return job.via !== this.#current || job.lost;
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
    // Renewed from the handler's start until its report settles.
    const live = [...this.#jobs.values()].filter((j) => j.started && !j.lost);
    const res = await this.#post('/v1/daemon/heartbeat', {
      max: Math.max(0, this.#opts.capacity - this.#jobs.size),
      leases: live.map((j) => ({ id: j.request.id, epoch: j.request.epoch })),
    });
    if (res.status !== 200) throw new Error(`heartbeat answered ${res.status}`);
    const body = res.body as {
      requests: DaemonRequest[];
      leases: { id: string; epoch: number; ok: boolean }[];
    };
    for (const lease of body.leases) if (!lease.ok) this.#lose(lease.id, lease.epoch, 'lease_lost');
    // Claims made by this heartbeat run here even if a socket came up meanwhile.
    for (const request of body.requests) this.#start(request, 0);
  }

  // ---- jobs ---------------------------------------------------------------------------

  #start(request: DaemonRequest, via: number): void {
    const key = attemptKey(request.id, request.epoch);
    if (this.#jobs.has(key)) return; // a repeated push
    const others = [...this.#jobs.values()].filter((j) => j.request.id === request.id);
    if (others.some((j) => j.request.epoch > request.epoch)) return; // a stale claim
    // Claimed again at a newer epoch: every older attempt here is dead. Two handlers of
    // one request never run side by side, so the new one waits for the old ones to return.
    for (const old of others) this.#kill(old, `superseded by epoch ${request.epoch}`);
    const previous = Promise.all(others.map((j) => j.handled));
    const controller = new AbortController();
    // The lease's length from its expiry, capped by the node's default (a daemon clock
    // behind the hub's would see it longer than it is), and never below 300 ms.
    const left = Date.parse(request.lease_expires_at) - Date.now();
    const leaseMs = Math.max(
      300,
      Math.min(this.#leaseMs, Number.isFinite(left) ? left : this.#leaseMs),
    );
    const job: Job = {
      key,
      request,
      leaseMs,
      via,
      controller,
      renewTimer: null,
      started: false,
      lost: false,
      handled: Promise.resolve(),
      done: Promise.resolve(),
    };
    this.#jobs.set(key, job);
    this.emit('request', request);
    const outcome = previous.then(() => this.#handle(job));
    job.handled = outcome.then(
      () => {},
      () => {},
    );
    job.done = outcome
      .then((o) => (o ? this.#report(job, o) : undefined))
      .catch((err: unknown) => {
        this.emit('error', err as Error);
      })
      .finally(() => {
        if (job.renewTimer) clearTimeout(job.renewTimer);
        job.renewTimer = null;
        this.#jobs.delete(key);
        if (this.#offBooks(job)) this.#declareCapacity();
      });
  }

  /** Runs the handler; the outcome to report, or null when the attempt was lost. */
  async #handle(job: Job): Promise<JobOutcome | null> {
    const { request, controller } = job;
    // Cancelled, lost or superseded before it could start, or close() gave up on it.
    if (job.lost || controller.signal.aborted) return null;
    job.started = true;
    this.#scheduleRenew(job);
    const handler = this.#opts.handlers[request.kind] ?? this.#opts.handlers['*'];
    let outcome: JobOutcome;
    if (!handler) {
      outcome = {
        status: 'failed',
        error: { code: 'unknown_kind', message: `no handler for kind "${request.kind}"` },
      };
    } else {
      try {
        const result = await handler(request.payload, {
          id: request.id,
          kind: request.kind,
          attempt: request.attempt,
          epoch: request.epoch,
          signal: controller.signal,
        });
        outcome = { status: 'completed', result: result === undefined ? null : result };
      } catch (err) {
        outcome = {
          status: 'failed',
          error: {
            code: 'handler_error',
            message: err instanceof Error ? err.message : String(err),
          },
        };
      }
    }
    return job.lost ? null : outcome;
  }

  /** Reports the attempt's outcome; its lease is renewed until the report settles. */
  async #report(job: Job, outcome: JobOutcome): Promise<void> {
    const { id, epoch } = job.request;
    const report: Report = { id, epoch, ...deliverable(outcome, this.#maxPayloadBytes) };
    const accepted = await this.#reporter.report(report);
    this.emit('reported', { id, epoch, status: report.status, accepted });
  }

  /** Renews the lease at a third of its length while the handler runs or it is reported. */
  #scheduleRenew(job: Job): void {
    if (job.lost || this.#jobs.get(job.key) !== job) return;
    job.renewTimer = setTimeout(() => void this.#renew(job), job.leaseMs / 3);
  }

  async #renew(job: Job): Promise<void> {
    job.renewTimer = null;
    if (job.lost || this.#jobs.get(job.key) !== job) return;
    const { id, epoch } = job.request;
    if (this.#ws?.readyState === WebSocket.OPEN) {
      this.#sendFrame({ type: 'renew', id, epoch });
    } else {
      try {
        const res = await this.#post(`/v1/daemon/requests/${encodeURIComponent(id)}/renew`, {
          epoch,
        });
        if (verdict(res).kind === 'final') {
          this.#lose(id, epoch, 'lease_lost');
          return;
        }
      } catch (err) {
        this.emit('error', err as Error); // try again next round
      }
    }
    this.#scheduleRenew(job);
  }

  /** The hub says this attempt is no longer this daemon's: abort it, report nothing new. */
  #lose(id: string, epoch: number, why: 'cancel' | 'lease_lost'): void {
    const job = this.#jobs.get(attemptKey(id, epoch));
    if (job) this.#kill(job, why === 'cancel' ? 'cancelled' : 'lease lost');
  }

  /**
   * The attempt is dead: stop renewing, abort its handler. A report already under way is
   * left to the hub to settle (it refuses a stale epoch; it may also accept a report that
   * raced the news), so the SDK never calls a result lost that the hub has taken.
   */
  #kill(job: Job, why: string): void {
    if (job.lost) return;
    job.lost = true;
    if (job.renewTimer) clearTimeout(job.renewTimer);
    job.renewTimer = null;
    job.controller.abort(new Error(why));
    // The hub freed the slot; the handler (or its report) may still hold it here.
    this.#declareCapacity();
  }

  // ---- plumbing -----------------------------------------------------------------------

  async #post(path: string, body: unknown): Promise<HttpAnswer> {
    const base = this.#opts.urls[this.#urlIndex % this.#opts.urls.length] as string;
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.#opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
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
