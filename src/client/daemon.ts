/**
 * The daemon SDK: run handlers for a runtime's requests, and let the SDK do the rest.
 *
 * It keeps a websocket to the hub (reconnecting with exponential backoff and jitter, at
 * once on `drain`), falls back to HTTP heartbeat polling while no socket can be had and
 * returns to the socket when it can, renews leases, and reports every result until the
 * hub acknowledges it (retrying on `nack` with `retry: true`, on network errors and on
 * HTTP calls that time out, across reconnects and nodes; stopping on `lease_lost`).
 *
 * This module owns the modes (daemon-modes.ts lists them and their moves): every change
 * goes through `#setMode()`, which checks the move and does what entering the mode
 * means. The wire (connection state, sockets, HTTP) is daemon-transport.ts; the job
 * table — attempts keyed by (id, epoch), the local bound of `capacity` running
 * handlers, renewal from receipt until the report settles, stale pushes — is jobs.ts;
 * reporting until the hub settles a result is reporter.ts; handlers' output streams
 * (`ctx.output`, stored before the result is reported) are output.ts. The capacity
 * declared to the hub is net of what runs here off the current socket's books.
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
import { Backoff, type DaemonRequest, type HelloFrame } from '../../protocol/index.js';
import {
  assertDaemonMove,
  type DaemonMode,
  type DaemonState,
  DAEMON_MODES as M,
  PUBLIC_STATE,
} from './daemon-modes.js';
import { type DaemonOptions, type Settings, settings } from './daemon-options.js';
import { type PollDeps, startPolling, stopPolling } from './daemon-polling.js';
import {
  adopt,
  type Connection,
  closeSockets,
  type DaemonFrame,
  type Link,
  newConnection,
  openSocket,
  openWs,
  post,
  postText,
  renewLease,
  type SocketEvents,
  sendFrame,
} from './daemon-transport.js';
import { type Job, Jobs } from './jobs.js';
import { deliverable } from './outcome.js';
import { Outputs } from './output.js';
import { type JobOutcome, type Report, Reporter } from './reporter.js';

export type { DaemonState } from './daemon-modes.js';
export type { DaemonOptions } from './daemon-options.js';
export type { Handler, HandlerContext } from './handler.js';
export { OutputError, type OutputErrorCode } from './output.js';

interface DaemonEvents {
  state: [DaemonState];
  request: [DaemonRequest];
  /** A report settled: acked, or dropped because the lease was lost. */
  reported: [{ id: string; epoch: number; status: string; accepted: boolean }];
  error: [Error];
}

export class Daemon extends EventEmitter<DaemonEvents> {
  #mode: DaemonMode = M.idle;
  readonly #opts: Settings;
  readonly #conn: Connection;
  readonly #jobs: Jobs;
  readonly #reporter: Reporter;
  readonly #outputs: Outputs;
  readonly #events: SocketEvents;
  readonly #poll: PollDeps;
  readonly #onError = (err: Error): void => void this.emit('error', err);
  /** Settles when closing has run its course (mode closed). */
  #drained: Promise<void> = Promise.resolve();

