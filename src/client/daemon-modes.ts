/**
 * The daemon SDK's modes and the moves between them (daemon.ts's `setMode()` is the only
 * place that changes mode, and the only one that does what entering a mode means):
 *
 *   idle ─▶ connecting ─hello─▶ socket ─drain─▶ handover ─hello─▶ socket
 *             ▲    │ failed        │ dropped        │ replacement failed
 *             │    ▼               ▼                ▼
 *           reconnecting ◀─────────┴────────────────┘   (below the polling threshold)
 *           polling      ◀── the same, once sockets failed `socketFailuresBeforePolling`
 *                             times in a row; a hello in any of them: socket
 *   any of them ─close()─▶ closing ─▶ closed
 *
 * idle:         constructed, nothing opened (only inside the constructor).
 * connecting:   a socket is opening; enter: open it (to the current URL).
 * reconnecting: no socket; enter: schedule the next attempt after the backoff.
 * socket:       a socket said hello and is in use; enter: stop polling and any pending
 *               attempt, declare capacity on it, resend the reports waiting for a retry.
 * handover:     the hub sent `drain`; enter: open a replacement to the next URL. The
 *               old socket carries reports and renewals until the replacement says hello.
 * polling:      sockets keep failing; enter: start the heartbeat loop (it claims work and
 *               renews leases over HTTP) and schedule the next socket attempt.
 * closing:      close() was called; enter: stop polling and reconnecting, declare
 *               capacity 0, wait for the heartbeat under way, running handlers and their
 *               reports (up to `closeTimeoutMs`), then move to closed. A socket that says
 *               hello meanwhile still carries reports.
 * closed:       final; enter: abort what is left, stop reporting, close every socket.
 *
 * The public `DaemonState` folds these into the five values the `state` event has always
 * had: the waits (idle, reconnecting) read `connecting`, a handover reads `socket`.
 */
import { assertMove, type Moves } from './modes.js';

export const DAEMON_MODES = {
  idle: 'idle',
  connecting: 'connecting',
  reconnecting: 'reconnecting',
  socket: 'socket',
  handover: 'handover',
  polling: 'polling',
  closing: 'closing',
  closed: 'closed',
} as const;
export type DaemonMode = (typeof DAEMON_MODES)[keyof typeof DAEMON_MODES];

/** The daemon's state as its `state` event and `state` getter show it. */
export type DaemonState = 'connecting' | 'socket' | 'polling' | 'closing' | 'closed';

/** The legal moves. A hello is good news in any live mode: the socket is taken. */
export const DAEMON_MOVES = {
  idle: ['connecting'],
  connecting: ['socket', 'reconnecting', 'polling', 'closing'],
  reconnecting: ['connecting', 'socket', 'closing'],
  // socket -> socket: another socket said hello (a hub that drained it twice); it is taken.
  socket: ['socket', 'handover', 'reconnecting', 'polling', 'closing'],
  handover: ['socket', 'reconnecting', 'polling', 'closing'],
  polling: ['socket', 'closing'],
  closing: ['closed'],
  closed: [],
} as const satisfies Moves<DaemonMode>;

/** What each mode reads as from outside. */
export const PUBLIC_STATE = {
  idle: 'connecting',
  connecting: 'connecting',
  reconnecting: 'connecting',
  socket: 'socket',
  handover: 'socket',
  polling: 'polling',
  closing: 'closing',
  closed: 'closed',
} as const satisfies Record<DaemonMode, DaemonState>;

export function assertDaemonMove(from: DaemonMode, to: DaemonMode): void {
  assertMove<DaemonMode>('daemon', DAEMON_MOVES, from, to);
}
