/**
 * Output streams, the daemon side (DESIGN.md section 6): `ctx.output(data)` until the
 * hub has stored each chunk. One stream per attempt (id, epoch), numbered `seq` 1, 2, ...
 *
 * - A bounded window: at most `window` chunks past the last acknowledged one are on the
 *   wire. A chunk written beyond it waits, unsent, and its promise settles only once it
 *   was sent and acknowledged, so a handler that awaits its writes is slowed to the
 *   hub's pace.
 * - Over the socket, `output` frames, pipelined up to the window; acks are cumulative.
 *   With no socket, the unacknowledged chunks go in one `POST .../output` at a time.
 * - Unacknowledged chunks are sent again, from the first one and with the same `seq`,
 *   on a new socket, after a socket closed, after a retryable nack or HTTP answer (with
 *   backoff), and when no ack came in time; the hub stores each `seq` once.
 * - It stops at `lease_lost`, `output_limit` or another refusal: every chunk not stored,
 *   and every later write of the attempt, rejects with an `OutputError` of that code.
 *   A seq gap (`invalid_message`) is resent a few times first: a hub whose buffer was
 *   full refuses one frame and may take the next.
 * - `flushed()` settles once nothing is left unacknowledged (or the stream stopped): the
 *   daemon reports a result only then, so a result never overtakes its output.
 */
import type { WebSocket } from 'ws';
import { Backoff, type NackFrame, type OutputAckFrame } from '../../protocol/index.js';
import { type HttpAnswer, hubErrorCode, jitteredRetryAfter, verdict } from './answers.js';
import {
  type Chunk,
  encodeChunk,
  OutputError,
  outputBody,
  outputFrame,
  rejected,
} from './output-chunk.js';
import { attemptKey } from './reporter.js';

export { OutputError, type OutputErrorCode } from './output-chunk.js';

export interface OutputDeps {
  /** Most chunks past the last acknowledged one on the wire (and in one HTTP batch). */
  window: number;
  /** The socket in use, if open. */
  socket(): WebSocket | null;
  /** One HTTP POST of a JSON text body. */
  http(path: string, body: string): Promise<HttpAnswer>;
  /** The hub's frame and body limit. */
  maxPayloadBytes(): number;
  /** The hub answered lease_lost for the attempt's output: it is no longer this daemon's. */
  leaseLost(id: string, epoch: number): void;
}

interface Stream {
  readonly id: string;
  readonly epoch: number;
  /** The seq the next write takes. */
  nextSeq: number;
  /** Every seq up to this one is stored. */
  acked: number;
  /** Not yet acknowledged, in seq order, from index `head` (`chunks[head].seq === acked + 1`). */
  chunks: Chunk[];
  head: number;
  /** The socket the chunks up to `sentUpTo` went out on (null: none, resend from the first). */
  sentOn: WebSocket | null;
  sentUpTo: number;
  /** An HTTP batch is under way. */
  posting: boolean;
  /** A retry after backoff is scheduled (nothing is sent meanwhile). */
  retryTimer: NodeJS.Timeout | null;
  /**
   * Armed while chunks are out on a socket: when it fires and no ack has come for
   * ANSWER_TIMEOUT_MS (since `heardAt`), everything unacknowledged is sent again.
   */
  answerTimer: NodeJS.Timeout | null;
  /** When the last ack came, or the first chunk after a quiet spell went out. */
  heardAt: number;
  readonly backoff: Backoff;
  /** `invalid_message` nacks since the last ack (seq gaps): retried up to MAX_GAPS. */
  gaps: number;
  /** Why the stream stopped, once it has. */
  stopped: OutputError | null;
  /** Called once nothing is unacknowledged or the stream stopped. */
  flushWaiters: (() => void)[];
}

