/**
 * Reports results until the hub settles them. A report goes over the socket when one is
 * up (and waits for its ack or nack), otherwise over HTTP. It is retried after a nack
 * with `retry: true`, a network error, a socket that closed before answering, no answer
 * in time, or any HTTP answer that is not the hub's own final refusal (answers.ts: a
 * proxy's 408 or 429, a bare 404, a 5xx; after `Retry-After` when given). It stops on an
 * ack or 2xx (accepted), or on a refusal (nack without retry; the hub's lease_lost,
 * not_found, already_terminal, invalid_request ... error body).
 *
 * Pending reports are keyed by (id, epoch), and an answer settles only the report it was
 * sent for: a late answer for an attempt already given up never settles a newer one.
 */
import type { WebSocket } from 'ws';
import {
  Backoff,
  type ErrorInfo,
  type ReportAnswer,
  type TraceContext,
} from '../../protocol/index.js';
import { type HttpAnswer, jitteredRetryAfter, verdict } from './answers.js';

export type JobOutcome =
  | { status: 'completed'; result: unknown }
  | { status: 'failed'; error: ErrorInfo };
/** `trace`: the handler span's context (the hub's report span becomes its child). */
export type Report = { id: string; epoch: number; trace?: TraceContext } & JobOutcome;

interface Pending {
  report: Report;
  settle: (accepted: boolean) => void;
  backoff: Backoff;
  /** The socket the last attempt went through, while its answer is awaited. */
  sentOn: WebSocket | null;
  timer: NodeJS.Timeout | null;
  settled: boolean;
}

export interface ReporterDeps {
  http(path: string, body: unknown): Promise<HttpAnswer>;
  socket(): WebSocket | null;
  backoff: Backoff;
}

const ANSWER_TIMEOUT_MS = 10_000;
/** A Retry-After longer than this is not taken at its word (a proxy's, most likely). */
const MAX_RETRY_AFTER_MS = 60_000;

/** The key of one attempt's report. */
export const attemptKey = (id: string, epoch: number): string => `${epoch}:${id}`;

export class Reporter {
  readonly #pending = new Map<string, Pending>();
  #stopped = false;
  constructor(private readonly deps: ReporterDeps) {}

  /** Resolves true when the hub accepted the report, false when it refused it for good. */
  report(report: Report): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    const key = attemptKey(report.id, report.epoch);
    this.#pending.get(key)?.settle(false); // the same attempt reported twice: the last wins
    return new Promise((resolve) => {
      const p: Pending = {
        report,
        backoff: new Backoff(100, 5_000),
        sentOn: null,
        timer: null,
        settled: false,
        settle: (accepted) => {
          if (p.settled) return;
          p.settled = true;
          if (p.timer) clearTimeout(p.timer);
          p.timer = null;
          if (this.#pending.get(key) === p) this.#pending.delete(key);
          resolve(accepted);
        },
      };
      this.#pending.set(key, p);
      this.#attempt(p);
    });
  }

  /** An ack or nack frame from the socket. */
  answer(frame: ReportAnswer): void {
    const p = this.#pending.get(attemptKey(frame.id, frame.epoch));
    if (!p) return;
    p.sentOn = null;
    if (frame.type === 'ack') p.settle(true);
    else if (!frame.retry) p.settle(false);
    else this.#retryLater(p);
  }

  /** Reports awaiting an answer on a socket that closed: try again. */
  socketClosed(ws: WebSocket): void {
    for (const p of this.#pending.values()) {
      if (p.sentOn === ws) {
        p.sentOn = null;
        this.#retryLater(p);
      }
    }
  }

  /** A new socket is up: send what is waiting for a retry now. */
  resend(): void {
    for (const p of this.#pending.values()) {
      if (p.sentOn === null && p.timer) {
        clearTimeout(p.timer);
        p.timer = null;
        this.#attempt(p);
      }
    }
  }

  /** Stop reporting this attempt (its outcome no longer matters). */
  drop(id: string, epoch: number): void {
    this.#pending.get(attemptKey(id, epoch))?.settle(false);
  }

  stop(): void {
    this.#stopped = true;
    for (const p of [...this.#pending.values()]) p.settle(false);
  }

  #attempt(p: Pending): void {
    if (this.#stopped || p.settled) return;
    p.timer = null;
    const { id, epoch, ...outcome } = p.report;
    const ws = this.deps.socket();
    if (ws) {
      p.sentOn = ws;
      ws.send(JSON.stringify({ type: 'result', id, epoch, ...outcome }));
      p.timer = setTimeout(() => {
        p.sentOn = null;
        this.#attempt(p);
      }, ANSWER_TIMEOUT_MS);
      return;
    }
    this.deps
      .http(`/v1/daemon/requests/${encodeURIComponent(id)}/result`, { epoch, ...outcome })
      .then(
        (res) => {
          if (p.settled) return; // given up meanwhile: this answer is for nobody
          const v = verdict(res);
          if (v.kind === 'ok') p.settle(true);
          else if (v.kind === 'final') p.settle(false);
          else this.#retryLater(p, v.afterMs);
        },
        () => this.#retryLater(p),
      );
  }

  #retryLater(p: Pending, afterMs?: number): void {
    if (this.#stopped || p.settled) return;
    if (p.timer) clearTimeout(p.timer);
    const backoff = p.backoff.next();
    const delay = afterMs === undefined ? backoff : jitteredRetryAfter(afterMs, MAX_RETRY_AFTER_MS);
    p.timer = setTimeout(() => this.#attempt(p), delay);
  }
}
