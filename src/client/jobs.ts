/**
 * The daemon's job table: attempts (a request at one epoch, keyed by (id, epoch)), the
 * local bound of `capacity` handlers running at once, lease renewal, and the highest
 * epoch seen per request. The wire (socket or HTTP) belongs to the daemon (daemon.ts,
 * daemon-transport.ts); this module decides what runs, when, and what is renewed.
 *
 * - Never more than `capacity` handlers run (started and not returned), whatever the hub
 *   pushes or a heartbeat claims: the hub frees a slot as soon as it sends `lease_lost`,
 *   and a heartbeat's claims may meet a socket's pushes. A request past the bound waits
 *   its turn, in arrival order.
 * - Two handlers of one request never run side by side: a newer epoch kills the older
 *   attempts and waits until their handlers have returned.
 * - An attempt is renewed from the moment it is received (also while it waits for a
 *   slot or an older handler) until its report settles or it is lost. Before a waiting
 *   attempt starts it must still be held: not lost, not aborted, and its lease not known
 *   to have lapsed (the last confirmed renewal plus the lease length is still ahead).
 * - A push older than (or equal to) the newest epoch seen for its id is stale: after
 *   the newer attempt finished and left the table, an old socket may still deliver it.
 * - A lost attempt's output stops (`lease_lost`), also for writes its still-running
 *   handler makes later; the daemon is told when an attempt ends (`ended`).
 */

import type { DaemonRequest, TraceContext } from '../../protocol/index.js';
import { type Handler, runHandler } from './handler.js';
import { OutputError, rejected } from './output-chunk.js';
import { attemptKey, type JobOutcome } from './reporter.js';
import { endHandlerSpan, handlerSpan, runInSpan, wireTrace } from './trace.js';

/** One attempt: a request at one epoch. */
export interface Job {
  /** attemptKey(id, epoch): the key in the table. */
  readonly key: string;
  readonly request: DaemonRequest;
  /** This request's lease length, as far as this daemon's clock can tell. */
  readonly leaseMs: number;
  /** The socket generation it came through (0: HTTP polling). */
  readonly via: number;
  readonly controller: AbortController;
  renewTimer: NodeJS.Timeout | null;
  /** When the last renewal went out (local clock). */
  renewSentAt: number;
  /** Until when the lease is known to be held (local clock, conservative). */
  heldUntil: number;
  /** Waiting for a slot: call to start it (true) or give up on it (false). */
  wake: ((go: boolean) => void) | null;
  /**
   * Lost (cancelled, lease lost or lapsed, superseded by a newer epoch): no more
   * renewals, and an outcome its handler returns afterwards is not reported.
   */
  lost: boolean;
  /** The handler has returned (or will never run): a newer attempt may start. */
  handled: Promise<void>;
  /** Handled and reported: the job is gone. */
  done: Promise<void>;
  /**
   * The handler span's trace context, reported with the result. Only for a request that
   * came with a trace (a hub that sends none may not take one back).
   */
  trace: TraceContext | undefined;
}

/** What a renewal came to: confirmed, refused for good, or sent / failed (no news yet). */
export type RenewAnswer = 'renewed' | 'lost' | 'pending';

export interface JobsDeps {
  capacity: number;
  handlers: Record<string, Handler>;
  /** The generation of the socket in use (its jobs are on the hub's books for it). */
  current(): number;
  /** The node's lease length (from hello). */
  leaseMs(): number;
  /** Sends one renewal for the attempt. */
  renew(job: Job): Promise<RenewAnswer>;
  report(job: Job, outcome: JobOutcome): Promise<void>;
  /** Writes one chunk of the attempt's output (`ctx.output`). */
  output(job: Job, data: unknown): Promise<void>;
  /** The attempt is over: lost (its output stops with lease_lost) or gone from the table. */
  ended(job: Job, lost: boolean): void;
  /** The count of jobs off the current socket's books changed: declare capacity again. */
  booksChanged(): void;
  received(request: DaemonRequest): void;
  error(err: Error): void;
}

