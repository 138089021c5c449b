/** WebSocket stand-ins for the browser client's tests under Node. */
import { WebSocket } from 'ws';

/** `ws`'s WebSocket, remembering every instance (so a test can cut one) and every frame it sent. */
export class TrackedWebSocket extends WebSocket {
  static all: TrackedWebSocket[] = [];
  static sent: unknown[] = [];
  constructor(url: string) {
    super(url);
    TrackedWebSocket.all.push(this);
  }
  override send(data: string): void {
    TrackedWebSocket.sent.push(JSON.parse(data));
    super.send(data);
  }
}

/** A WebSocket that never opens, the way a browser's fails: error, then close. */
export class FailingWebSocket {
  static attempts = 0;
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  constructor(_url: string) {
    FailingWebSocket.attempts++;
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }, 5);
  }
  send(): void {
    throw new Error('not open');
  }
  close(): void {}
}
