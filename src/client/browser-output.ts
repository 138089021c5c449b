/**
 * The browser client's `output()` / `onOutput()`: one request's output chunks, each once,
 * in offset order, to the end of the request (DESIGN.md section 6).
 *
 * While the socket is up, `output` frames carry the chunks: the listener asks the hub
 * for the output past the last offset it has, again after every reconnect (the socket
 * sends `after`). The end is the terminal state (a `request` frame or the snapshot):
 * the hub sends all output before it. HTTP pages (`GET .../output?after=&limit=`) carry
 * the chunks while the socket is down or cannot be had (polled with a short backoff
 * until `done`), and fill in wherever the socket cannot vouch for the whole sequence:
 * a gap in the offsets, an `error` frame, a snapshot without the request, or a listener
 * that joined a request this socket already streamed (the hub follows each request
 * once per socket, so nothing before the join is sent again): such a listener checks
 * `done` over HTTP before it ends. Offsets are the only truth: a chunk at or below the
 * last one delivered is dropped, one past a gap waits until the gap is filled.
 */
import { Backoff } from '../../protocol/backoff.js';
import { FINAL_HTTP_STATUSES } from '../../protocol/codes.js';
import type { OutputChunk, OutputPage, Request } from '../../protocol/index.js';
import { isTerminal } from '../../protocol/status.js';
import { type Call, closedError, SwitchboardError } from './browser-http.js';
import type { Listener, SharedSocket } from './browser-socket.js';

/** Chunks per HTTP read (the hub's MAX_OUTPUT_PAGE). */
const PAGE = 1000;
/**
 * After this long without a frame for the stream on an open socket, one HTTP read (a
 * safety net, as `result()` has: a frame the hub could not send would leave it waiting).
 */
const SOCKET_RECHECK_MS = 20_000;

export interface OutputDeps {
  socket: SharedSocket;
  call: Call;
  /** Aborts when the client is closed. */
  closing: AbortSignal;
}

export interface OutputSink {
  chunk(chunk: OutputChunk): void;
  /** The stream ended: all output delivered (no error), or it cannot go on. */
  end(error?: SwitchboardError): void;
}

export interface OutputOptions {
  /** Start after this offset (default 0: the whole output). */
  after?: number;
  /** HTTP poll delays while the socket is down: doubling, full jitter. Default 100..2000 ms. */
  poll?: { initialMs?: number; maxMs?: number };
}

/** Follows one request's output into `sink`; returns the function that stops it. */
export function followOutput(
  deps: OutputDeps,
  runtime: string,
  id: string,
  path: string,
  opts: OutputOptions,
  sink: OutputSink,
): () => void {
  const stream = new OutputStream(deps, runtime, id, path, opts, sink);
  return () => stream.stop();
}

class OutputStream {
  #last: number;
  /** Socket chunks past a gap, by offset, until the gap is filled. */
  readonly #pending = new Map<number, OutputChunk>();
  #terminal = false;
  /** The socket cannot vouch for everything before its next chunk: read over HTTP. */
  #unsure = false;
  /** Counts the events that made it unsure: one during a read is not settled by it. */
  #asks = 0;
  #kick: (() => void) | null = null;
  readonly #stop = new AbortController();
  readonly #listener: Listener;
  readonly #poll: Backoff;

  constructor(
    private readonly deps: OutputDeps,
    private readonly runtime: string,
    private readonly id: string,
    private readonly path: string,
    opts: OutputOptions,
    private readonly sink: OutputSink,
  ) {
    this.#last = opts.after ?? 0;
    this.#poll = new Backoff(opts.poll?.initialMs ?? 100, opts.poll?.maxMs ?? 2_000);
    this.#listener = {
      runtime,
      ids: new Set([id]),
      output: () => this.#last,
      onEvent: (event) => this.#onEvent(event),
    };
    const { socket, closing } = deps;
    if (closing.aborted) {
      this.#finish(closedError());
      return;
    }
    closing.addEventListener('abort', this.#onClose);
    this.#unsure = socket.isFollowing(runtime, id);
    socket.add(this.#listener);
    void this.#run();
  }

  stop(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.deps.closing.removeEventListener('abort', this.#onClose);
    this.deps.socket.remove(this.#listener);
  }

  readonly #onClose = () => this.#finish(closedError());

  #finish(error?: SwitchboardError): void {
    if (this.#stop.signal.aborted) return;
    this.stop();
    this.sink.end(error);
  }

  #wake(): void {
    this.#kick?.();
  }

  #onEvent(event: Parameters<Listener['onEvent']>[0]): void {
    switch (event.type) {
      case 'output':
        this.#take({ offset: event.offset, epoch: event.epoch, data: event.data });
        break;
      case 'request':
        if (isTerminal(event.request.status)) this.#terminal = true;
        break;
      case 'snapshot': {
        const found = event.requests.find((r: Request) => r.id === this.id);
        if (found && isTerminal(found.status)) this.#terminal = true;
        // Not in it: ended before the subscription was served, or no such request.
        if (!found) this.#ask();
        break;
      }
      case 'error':
        // The hub could not serve something of this socket: read over HTTP meanwhile.
        if (event.runtime === undefined || event.runtime === this.runtime) this.#ask();
        break;
      case 'connection':
        // A fresh socket streams from this listener's offset (or an earlier one).
        if (event.mode === 'open') this.#unsure = false;
        break;
    }
    this.#wake();
  }

  #ask(): void {
    this.#unsure = true;
    this.#asks += 1;
  }

