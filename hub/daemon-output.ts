/**
 * A daemon socket's `output` frames (DESIGN.md section 6), on their way to the store.
 * Chunks of one attempt (id, epoch) are stored in the order they came, one store call
 * at a time; chunks that arrive while a call is out wait and go together in the next
 * call, so a fast stream costs one script per batch rather than per chunk. At most
 * `STORE_CALLS_PER_SOCKET` calls of one socket are out at once, and the chunks waiting
 * are bounded in number and bytes: past that a frame is refused (the caller answers a
 * retryable `nack`, and the daemon sends it again after a backoff), never queued
 * without end. Once a frame of an attempt is refused, the later frames of that attempt
 * are refused too until the refused seq comes again: taking them would hand the store a
 * seq gap, which it refuses for good (`invalid_message`).
 */
import type { OutputWrite } from '../stores/store.js';
import { STORE_CALLS_PER_SOCKET } from './socket-work.js';

/** Chunks waiting (not yet in a store call) per socket. */
export const OUTPUT_CHUNKS_WAITING = 4096;
/** Attempts held after a refusal, per socket; past it the oldest hold is forgotten. */
const HELD_ATTEMPTS = 1024;

interface Line {
  readonly key: string;
  readonly id: string;
  readonly epoch: number;
  writes: OutputWrite[];
  bytes: number;
  /** A store call for this line is out, or the line waits for a free call. */
  busy: boolean;
}

/** Stores one batch of a line and answers the daemon; must not reject. */
export type StoreBatch = (id: string, epoch: number, writes: OutputWrite[]) => Promise<void>;

export class OutputWriter {
  readonly #lines = new Map<string, Line>();
  /** Lines with chunks and no call out, waiting for one of the socket's calls. */
  readonly #ready: Line[] = [];
  /** Attempts with a refused frame: the lowest refused seq, which must come again first. */
  readonly #held = new Map<string, number>();
  #calls = 0;
  #chunks = 0;
  #bytes = 0;

  constructor(
    private readonly store: StoreBatch,
    private readonly maxBytes: number,
    private readonly maxChunks = OUTPUT_CHUNKS_WAITING,
    private readonly maxCalls = STORE_CALLS_PER_SOCKET,
  ) {}

  /**
   * Queues a chunk; false (nothing taken) when the socket's waiting chunks are full, or
   * when an earlier seq of the attempt was refused and has not come again.
   */
  offer(id: string, epoch: number, write: OutputWrite): boolean {
    const size = write.data.length;
    const key = `${epoch}:${id}`;
    const held = this.#held.get(key);
    if (held !== undefined && write.seq > held) return false;
    if (this.#chunks + 1 > this.maxChunks || this.#bytes + size > this.maxBytes) {
      this.#hold(key, write.seq);
      return false;
    }
    if (held !== undefined) this.#held.delete(key);
    let line = this.#lines.get(key);
    if (!line) {
      line = { key, id, epoch, writes: [], bytes: 0, busy: false };
      this.#lines.set(key, line);
    }
    line.writes.push(write);
    line.bytes += size;
    this.#chunks += 1;
    this.#bytes += size;
    if (!line.busy) {
      line.busy = true;
      this.#ready.push(line);
      this.#next();
    }
    return true;
  }

  #hold(key: string, seq: number): void {
    const held = this.#held.get(key);
    if (held !== undefined && held <= seq) return;
    this.#held.delete(key);
    this.#held.set(key, seq);
    if (this.#held.size > HELD_ATTEMPTS)
      this.#held.delete(this.#held.keys().next().value as string);
  }

  #next(): void {
    while (this.#calls < this.maxCalls) {
      const line = this.#ready.shift();
      if (!line) return;
      this.#calls += 1;
      const { writes, bytes } = line;
      line.writes = [];
      line.bytes = 0;
      const done = () => this.#done(line, writes.length, bytes);
      this.store(line.id, line.epoch, writes).then(done, done);
    }
  }

  #done(line: Line, chunks: number, bytes: number): void {
    this.#calls -= 1;
    this.#chunks -= chunks;
    this.#bytes -= bytes;
    if (line.writes.length > 0) this.#ready.push(line);
    else {
      line.busy = false;
      this.#lines.delete(line.key);
    }
    this.#next();
  }
}