/** How many ids the stale-push check remembers (a few leases' worth of work). */
const HIGHEST_EPOCHS = 4_096;

export class Jobs {
  readonly #jobs = new Map<string, Job>();
  /** The newest epoch seen per id, least recently seen first. */
  readonly #highest = new Map<string, number>();
  /** Attempts ready to start but for a free slot, in arrival order. */
  readonly #queue: Job[] = [];
  #running = 0;

  constructor(private readonly deps: JobsDeps) {}

  get size(): number {
    return this.#jobs.size;
  }

  /** Handlers running now (started and not returned). */
  get running(): number {
    return this.#running;
  }

  all(): Job[] {
    return [...this.#jobs.values()];
  }

  /** Attempts whose lease this daemon still holds and renews (heartbeat `leases`). */
  held(): Job[] {
    return this.all().filter((j) => !j.lost);
  }

  /**
   * Jobs the hub does not count against the current socket: ones that came through
   * another connection (or HTTP), or lost ones whose handler or report still runs (the
   * hub freed the slot; this daemon has not let go of it yet).
   */
  unbooked(): number {
    let n = 0;
    for (const job of this.#jobs.values()) if (this.#offBooks(job)) n++;
    return n;
  }

  /** A claimed request arrived (pushed or from a heartbeat). */
  receive(request: DaemonRequest, via: number): void {
    const { id, epoch } = request;
    const seen = this.#highest.get(id);
    // A repeated push, or a stale one (the newer attempt may have finished and gone).
    if (seen !== undefined && seen >= epoch) return;
    this.#remember(id, epoch);
    const others = this.all().filter((j) => j.request.id === id);
    for (const old of others) this.kill(old, `superseded by epoch ${epoch}`);
    const previous = Promise.all(others.map((j) => j.handled));
    const now = Date.now();
    // The lease's length from its expiry, capped by the node's default (a daemon clock
    // behind the hub's would see it longer than it is), and never below 300 ms.
    const left = Date.parse(request.lease_expires_at) - now;
    const nodeLease = this.deps.leaseMs();
    const leaseMs = Math.max(300, Math.min(nodeLease, Number.isFinite(left) ? left : nodeLease));
    const job: Job = {
      key: attemptKey(id, epoch),
      request,
      leaseMs,
      via,
      controller: new AbortController(),
      renewTimer: null,
      renewSentAt: now,
      heldUntil: now + leaseMs,
      wake: null,
      lost: false,
      handled: Promise.resolve(),
      done: Promise.resolve(),
      trace: undefined,
    };
    this.#jobs.set(job.key, job);
    this.deps.received(request);
    this.#scheduleRenew(job);
    const outcome = previous.then(() => this.#slot(job)).then((go) => (go ? this.#run(job) : null));
    job.handled = outcome.then(
      () => {},
      () => {},
    );
    job.done = outcome
      .then((o) => (o && !job.lost ? this.deps.report(job, o) : undefined))
      .catch((err: unknown) => this.deps.error(err as Error))
      .finally(() => {
        if (job.renewTimer) clearTimeout(job.renewTimer);
        job.renewTimer = null;
        this.#jobs.delete(job.key);
        this.deps.ended(job, false);
        if (this.#offBooks(job)) this.deps.booksChanged();
      });
  }

  /** The hub says this attempt is no longer this daemon's. */
  lose(id: string, epoch: number, why: 'cancel' | 'lease_lost'): void {
    const job = this.#jobs.get(attemptKey(id, epoch));
    if (job) this.kill(job, why === 'cancel' ? 'cancelled' : 'lease lost');
  }

  /** A renewal sent at `sentAt` (or a heartbeat carrying the lease) was confirmed. */
  renewed(id: string, epoch: number, sentAt?: number): void {
    const job = this.#jobs.get(attemptKey(id, epoch));
    if (!job) return;
    job.heldUntil = Math.max(job.heldUntil, (sentAt ?? job.renewSentAt) + job.leaseMs);
  }

  /**
   * The attempt is dead: stop renewing, abort its handler (or never start it). A report
   * already under way is left to the hub to settle (it refuses a stale epoch; it may also
   * accept a report that raced the news), so the SDK never calls a result lost that the
   * hub has taken.
   */
  kill(job: Job, why: string): void {
    if (job.lost) return;
    job.lost = true;
    if (job.renewTimer) clearTimeout(job.renewTimer);
    job.renewTimer = null;
    job.controller.abort(new Error(why));
    this.#unqueue(job);
    this.deps.ended(job, true);
    this.deps.booksChanged();
  }

  /** close() gave up: abort every attempt; none that waits will start. */
  abortAll(why: string): void {
    for (const job of this.#jobs.values()) {
      job.controller.abort(new Error(why));
      this.#unqueue(job);
    }
  }

  #remember(id: string, epoch: number): void {
    this.#highest.delete(id);
    this.#highest.set(id, epoch);
    if (this.#highest.size > HIGHEST_EPOCHS) {
      const oldest = this.#highest.keys().next().value as string;
      this.#highest.delete(oldest);
    }
  }

  #offBooks(job: Job): boolean {
    return job.via !== this.deps.current() || job.lost;
  }

  /** Still this daemon's to run: not lost, not aborted, lease not known to have lapsed. */
  #startable(job: Job): boolean {
    if (job.lost || job.controller.signal.aborted) return false;
    if (Date.now() >= job.heldUntil) {
      this.kill(job, 'lease lapsed before the handler could start');
      return false;
    }
    return true;
  }

  /** Resolves true once the attempt holds a slot, false when it will never start. */
  #slot(job: Job): Promise<boolean> {
    if (!this.#startable(job)) return Promise.resolve(false);
    if (this.#running < this.deps.capacity) {
      this.#running++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      job.wake = resolve;
      this.#queue.push(job);
    });
  }