const ANSWER_TIMEOUT_MS = 10_000;
const MAX_RETRY_AFTER_MS = 60_000;
/** Most chunks in one HTTP batch (protocol MAX_OUTPUT_BATCH). */
const MAX_BATCH = 1000;
/**
 * `invalid_message` nacks in a row (no ack between) before the stream gives up. The hub
 * refuses every frame after one it refused for a full buffer, so a gap should not come
 * of that; should one come anyway (the hub forgets the hold of its oldest attempts past
 * 1024 held at once), a resend mends it, while a frame the hub cannot take at all fails
 * every time.
 */
const MAX_GAPS = 8;

export class Outputs {
  readonly #streams = new Map<string, Stream>();
  #closed = false;
  constructor(private readonly deps: OutputDeps) {}

  /** Writes one chunk of the attempt's output; settles when the hub has stored it. */
  write(id: string, epoch: number, data: unknown): Promise<void> {
    if (this.#closed) return rejected(new OutputError('closed', 'the daemon is closed'));
    const s = this.#stream(id, epoch);
    if (s.stopped) return rejected(s.stopped);
    const text = encodeChunk(data, this.deps.maxPayloadBytes());
    if (typeof text !== 'string') return rejected(text);
    const seq = s.nextSeq++;
    const p = new Promise<void>((resolve, reject) => {
      s.chunks.push({ seq, text, bytes: Buffer.byteLength(text), resolve, reject });
    });
    p.catch(() => {}); // not awaited by the handler: no unhandled rejection
    if (seq <= s.acked + this.deps.window) this.#pump(s);
    return p;
  }

  /** Settles once the attempt's output is all stored, or its stream stopped. */
  flushed(id: string, epoch: number): Promise<void> {
    const s = this.#streams.get(attemptKey(id, epoch));
    if (!s || s.stopped || s.head === s.chunks.length) return Promise.resolve();
    return new Promise((resolve) => s.flushWaiters.push(resolve));
  }

  /** The attempt is over: what is left rejects with `code`, the stream is forgotten. */
  end(id: string, epoch: number, code: 'lease_lost' | 'closed', why: string): void {
    const key = attemptKey(id, epoch);
    const s = this.#streams.get(key);
    if (!s) return;
    this.#stop(s, new OutputError(code, why));
    this.#streams.delete(key);
  }

  /** An output_ack, or a nack naming a seq, from the socket. */
  answer(frame: OutputAckFrame | NackFrame): void {
    const s = this.#streams.get(attemptKey(frame.id, frame.epoch));
    if (!s || s.stopped) return;
    if (frame.type === 'output_ack') {
      this.#acked(s, frame.seq);
      return;
    }
    if (frame.retry) {
      this.#retryLater(s);
      return;
    }
    const seq = frame.seq ?? s.acked + 1;
    if (frame.code === 'output_limit') {
      // The store refused `seq` for the limit: every seq before it is stored.
      this.#full(s, seq - 1);
    } else if (frame.code === 'lease_lost') {
      this.#leaseLost(s);
    } else if (++s.gaps <= MAX_GAPS) {
      // A seq gap (see MAX_GAPS): everything from the first unacknowledged chunk goes again.
      this.#retryLater(s);
    } else {
      this.#stop(s, new OutputError('refused', `the hub refused chunk ${seq}: ${frame.code}`));
    }
  }

  /** Chunks that went out on a socket that closed: send them again (after a backoff). */
  socketClosed(ws: WebSocket): void {
    for (const s of this.#streams.values()) {
      if (s.sentOn === ws) {
        s.sentOn = null;
        // A newer socket is up (a handover): on it at once; else after a backoff.
        if (this.deps.socket()) this.#pump(s);
        else this.#retryLater(s);
      }
    }
  }

  /** A new socket is up: send every unacknowledged chunk on it now. */
  resend(): void {
    for (const s of this.#streams.values()) {
      if (s.retryTimer) clearTimeout(s.retryTimer);
      s.retryTimer = null;
      this.#pump(s);
    }
  }

  /** The daemon closed: every stream stops. */
  stop(): void {
    this.#closed = true;
    for (const s of this.#streams.values()) {
      this.#stop(s, new OutputError('closed', 'the daemon closed'));
    }
    this.#streams.clear();
  }

  #stream(id: string, epoch: number): Stream {
    const key = attemptKey(id, epoch);
    let s = this.#streams.get(key);
    if (!s) {
      s = {
        id,
        epoch,
        nextSeq: 1,
        acked: 0,
        chunks: [],
        head: 0,
        sentOn: null,
        sentUpTo: 0,
        posting: false,
        retryTimer: null,
        answerTimer: null,
        heardAt: 0,
        gaps: 0,
        backoff: new Backoff(100, 5_000),
        stopped: null,
        flushWaiters: [],
      };
      this.#streams.set(key, s);
    }
    return s;
  }

