/**
 * The per-socket limits both websockets share (DESIGN.md section 7): a peer that does
 * not read is closed once its unsent buffer passes the cap (1013), and a run of bad
 * frames closes the socket (1008). Each socket keeps one BadFrames counter and sends
 * every frame through `sendBounded`, so neither limit can be forgotten by one path.
 */
import type { WebSocket } from 'ws';
import { CLOSE } from '../protocol/index.js';

/**
 * Sends `text` unless the socket is not open or its unsent buffer is already past
 * `maxBuffered`: then the socket is closed with 1013 (its peer stopped reading; it
 * recovers by reconnecting) and false is returned. The buffer so stays within the cap
 * plus one frame, and a single frame larger than the cap (a big snapshot) never closes
 * a peer that reads. `done` is called once the frame was written or failed; it is not
 * called when nothing was sent.
 */
export function sendBounded(
  ws: WebSocket,
  text: string,
  maxBuffered: number,
  done?: (err?: Error) => void,
): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  if (ws.bufferedAmount > maxBuffered) {
    shed(ws);
    return false;
  }
  ws.send(text, done);
  return true;
}

/**
 * Closes a socket whose peer stopped reading. A close handshake would queue behind the
 * unsent bytes, so after a short wait for it the socket is terminated.
 */
export function shed(ws: WebSocket): void {
  if (ws.readyState === ws.CLOSED) return;
  if (ws.readyState === ws.OPEN) ws.close(CLOSE.tryAgainLater, 'socket buffer full');
  const timer = setTimeout(() => ws.terminate(), 1_000);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

/** Bad frames in a row; a good frame resets the count. */
export class BadFrames {
  #run = 0;
  constructor(private readonly limit: number) {}

  /** Counts one bad frame; true when the run passed the limit (close with 1008). */
  bad(): boolean {
    this.#run += 1;
    return this.#run > this.limit;
  }

  good(): void {
    this.#run = 0;
  }
}