  #unqueue(job: Job): void {
    const wake = job.wake;
    if (!wake) return;
    job.wake = null;
    this.#queue.splice(this.#queue.indexOf(job), 1);
    wake(false);
  }

  /** A handler returned: the next attempt that is still held takes its slot. */
  #free(): void {
    this.#running--;
    while (this.#running < this.deps.capacity && this.#queue.length > 0) {
      const next = this.#queue.shift() as Job;
      const wake = next.wake as (go: boolean) => void;
      next.wake = null;
      if (!this.#startable(next)) {
        wake(false);
        continue;
      }
      this.#running++;
      wake(true);
    }
  }

  /** Runs the handler in the slot it holds; the outcome, or null when the attempt was lost. */
  async #run(job: Job): Promise<JobOutcome | null> {
    // The handler runs in a child span of the request's trace (a no-op without an SDK).
    const span = handlerSpan(job.request);
    if (job.request.trace) job.trace = wireTrace(span);
    let outcome: JobOutcome | null = null;
    try {
      const output = (data: unknown) =>
        job.lost
          ? rejected(new OutputError('lease_lost', "this attempt is no longer this daemon's"))
          : this.deps.output(job, data);
      outcome = await runInSpan(span, () =>
        runHandler(this.deps.handlers, job.request, job.controller.signal, output),
      );
      if (job.lost) outcome = null;
      return outcome;
    } finally {
      endHandlerSpan(span, outcome);
      this.#free();
    }
  }

  /** Renews the lease at a third of its length, from receipt until the report settles. */
  #scheduleRenew(job: Job): void {
    if (job.lost || this.#jobs.get(job.key) !== job) return;
    job.renewTimer = setTimeout(() => void this.#renew(job), job.leaseMs / 3);
  }

  async #renew(job: Job): Promise<void> {
    job.renewTimer = null;
    if (job.lost || this.#jobs.get(job.key) !== job) return;
    const sentAt = Date.now();
    job.renewSentAt = sentAt;
    const answer = await this.deps.renew(job);
    if (answer === 'lost') {
      this.kill(job, 'lease lost');
      return;
    }
    if (answer === 'renewed') this.renewed(job.request.id, job.request.epoch, sentAt);
    this.#scheduleRenew(job);
  }
}
