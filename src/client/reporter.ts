/**
 * Reports results until the hub settles them. A report goes over the socket when one is
 * up (and waits for its ack or nack), otherwise over HTTP. It is retried after a nack
 * with `retry: true`, a network error, a 5xx, a socket that closed before answering, or
 * no answer in time; it stops on an ack or 200 (accepted) or on a refusal (nack without
 * retry, 409: the lease is no longer this daemon's).
 */
import type { WebSocket } from 'ws';
import type { ErrorInfo } from '../../stores/domain.js';
import { Backoff } from './backoff.js';

export type JobOutcome =
  | { status: 'completed'; result: unknown }
  | { status: 'failed'; error: ErrorInfo };
export type Report = { id: string; epoch: number } & JobOutcome;

interface Pending {
  report: Report;
  settle: (accepted: boolean) => void;
  backoff: Backoff;
  /** The socket the last attempt went through, while its answer is awaited. */
  sentOn: WebSocket | null;
  timer: NodeJS.Timeout | null;
}

export interface ReporterDeps {
  http(path: string, body: unknown): Promise<{ status: number }>;
  socket(): WebSocket | null;
  backoff: Backoff;
}

const ANSWER_TIMEOUT_MS = 10_000;

export class Reporter {
  readonly #pending = new Map<string, Pending>();
  #stopped = false;
  constructor(private readonly deps: ReporterDeps) {}

  /** Resolves true when the hub accepted the report, false when it refused it for good. */
  report(report: Report): Promise<boolean> {
    return new Promise((resolve) => {
      const p: Pending = {
        report,
        backoff: new Backoff(100, 5_000),
        sentOn: null,
        timer: null,
        settle: (accepted) => {
          if (p.timer) clearTimeout(p.timer);
          this.#pending.delete(report.id);
          resolve(accepted);
        },
      };
      this.#pending.set(report.id, p);
      this.#attempt(p);
    });
  }

  has(id: string): boolean {
    return this.#pending.has(id);
  }

  /** An ack or nack frame from the socket. */
  answer(frame: { type: 'ack' | 'nack'; id: string; epoch: number; retry?: boolean }): void {
    const p = this.#pending.get(frame.id);
    if (!p || p.report.epoch !== frame.epoch) return;
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

  /** The job was lost while its report was pending: stop reporting it. */
  drop(id: string): void {
    this.#pending.get(id)?.settle(false);
  }

  stop(): void {
    this.#stopped = true;
    for (const p of [...this.#pending.values()]) p.settle(false);
  }

  #attempt(p: Pending): void {
    if (this.#stopped) return;
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
          if (!this.#pending.has(id)) return;
          if (res.status === 200) p.settle(true);
          else if (res.status >= 400 && res.status < 500) p.settle(false);
          else this.#retryLater(p);
        },
        () => this.#retryLater(p),
      );
  }

  #retryLater(p: Pending): void {
    if (this.#stopped || !this.#pending.has(p.report.id)) return;
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => this.#attempt(p), p.backoff.next());
  }
}
