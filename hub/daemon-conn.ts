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
import type { RuntimeRef } from '../stores/domain.js';
import { runtimeTag } from '../stores/keys.js';
import type { DaemonOutbound } from './protocol.js';
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

  get free(): number {
    if (this.mode !== DAEMON_MODES.ready || !this.open) return 0;
    return Math.max(0, this.capacity - this.inFlight.size);
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
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
    return new Promise((resolve) => {
      const sent = sendBounded(
        this.ws,
        JSON.stringify(frame),
        this.limits.maxSocketBufferBytes,
        (err) => resolve(err ? SEND.failed : SEND.written),
      );
      if (!sent) resolve(SEND.refused);
    });
  }
}
