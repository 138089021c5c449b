/**
 * The per-socket limits both websockets share (DESIGN.md section 7): a peer that does
 * not read is closed once its unsent buffer passes the cap (1013), and a run of bad
 * frames closes the socket (1008). Each socket keeps one BadFrames counter and sends
 * every frame through `sendBounded`, so neither limit can be forgotten by one path.
 */
import type { WebSocket } from 'ws';
import { CLOSE } from './protocol.js';

/**
 * Sends `text` unless the socket is not open or the frame would take its unsent buffer
 * past `maxBuffered`; in that case the socket is closed with 1013 (it recovers by
 * reconnecting) and false is returned. One frame always goes out onto an empty buffer,
 * so a frame larger than the cap (a big snapshot, a request near MAX_PAYLOAD_BYTES) does
 * not close a peer that reads; the buffer then stays within cap + one frame. `done` is called once the frame was written or
 * failed; it is not called when nothing was sent.
 */
export function sendBounded(
  ws: WebSocket,
  text: string,
  maxBuffered: number,
  done?: (err?: Error) => void,
): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  const buffered = ws.bufferedAmount;
  if (buffered > 0 && buffered + Buffer.byteLength(text) > maxBuffered) {
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