  constructor(options: DaemonOptions) {
    super();
    this.#opts = settings(options);
    const { urls, token, httpTimeoutMs, backoff: b } = this.#opts;
    const backoff = new Backoff(b.initialMs, b.maxMs);
    const conn = newConnection(urls, token, httpTimeoutMs, backoff);
    this.#conn = conn;
    this.#reporter = new Reporter({
      http: (path, body) => post(conn, path, body),
      socket: () => openWs(conn),
      backoff,
    });
    this.#outputs = new Outputs({
      window: this.#opts.outputWindow,
      socket: () => openWs(conn),
      http: (path, body) => postText(conn, path, body),
      maxPayloadBytes: () => conn.maxPayloadBytes,
      leaseLost: (id, epoch) => this.#jobs.lose(id, epoch, 'lease_lost'),
    });
    this.#jobs = new Jobs({
      capacity: this.#opts.capacity,
      handlers: this.#opts.handlers,
      current: () => conn.current,
      leaseMs: () => conn.leaseMs,
      renew: (job) => renewLease(conn, job.request.id, job.request.epoch, this.#onError),
      report: (job, outcome) => this.#report(job, outcome),
      output: (job, data) => this.#outputs.write(job.request.id, job.request.epoch, data),
      ended: (job, lost) =>
        this.#outputs.end(
          job.request.id,
          job.request.epoch,
          lost ? 'lease_lost' : 'closed',
          lost ? "this attempt is no longer this daemon's" : 'the attempt has ended',
        ),
      booksChanged: () => this.#declareCapacity(),
      received: (request) => this.emit('request', request),
      error: this.#onError,
    });
    this.#events = {
      hello: (link, frame) => this.#onHello(link, frame),
      frame: (link, frame) => this.#onFrame(link, frame),
      closed: (link, newest) => this.#onClosed(link, newest),
      error: this.#onError,
    };
    this.#poll = {
      conn,
      jobs: this.#jobs,
      capacity: this.#opts.capacity,
      pollIntervalMs: this.#opts.pollIntervalMs,
      declareCapacity: () => this.#declareCapacity(),
      error: this.#onError,
    };
    this.on('error', () => {}); // errors are informative; never crash the process
    this.#setMode(M.connecting);
  }

  get state(): DaemonState {
    return PUBLIC_STATE[this.#mode];
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
    if (this.#mode === M.closing || this.#mode === M.closed) return;
    this.#setMode(M.closing);
    await this.#drained;
  }

  // ---- the modes ----------------------------------------------------------------------

  /** The one place the mode changes: checks the move, does the entry work, then emits. */
  #setMode(next: DaemonMode): void {
    const prev = this.#mode;
    assertDaemonMove(prev, next);
    this.#mode = next;
    const conn = this.#conn;
    switch (next) {
      case M.connecting:
        openSocket(conn, this.#events);
        break;
      case M.reconnecting:
        this.#scheduleAttempt();
        break;
      case M.socket:
        stopPolling(conn);
        this.#cancelAttempt();
        this.#declareCapacity();
        this.#outputs.resend();
        this.#reporter.resend();
        break;
      case M.handover:
        // The old socket stays until the new one says hello; results may still go
        // through it meanwhile.
        conn.urlIndex++;
        openSocket(conn, this.#events);
        break;
      case M.polling:
        startPolling(this.#poll);
        this.#scheduleAttempt();
        break;
      case M.closing:
        stopPolling(conn);
        this.#cancelAttempt();
        sendFrame(conn, { type: 'ready', capacity: 0 });
        this.#drained = this.#drain();
        break;
      case M.closed:
        this.#jobs.abortAll('daemon closed');
        this.#reporter.stop();
        this.#outputs.stop();
        closeSockets(conn, 'daemon closing');
        break;
    }
    if (PUBLIC_STATE[next] !== PUBLIC_STATE[prev]) this.emit('state', PUBLIC_STATE[next]);
  }

  /** Closing: wait for the heartbeat under way, then until no job is left (or time is up). */
  async #drain(): Promise<void> {
    const deadline = Date.now() + this.#opts.closeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>((r) => {
      timer = setTimeout(r, this.#opts.closeTimeoutMs);
    });
    // A heartbeat under way may claim work, and a push may arrive before the hub has
    // read `ready 0`: wait until no job is left, not only for the jobs of this moment.
    // Its failure is the poll loop's to report, not close()'s to throw.
    await Promise.race([this.#conn.beat?.catch(() => {}), timeUp]);
    while (this.#jobs.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.all(this.#jobs.all().map((j) => j.done)), timeUp]);
    }
    clearTimeout(timer);
    this.#setMode(M.closed);
  }

  /** The next socket attempt after the backoff (modes reconnecting and polling). */
  #scheduleAttempt(): void {
    if (this.#conn.reconnectTimer) return;
    this.#conn.reconnectTimer = setTimeout(() => {
      this.#conn.reconnectTimer = null;
      if (this.#mode === M.reconnecting) this.#setMode(M.connecting);
      else if (this.#mode === M.polling) openSocket(this.#conn, this.#events);
    }, this.#conn.backoff.next());
  }

  #cancelAttempt(): void {
    if (this.#conn.reconnectTimer) clearTimeout(this.#conn.reconnectTimer);
    this.#conn.reconnectTimer = null;
  }

  // ---- what the sockets say -------------------------------------------------------------

  /** A socket said hello: it becomes the one in use; an older one is let go. */
  #onHello(link: Link, frame: HelloFrame): void {
    if (this.#mode === M.closed) {
      link.ws.close(1000, 'daemon closed');
      return;
    }
    const previous = adopt(link, frame.lease_ms);
    // While closing, a new socket only carries the reports (no capacity is declared).
    if (this.#mode === M.closing) {
      this.#outputs.resend();
      this.#reporter.resend();
    } else this.#setMode(M.socket);
    previous?.close(1000, 'replaced');
  }

  #onFrame(link: Link, frame: DaemonFrame): void {
    switch (frame.type) {
      case 'request':
        // While closing a late push still runs (close() waits for it); once closed, the
        // lease brings it back to the hub.
        if (this.#mode !== M.closed) this.#jobs.receive(frame.request, link.generation);
        return;
      case 'renewed':
        this.#jobs.renewed(frame.id, frame.epoch);
        return;
      case 'ack':
        this.#reporter.answer(frame);
        return;
      case 'nack':
        // A nack naming a seq is for an output frame; one without, for a result.
        if (frame.seq === undefined) this.#reporter.answer(frame);
        else this.#outputs.answer(frame);
        return;
      case 'output_ack':
        this.#outputs.answer(frame);
        return;
      case 'cancel':
      case 'lease_lost':
        this.#jobs.lose(frame.id, frame.epoch, frame.type);
        return;
      case 'drain':
        if (link.ws !== this.#conn.ws) return;
        // Reconnect at once, to the next URL. While closing no socket is opened, but
        // reports that fall back to HTTP go elsewhere; in the other modes a new socket
        // is already on its way.
        if (this.#mode === M.socket) this.#setMode(M.handover);
        else if (this.#mode === M.closing) this.#conn.urlIndex++;
        return;
      default:
        return; // error: informative
    }
  }

  #onClosed(link: Link, newest: boolean): void {
    this.#outputs.socketClosed(link.ws);
    this.#reporter.socketClosed(link.ws);
    // Replaced on purpose (a drain), or closing: nothing to reconnect.
    if (!newest || this.#mode === M.closing || this.#mode === M.closed) return;
    if (this.#mode === M.polling) this.#scheduleAttempt();
    else if (this.#conn.socketFailures >= this.#opts.socketFailuresBeforePolling) {
      this.#setMode(M.polling);
    } else this.#setMode(M.reconnecting);
  }

  /**
   * The hub counts in flight per connection; jobs that came through another connection
   * (or HTTP), and lost ones still running here, are not on this one's books, so the
   * capacity declared here leaves room for them. Re-declared whenever that count changes.
   */
  #declareCapacity(): void {
    if (this.#mode === M.closing) return;
    const capacity = Math.max(0, this.#opts.capacity - this.#jobs.unbooked());
    sendFrame(this.#conn, { type: 'ready', capacity });
  }

  // ---- jobs: the wire side (the table is jobs.ts) -------------------------------------

  /**
   * Reports the attempt's outcome once its output is stored (a result never overtakes
   * it: the hub refuses output after the result); its lease is renewed until then and
   * until the report settles.
   */
  async #report(job: Job, outcome: JobOutcome): Promise<void> {
    const { id, epoch } = job.request;
    await this.#outputs.flushed(id, epoch);
    if (job.lost) return; // lost while its output was being stored: nothing to report
    const report: Report = { id, epoch, ...deliverable(outcome, this.#conn.maxPayloadBytes) };
    if (job.trace) report.trace = job.trace;
    const accepted = await this.#reporter.report(report);
    this.emit('reported', { id, epoch, status: report.status, accepted });
  }
}

/** Connects a daemon to the hub and starts taking work. See `Daemon`. */
export function connectDaemon(options: DaemonOptions): Daemon {
  return new Daemon(options);
}