  /** Sends what the window allows: on the socket if one is up, else one HTTP batch. */
  #pump(s: Stream): void {
    if (s.stopped || s.retryTimer || s.head === s.chunks.length) return;
    const limit = s.acked + this.deps.window;
    const ws = this.deps.socket();
    if (ws) {
      if (s.sentOn !== ws) {
        s.sentOn = ws;
        s.sentUpTo = s.acked;
      }
      for (let i = s.head + (s.sentUpTo - s.acked); i < s.chunks.length; i++) {
        const c = s.chunks[i] as Chunk;
        if (c.seq > limit) break;
        ws.send(outputFrame(s.id, s.epoch, c));
        s.sentUpTo = c.seq;
      }
      if (s.sentUpTo > s.acked && !s.answerTimer) {
        s.heardAt = Date.now();
        s.answerTimer = setTimeout(() => this.#noAnswer(s), ANSWER_TIMEOUT_MS);
      }
      return;
    }
    if (!s.posting) void this.#post(s, limit);
  }

  /** One HTTP batch of the unacknowledged chunks in the window. */
  async #post(s: Stream, limit: number): Promise<void> {
    const budget = this.deps.maxPayloadBytes() - 1024;
    const batch: Chunk[] = [];
    let bytes = 0;
    for (let i = s.head; i < s.chunks.length && batch.length < MAX_BATCH; i++) {
      const c = s.chunks[i] as Chunk;
      if (c.seq > limit || (batch.length > 0 && bytes + c.bytes + 32 > budget)) break;
      batch.push(c);
      bytes += c.bytes + 32;
    }
    s.posting = true;
    let res: HttpAnswer;
    try {
      const path = `/v1/daemon/requests/${encodeURIComponent(s.id)}/output`;
      res = await this.deps.http(path, outputBody(s.epoch, batch));
    } catch {
      s.posting = false;
      this.#again(s);
      return;
    }
    s.posting = false;
    if (s.stopped) return;
    const v = verdict(res);
    if (v.kind === 'ok') {
      const body = res.body as { acked_seq?: unknown } | null;
      const acked = typeof body?.acked_seq === 'number' ? body.acked_seq : 0;
      // Less stored than sent, without a refusal: the rest goes again after a backoff.
      if (acked < (batch.at(-1) as Chunk).seq) this.#retryLater(s);
      this.#acked(s, acked);
      this.#pump(s);
      return;
    }
    if (v.kind === 'retry') {
      this.#again(s, v.afterMs);
      return;
    }
    if (v.code === 'output_limit') {
      // The chunks before the refused one are stored; the error's details name it.
      const at = refusedIndex(res.body);
      this.#full(s, at !== undefined && batch[at] ? (batch[at] as Chunk).seq - 1 : s.acked);
    } else if (v.code === 'lease_lost' || v.code === 'already_terminal' || v.code === 'not_found') {
      this.#leaseLost(s);
    } else {
      const code = hubErrorCode(res.body) ?? String(res.status);
      this.#stop(s, new OutputError('refused', `the hub refused the output: ${code}`));
    }
  }

  /** Every seq up to `seq` is stored. */
  #acked(s: Stream, seq: number): void {
    const upTo = Math.min(seq, s.nextSeq - 1);
    if (upTo <= s.acked) return;
    while (s.head < s.chunks.length && (s.chunks[s.head] as Chunk).seq <= upTo) {
      (s.chunks[s.head] as Chunk).resolve();
      s.head++;
    }
    s.acked = upTo;
    s.sentUpTo = Math.max(s.sentUpTo, upTo);
    s.backoff.reset();
    s.gaps = 0;
    if (s.head > 1024 && s.head * 2 > s.chunks.length) {
      s.chunks = s.chunks.slice(s.head);
      s.head = 0;
    }
    // The answer timer stays armed while chunks are out (no timer churn per ack).
    s.heardAt = Date.now();
    if (s.head === s.chunks.length) {
      if (s.answerTimer) clearTimeout(s.answerTimer);
      s.answerTimer = null;
      for (const w of s.flushWaiters.splice(0)) w();
      return;
    }
    this.#pump(s); // the window moved
  }

  /** output_limit: chunks up to `storedUpTo` settle, nothing more is sent, the rest rejects. */
  #full(s: Stream, storedUpTo: number): void {
    const err = new OutputError('output_limit', "the request's output is full");
    s.stopped = err; // first: the acks below must not send anything more
    this.#acked(s, storedUpTo);
    this.#stop(s, err);
  }

  #leaseLost(s: Stream): void {
    this.#stop(s, new OutputError('lease_lost', 'the hub says this attempt lost its lease'));
    this.deps.leaseLost(s.id, s.epoch);
  }

  /**
   * An HTTP batch failed: if a socket came up meanwhile, the chunks go (or went) there;
   * otherwise the batch is tried again after a backoff.
   */
  #again(s: Stream, afterMs?: number): void {
    if (this.deps.socket()) this.#pump(s);
    else this.#retryLater(s, afterMs);
  }

  /** No ack in time on the socket: send everything unacknowledged again. */
  #noAnswer(s: Stream): void {
    s.answerTimer = null;
    const quietMs = Date.now() - s.heardAt;
    if (quietMs < ANSWER_TIMEOUT_MS && s.sentUpTo > s.acked) {
      s.answerTimer = setTimeout(() => this.#noAnswer(s), ANSWER_TIMEOUT_MS - quietMs);
      return;
    }
    s.sentOn = null;
    this.#pump(s);
  }

  #retryLater(s: Stream, afterMs?: number): void {
    if (s.stopped || this.#closed || s.retryTimer) return;
    if (s.answerTimer) clearTimeout(s.answerTimer);
    s.answerTimer = null;
    const backoff = s.backoff.next();
    const delay = afterMs === undefined ? backoff : jitteredRetryAfter(afterMs, MAX_RETRY_AFTER_MS);
    s.retryTimer = setTimeout(() => {
      s.retryTimer = null;
      s.sentOn = null;
      this.#pump(s);
    }, delay);
  }

  /** The stream stops: every chunk not stored rejects with `err`, and so will later writes. */
  #stop(s: Stream, err: OutputError): void {
    if (!s.stopped) s.stopped = err;
    if (s.retryTimer) clearTimeout(s.retryTimer);
    if (s.answerTimer) clearTimeout(s.answerTimer);
    s.retryTimer = null;
    s.answerTimer = null;
    for (let i = s.head; i < s.chunks.length; i++) (s.chunks[i] as Chunk).reject(s.stopped);
    s.chunks = [];
    s.head = 0;
    for (const w of s.flushWaiters.splice(0)) w();
  }
}

/** The index in the batch of the chunk the hub refused (`details: [{path: ['chunks', i]}]`). */
function refusedIndex(body: unknown): number | undefined {
  const details = (body as { error?: { details?: { path?: unknown[] }[] } } | null)?.error?.details;
  const path = details?.[0]?.path;
  return path?.[0] === 'chunks' && typeof path[1] === 'number' ? path[1] : undefined;
}
