/**
 * The modes of the browser client's socket (browser-socket.ts) and the moves between them:
 *
 *   idle ──first listener──▶ connecting ──opened──▶ open
 *   connecting, open ──dropped──▶ backoff (listeners remain), or idle (none left)
 *   backoff ──timer──▶ connecting;  backoff ──last listener gone──▶ idle
 *   idle ──no WebSocket constructor at all──▶ unavailable
 *   any but closed ──close()──▶ closed (final)
 *
 * idle:        no socket, nothing wanted; enter: drop a pending reconnect.
 * connecting:  enter: open the socket (a constructor that throws counts as a drop).
 * open:        enter: reset the backoff and subscribe again to everything wanted: after
 *              every (re)connect the hub knows nothing of this client.
 * backoff:     dropped while listeners remain; enter: schedule the reconnect after the
 *              backoff (exponential, full jitter: protocol/backoff.js).
 * unavailable: no WebSocket constructor; `result()` long-polls.
 * closed:      `close()`; enter: drop a pending reconnect, close the socket.
 *
 * Only the socket's `#setMode()` changes the mode: it checks the move against this table,
 * does the entry work, then tells the listeners (a `connection` event) and `changed()`
 * waiters. Entry work never changes the mode itself, so listeners see the moves in order.
 */
import { assertMove, type Moves } from './modes.js';

export const SOCKET_MODES = {
  idle: 'idle',
  connecting: 'connecting',
  open: 'open',
  backoff: 'backoff',
  unavailable: 'unavailable',
  closed: 'closed',
} as const;
export type SocketMode = (typeof SOCKET_MODES)[keyof typeof SOCKET_MODES];

export const SOCKET_MOVES = {
  idle: ['connecting', 'unavailable', 'closed'],
  connecting: ['open', 'backoff', 'idle', 'closed'],
  open: ['backoff', 'idle', 'closed'],
  backoff: ['connecting', 'idle', 'closed'],
  unavailable: ['closed'],
  closed: [],
} as const satisfies Moves<SocketMode>;

export function assertSocketMove(from: SocketMode, to: SocketMode): void {
  assertMove<SocketMode>('client socket', SOCKET_MOVES, from, to);
}
