/**
 * Exponential backoff with full jitter: the n-th delay is uniform in
 * [0, min(maxMs, initialMs * 2^n)], so a crowd of daemons that lost the same node does
 * not come back in lockstep.
 */
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
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
