/**
 * Following one request's output for a reader (a client socket's subscription, an SSE
 * stream): every stored chunk past `after`, each once, in offset order (DESIGN.md
 * section 6). Output hints that continue exactly where the reader is are forwarded as
 * they are (no read); anything else (a gap, a hint without data, a hint during a read)
 * makes the follower read the store from its offset until it is caught up. Hints are
 * only hints: whoever holds a follower also calls `catchUp()` whenever hints may have
 * been lost (a relay reconnect) and before it reports the request terminal, so the
 * reader has all output before it learns there is no more.
 */
import type { OutputHint } from '../stores/hints.js';
import type { OutputRead, StoredChunk } from '../stores/store.js';

/** Chunks per store read while catching up. */
export const FOLLOW_PAGE = 500;

export type ReadOutput = (after: number, limit: number) => Promise<OutputRead | null>;

export class OutputFollower {
  #reading: Promise<boolean> | null = null;
  #again = false;

  constructor(
    private readonly read: ReadOutput,
    /** The last offset the reader has. */
    public after: number,
    private readonly emit: (chunk: StoredChunk) => void,
    /** Awaited between pages of a catch-up: a reader that does not keep up slows it. */
    private readonly paced?: () => Promise<void>,
  ) {}

  /** An output hint of the request, at the epoch it names. */
  onHint(out: OutputHint, epoch: number): void {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    const last = out.from + out.count - 1;
    if (last <= this.after) return;
    if (out.data && out.from <= this.after + 1) {
      for (let i = this.after + 1 - out.from; i < out.count; i++) {
        this.emit({ offset: out.from + i, epoch, data: JSON.stringify(out.data[i]) });
      }
      this.after = last;
      return;
    }
    this.catchUp().catch(() => {
      // The store did not answer: the next hint, reconnect or terminal state reads again.
    });
  }

  /**
   * Reads and emits everything stored past `after`. Resolves true when the request is
   * terminal with all its output emitted (or gone). A call during a read joins it, and
   * that read goes once more round, so nothing stored before the call is missed.
   */
  catchUp(): Promise<boolean> {
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    const reading = this.#loop().finally(() => {
      this.#reading = null;
    });
    this.#reading = reading;
    return reading;
  }

  async #loop(): Promise<boolean> {
    for (;;) {
      this.#again = false;
      const page = await this.read(this.after, FOLLOW_PAGE);
      if (!page) return true;
      for (const c of page.chunks) {
        if (c.offset <= this.after) continue;
        this.emit(c);
        this.after = c.offset;
      }
      if (page.chunks.length < FOLLOW_PAGE && !this.#again) return page.done;
      if (this.paced) await this.paced();
    }
  }
}
