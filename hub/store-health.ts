/**
 * Whether this node can reach its store (DESIGN.md section 7). The store is pinged on a
 * timer, each ping bounded by a short timeout; store_unavailable errors seen elsewhere
 * ask for an early ping. The store counts as lost only when no ping has succeeded for
 * `lostAfterMs` and the latest one failed: one slow call alone never decides it. Lost:
 * `onLost` runs once (the hub drains its daemons); the next successful ping runs `onBack`.
 */
import type { Logger } from 'pino';

export interface StoreHealthOptions {
  ping: () => Promise<unknown>;
  lostAfterMs: number;
  onLost: () => void;
  onBack: () => void;
  logger: Logger;
}

/** Pings happen this often at most (a fifth of the loss window, within these bounds). */
const MIN_PING_MS = 50;
const MAX_PING_MS = 1_000;
/**
 * A ping may take as long as any store command may (the store's 2 s command bound), or
 * the whole loss window if that is shorter: a store that answers slowly is not lost.
 */
const PING_TIMEOUT_MS = 2_000;

export class StoreHealth {
  #lost = false;
  #lastOk = Date.now();
  #inFlight = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;

  constructor(private readonly opts: StoreHealthOptions) {
    this.#intervalMs = Math.min(MAX_PING_MS, Math.max(MIN_PING_MS, opts.lostAfterMs / 5));
    this.#timeoutMs = Math.max(this.#intervalMs, Math.min(PING_TIMEOUT_MS, opts.lostAfterMs));
  }

  /** True while the store has been unreachable for the whole loss window. */
  get lost(): boolean {
    return this.#lost;
  }

  start(): void {
    if (this.#timer) return;
    this.#lastOk = Date.now();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** A store_unavailable error was seen: check now rather than at the next tick. */
  failed(): void {
    if (this.#timer) void this.check();
  }

  /** One bounded ping; decides lost or back. */
  async check(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.opts.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('store ping timed out')), this.#timeoutMs);
        }),
      ]);
      this.#lastOk = Date.now();
      if (this.#lost && this.#timer !== null) {
        this.#lost = false;
        this.opts.logger.info('store reachable again; taking daemons again');
        this.opts.onBack();
      }
    } catch (err) {
      // Stopped meanwhile (shutdown): its own drain decides, not a late ping.
      if (this.#timer === null) return;
      if (!this.#lost && Date.now() - this.#lastOk >= this.opts.lostAfterMs) {
        this.#lost = true;
        this.opts.logger.warn(
          { err: (err as Error).message, lostAfterMs: this.opts.lostAfterMs },
          'store unreachable; draining daemons to other nodes',
        );
        this.opts.onLost();
      }
    } finally {
      clearTimeout(timer);
      this.#inFlight = false;
    }
  }
}
