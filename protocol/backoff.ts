/**
 * Exponential backoff with full jitter, the one formula every reconnect and retry
 * uses: the n-th delay is uniform in [0, min(maxMs, initialMs * 2^n)], so a crowd of
 * daemons or browsers that lost the same node does not come back in lockstep.
 */

/** The ceiling of the `attempt`-th delay (0-based). */
export function backoffCeiling(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

export class Backoff {
  #attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  /** The next delay, and one step further. */
  next(): number {
    const cap = this.peek();
    this.#attempt++;
    return Math.random() * cap;
  }

  /** The current ceiling, without stepping. */
  peek(): number {
    return backoffCeiling(this.#attempt, this.initialMs, this.maxMs);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
