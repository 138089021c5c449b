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
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { RuntimeRef } from '../stores/domain.js';
import { runtimeTag } from '../stores/keys.js';
import type { DaemonOutbound } from './protocol.js';

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
  /** Times of recent invalid frames (flood detection). */
  invalidFrames: number[] = [];
  /** Last pong (or any frame) from the daemon: liveness for the ping check. */
  lastHeard = Date.now();

  constructor(
    readonly id: string,
    readonly rt: RuntimeRef,
    readonly subject: string,
    readonly ws: WebSocket,
  ) {
    super();
    this.tag = runtimeTag(rt);
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
    return this.mode === DAEMON_MODES.ready ? Math.max(0, this.capacity - this.inFlight.size) : 0;
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Sends a frame; resolves false when the socket could not take it. */
  send(frame: DaemonOutbound): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.ws.send(JSON.stringify(frame), (err) => resolve(!err));
    });
  }
}
