/**
 * One daemon websocket session on this node, and its modes:
 *
 *   connecting ──ready frame──▶ ready ──drain──▶ draining ──▶ closed
 *        └───────────────────────┴──────────────socket closed──▶ closed
 *
 * connecting: hello sent, no push until the daemon declares its capacity.
 * ready:      requests are pushed up to `capacity` in flight.
 * draining:   the node is shutting down; nothing new is pushed, reports still accepted.
 * closed:     the socket is gone; anything claimed for it but not sent is released.
 *
 * Free capacity needs both mode ready and an open socket: a socket that is closing
 * (close sent, or terminated) still reads ready until `close` fires, and claiming for
 * it would only release again, in a loop.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { DaemonOutbound } from '../protocol/index.js';
import type { RuntimeRef } from '../stores/domain.js';
import { runtimeTag } from '../stores/keys.js';
import { BadFrames, sendBounded } from './socket-limits.js';

/** How a frame fared: written to the socket, refused (nothing left), or failed mid-write. */
export const SEND = { written: 'written', refused: 'refused', failed: 'failed' } as const;
export type SendOutcome = (typeof SEND)[keyof typeof SEND];

export interface DaemonLimits {
  maxSocketBufferBytes: number;
  maxBadFrames: number;
}

export const DAEMON_MODES = {
  connecting: 'connecting',
  ready: 'ready',
  draining: 'draining',
  closed: 'closed',
} as const;
export type DaemonMode = (typeof DAEMON_MODES)[keyof typeof DAEMON_MODES];

const LEGAL: Record<DaemonMode, readonly DaemonMode[]> = {
  connecting: ['ready', 'draining', 'closed'],
  ready: ['ready', 'draining', 'closed'],
  draining: ['closed'],
  closed: [],
};

export class DaemonConnection extends EventEmitter<{ mode: [DaemonMode, DaemonMode] }> {
  readonly tag: string;
  mode: DaemonMode = DAEMON_MODES.connecting;
  capacity = 0;
  /** Requests pushed to this socket and not yet reported: id -> epoch. */
  readonly inFlight = new Map<string, number>();
  /** Ids whose result from this socket is being stored: their slot frees after the ack. */
  readonly reporting = new Set<string>();
  readonly connectedAt = Date.now();
  /** Invalid frames in a row; past the limit the socket is closed (1008). */
  readonly badFrames: BadFrames;
  /** Closes the socket if no valid `ready` came in time; cleared on ready and close. */
  readyTimer: NodeJS.Timeout | null = null;
  /** Last pong (or any frame) from the daemon: liveness for the ping check. */
  lastHeard = Date.now();
  /** A push did not fit the buffer: no claims for this socket until it has drained. */
  #backedUp = false;
  /** The unsent buffer at the watchdog's last visit (a peer that reads makes it shrink). */
  lastBuffered = Number.POSITIVE_INFINITY;
  /** When the watchdog last pinged this socket (0: never). */
  pingedAt = 0;
  /** The first ping since the daemon last spoke: the watchdog counts from it. */
  unansweredSince = 0;

  constructor(
    readonly id: string,
    readonly rt: RuntimeRef,
    readonly subject: string,
    readonly ws: WebSocket,
    private readonly limits: DaemonLimits,
  ) {
    super();
    this.tag = runtimeTag(rt);
    this.badFrames = new BadFrames(limits.maxBadFrames);
  }

  setMode(next: DaemonMode): void {
    const prev = this.mode;
    if (!LEGAL[prev].includes(next)) {
      throw new Error(`daemon connection ${this.id}: illegal mode change ${prev} -> ${next}`);
    }
    this.mode = next;
    this.emit('mode', prev, next);
  }

  /**
   * Free slots. None while the socket is not open, and none while its unsent buffer is
   * backed up (past half the cap, or since a push did not fit and until it drains): the
   * sweep and the next result claim again once it has.
   */
  get free(): number {
    return this.#freeWith(this.inFlight.size);
  }

  /** Free slots once the slot of `id` at `epoch` is given back (what its report may claim). */
  freeAfter(id: string, epoch: number): number {
    return this.#freeWith(this.inFlight.size - (this.inFlight.get(id) === epoch ? 1 : 0));
  }

  #freeWith(inFlight: number): number {
    if (this.mode !== DAEMON_MODES.ready || !this.open) return 0;
    const buffered = this.ws.bufferedAmount;
    if (buffered === 0) this.#backedUp = false;
    if (this.#backedUp || buffered >= this.limits.maxSocketBufferBytes / 2) return 0;
    return Math.max(0, this.capacity - inFlight);
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /**
   * Pushes a request frame. A daemon that reads may still lag behind a burst (capacity
   * times large payloads), so a push that does not fit (past half the cap, unless the
   * buffer is empty) is refused, not shed: the dispatcher releases it and claims for
   * this socket again once the buffer drained. Only a buffer past the whole cap (the
   * peer does not read) closes the socket (1013).
   */
  push(frame: DaemonOutbound): Promise<SendOutcome> {
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.limits.maxSocketBufferBytes) return this.trySend(frame);
    const text = JSON.stringify(frame);
    if (buffered > 0 && buffered + text.length > this.limits.maxSocketBufferBytes / 2) {
      this.#backedUp = true;
      return Promise.resolve(SEND.refused);
    }
    return this.#write(text);
  }

  /** Sends a frame; resolves false when the socket could not take it. */
  async send(frame: DaemonOutbound): Promise<boolean> {
    return (await this.trySend(frame)) === SEND.written;
  }

  /**
   * Sends a frame within the socket buffer cap. `refused` means no byte of it left (the
   * socket is not open, or its peer stopped reading and the socket is being shed, 1013).
   */
  trySend(frame: DaemonOutbound): Promise<SendOutcome> {
    return this.#write(JSON.stringify(frame));
  }

  #write(text: string): Promise<SendOutcome> {
    return new Promise((resolve) => {
      const sent = sendBounded(this.ws, text, this.limits.maxSocketBufferBytes, (err) =>
        resolve(err ? SEND.failed : SEND.written),
      );
      if (!sent) resolve(SEND.refused);
    });
  }
}
