/**
 * Bounds on the store work one socket can start (DESIGN.md section 7): a token holder
 * that sends valid frames at wire speed keeps at most `STORE_CALLS_PER_SOCKET` store
 * calls of its node in flight, and at most a bounded backlog waiting; past that its
 * frames are refused (`limit_exceeded`, or a retryable `nack` for a result), never
 * queued without end.
 *
 * - `WorkQueue` holds frames (data, not closures) and runs each through one handler
 *   fixed per socket: the daemon socket's renew and result frames.
 * - `StoreGate` is a counting semaphore for store calls made in several steps (a client
 *   subscription's snapshot reads); callers past the bound wait in FIFO order, and a
 *   frame that would start more work is refused while the waiting line is full.
 */

/** Store calls in flight per socket. */
export const STORE_CALLS_PER_SOCKET = 8;
/** Frames (or store calls) waiting per socket behind those in flight. */
export const STORE_QUEUE_PER_SOCKET = 256;

export class WorkQueue<T> {
  #running = 0;
  readonly #queue: T[] = [];
  readonly #next = (): void => {
    this.#running -= 1;
    const item = this.#queue.shift();
    if (item !== undefined) this.#start(item);
  };

  constructor(
    private readonly run: (item: T) => Promise<void>,
    private readonly maxRunning = STORE_CALLS_PER_SOCKET,
    private readonly maxQueued = STORE_QUEUE_PER_SOCKET,
  ) {}

  get running(): number {
    return this.#running;
  }

  /** Starts `item`, or queues it; false when both are full (nothing was taken). */
  offer(item: T): boolean {
    if (this.#running < this.maxRunning) {
      this.#start(item);
      return true;
    }
    if (this.#queue.length >= this.maxQueued) return false;
    this.#queue.push(item);
    return true;
  }

  #start(item: T): void {
    this.#running += 1;
    // `run` reports its own failures; a rejection here only frees the slot.
    this.run(item).then(this.#next, this.#next);
  }
}

export class StoreGate {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    private readonly maxRunning = STORE_CALLS_PER_SOCKET,
    private readonly maxWaiting = STORE_QUEUE_PER_SOCKET,
  ) {}

  /** Whether new work should be refused: the waiting line is full. */
  get full(): boolean {
    return this.#waiting.length >= this.maxWaiting;
  }

  /** Runs `work` once a slot is free; the slot is handed straight to the next waiter. */
  async call<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running < this.maxRunning) this.#running += 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}
