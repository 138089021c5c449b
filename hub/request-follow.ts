/**
 * One request followed to its end, as a sequence of events: its state on every change
 * and each output chunk past `after`, each once and in order, ending after the terminal
 * state (which comes after all output). What `GET .../requests/:id/events` streams as
 * SSE (DESIGN.md section 6).
 *
 * Order of work as for every waiter: subscribe to the runtime's updates, then read the
 * record, then catch up the output, then forward hints. Hints can be lost: while the
 * subscription is not live, after a relay reconnect, and every RECHECK_MS regardless,
 * the follow reads the record and the output again. Its queue of events is bounded: a
 * reader that falls `maxQueuedBytes` behind is ended (`next()` rejects `lagging`), and
 * resumes by reconnecting with the last offset it has, like a socket closed with 1013.
 */
import { TERMINAL } from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import { parseHint, type UpdateHint } from '../stores/hints.js';
import { runtimeKeys } from '../stores/keys.js';
import type { RequestStore, StoredChunk } from '../stores/store.js';
import { OutputFollower } from './output-follow.js';
import type { Relay } from './relay.js';

const RECHECK_MS = 5_000;
const UNSUBSCRIBED_RECHECK_MS = 500;
/** How long opening waits for the subscription before it relies on re-reads. */
const SUBSCRIBE_WAIT_MS = 1_000;

export type FollowEvent =
  | { type: 'state'; record: RequestRecord }
  | { type: 'output'; chunk: StoredChunk };

export class FollowLagging extends Error {
  override readonly name = 'FollowLagging';
}

export class RequestFollow {
  readonly #queue: FollowEvent[] = [];
  #queuedBytes = 0;
  #wake: (() => void) | null = null;
  #ended = false;
  #failed: Error | null = null;
  #closed = false;
  /** State events are produced one after another: a later state never overtakes. */
  #chain: Promise<void> = Promise.resolve();
  #lastMark = '';
  #timer: NodeJS.Timeout | null = null;
  #offs: (() => void)[] = [];
  readonly #follower: OutputFollower;

  private constructor(
    private readonly store: RequestStore,
    private readonly rt: RuntimeRef,
    private readonly id: string,
    after: number,
    private readonly maxQueuedBytes: number,
  ) {
    this.#follower = new OutputFollower(
      (from, limit) => store.readOutput(rt, id, { after: from, limit }),
      after,
      (chunk) => this.#push({ type: 'output', chunk }, chunk.data.length),
    );
  }

  /** Follows `id` from output offset `after`; null when there is no such request. */
  static async open(
    store: RequestStore,
    relay: Relay,
    rt: RuntimeRef,
    id: string,
    after: number,
    maxQueuedBytes: number,
    abort?: AbortSignal,
  ): Promise<RequestFollow | null> {
    const follow = new RequestFollow(store, rt, id, after, maxQueuedBytes);
    if (abort) {
      // The node shuts down: the stream ends, and the reader resumes on another node.
      const onAbort = () => follow.close();
      abort.addEventListener('abort', onAbort, { once: true });
      follow.#offs.push(() => abort.removeEventListener('abort', onAbort));
    }
    const channel = runtimeKeys(store.settings.prefix, rt).updates;
    const quoted = `"${id}"`;
    let buffered: string[] | null = [];
    follow.#offs.push(
      relay.subscribe(channel, (m) => {
        if (!m.includes(quoted)) return;
        if (buffered) buffered.push(m);
        else follow.#onHint(m);
      }),
      relay.onReconnect(() => follow.#recheck()),
    );
    try {
      const live = await relay.subscribed(channel, SUBSCRIBE_WAIT_MS);
      const record = await store.get(rt, id);
      if (!record) {
        follow.close();
        return null;
      }
      await follow.#follower.catchUp();
      follow.#state(record);
      follow.#schedule(live ? RECHECK_MS : UNSUBSCRIBED_RECHECK_MS, relay, channel);
    } catch (err) {
      follow.close();
      throw err;
    }
    const early = buffered;
    buffered = null;
    for (const m of early) follow.#onHint(m);
    return follow;
  }

  /** The next event; null once the terminal state was given (or the follow closed). */
  async next(): Promise<FollowEvent | null> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) {
        this.#queuedBytes -= event.type === 'output' ? event.chunk.data.length : 0;
        return event;
      }
      if (this.#failed) throw this.#failed;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = null;
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const off of this.#offs) off();
    this.#offs = [];
    this.#wake?.();
  }

  #push(event: FollowEvent, bytes = 0): void {
    if (this.#closed || this.#ended) return;
    this.#queue.push(event);
    this.#queuedBytes += bytes;
    if (this.#queuedBytes > this.maxQueuedBytes) {
      this.#failed = new FollowLagging('the reader fell too far behind');
      this.#queue.length = 0;
      this.close();
    }
    this.#wake?.();
  }

  /** Queues a state unless it repeats the last one; the terminal one ends the follow. */
  #state(record: RequestRecord): void {
    const mark = `${record.status}:${record.epoch}`;
    if (mark === this.#lastMark) return;
    this.#lastMark = mark;
    this.#push({ type: 'state', record });
    if (TERMINAL.has(record.status)) {
      this.#ended = true;
      this.close();
    }
  }

  #onHint(message: string): void {
    const hint = parseHint(message);
    if (!hint || hint.id !== this.id) return;
    if (hint.output) {
      this.#follower.onHint(hint.output, hint.epoch);
      return;
    }
    this.#then(() => this.#stateOf(hint));
  }

  async #stateOf(hint: UpdateHint): Promise<void> {
    // All output goes out before the state that says there is no more.
    if (TERMINAL.has(hint.status)) await this.#follower.catchUp();
    const record = hint.record ?? (await this.store.get(this.rt, this.id));
    if (record) this.#state(record);
  }

  /** Reads record and output again (hints may have been lost). */
  #recheck(): void {
    this.#then(async () => {
      await this.#follower.catchUp();
      const record = await this.store.get(this.rt, this.id);
      if (record) this.#state(record);
    });
  }

  #then(work: () => Promise<void>): void {
    this.#chain = this.#chain.then(work).catch(() => {
      // The store did not answer: the next recheck reads again.
    });
  }

  #schedule(ms: number, relay: Relay, channel: string): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#recheck();
      void relay.subscribed(channel, 0).then((live) => {
        this.#schedule(live ? RECHECK_MS : UNSUBSCRIBED_RECHECK_MS, relay, channel);
      });
    }, ms);
    this.#timer.unref();
  }
}