  /** Delivers chunks in offset order: at or below the last dropped, past a gap kept. */
  #take(chunk: OutputChunk): void {
    if (chunk.offset <= this.#last || this.#stop.signal.aborted) return;
    if (chunk.offset > this.#last + 1) {
      this.#pending.set(chunk.offset, chunk);
      return;
    }
    this.#deliver(chunk);
    for (
      let next = this.#pending.get(this.#last + 1);
      next;
      next = this.#pending.get(this.#last + 1)
    ) {
      this.#pending.delete(next.offset);
      this.#deliver(next);
    }
    for (const offset of this.#pending.keys())
      if (offset <= this.#last) this.#pending.delete(offset);
  }

  #deliver(chunk: OutputChunk): void {
    this.#last = chunk.offset;
    try {
      this.sink.chunk(chunk);
    } catch (err) {
      console.error('switchboard: an output callback threw', err);
    }
  }

  /** Whether the socket is up (or about to be) and carries the stream alone. */
  #socketCarries(): boolean {
    const { mode } = this.deps.socket;
    return (mode === 'open' || mode === 'connecting') && !this.#unsure && this.#pending.size === 0;
  }

  async #run(): Promise<void> {
    const errors = new Backoff(250, 10_000);
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (this.#socketCarries()) {
        if (this.#terminal) return this.#finish();
        if (await this.#idle(SOCKET_RECHECK_MS)) this.#ask();
        continue;
      }
      const asks = this.#asks;
      let page: OutputPage;
      try {
        page = await this.deps.call<OutputPage>(
          'GET',
          `${this.path}/output?after=${this.#last}&limit=${PAGE}`,
          { signal },
        );
        errors.reset();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof SwitchboardError && FINAL_HTTP_STATUSES.has(err.status)) {
          return this.#finish(err);
        }
        await this.#idle(errors.next());
        continue;
      }
      for (const chunk of page.chunks) this.#take(chunk);
      if (page.done && this.#pending.size === 0) return this.#finish();
      if (page.chunks.length === PAGE) continue;
      // Everything stored when the read began is in: the socket carries the rest, if up.
      if (this.#asks === asks) this.#unsure = false;
      if (page.chunks.length > 0) this.#poll.reset();
      if (!this.#socketCarries()) await this.#idle(this.#poll.next());
    }
  }

  /**
   * Waits for the listener's next event (socket mode changes come as `connection`
   * events), or `ms`, or the stop. Resolves true when `ms` passed.
   */
  #idle(ms: number): Promise<boolean> {
    const signal = this.#stop.signal;
    return new Promise((resolve) => {
      const done = (timedOut: boolean) => {
        clearTimeout(timer);
        this.#kick = null;
        signal.removeEventListener('abort', onAbort);
        resolve(timedOut);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(true), ms);
      this.#kick = () => done(false);
      signal.addEventListener('abort', onAbort);
    });
  }
}

/**
 * An async iterator over `follow`'s chunks. Chunks that come faster than the loop takes
 * them queue up (the hub does not wait for a reader: at most a request's output limit).
 */
export function outputIterator(
  follow: (sink: OutputSink) => () => void,
): AsyncIterableIterator<OutputChunk> {
  const queue: OutputChunk[] = [];
  let ended = false;
  let failure: SwitchboardError | undefined;
  let waiter: (() => void) | null = null;
  const stop = follow({
    chunk(c) {
      queue.push(c);
      waiter?.();
    },
    end(error) {
      ended = true;
      failure = error;
      waiter?.();
    },
  });
  const finished = (): IteratorResult<OutputChunk> => ({ done: true, value: undefined });
  const iterator: AsyncIterableIterator<OutputChunk> = {
    async next() {
      for (;;) {
        const chunk = queue.shift();
        if (chunk) return { done: false, value: chunk };
        if (ended) {
          const err = failure;
          failure = undefined;
          if (err) throw err;
          return finished();
        }
        await new Promise<void>((resolve) => {
          waiter = () => {
            waiter = null;
            resolve();
          };
        });
      }
    },
    async return() {
      ended = true;
      queue.length = 0;
      stop();
      waiter?.();
      return finished();
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
