/**
 * A daemon websocket spoken by hand over raw TCP, for peers the `ws` client cannot
 * play: one that never answers a close, or one that stops reading. It upgrades, sends
 * masked text frames, and can stop reading (its kernel buffers fill, then the node's).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export class RawDaemon {
  readonly closed: Promise<void>;
  /** Bytes received after the upgrade response. */
  received = 0;

  private constructor(readonly socket: net.Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static open(node: { url: string }, token: string): Promise<RawDaemon> {
    const { port } = new URL(node.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const raw = new RawDaemon(socket);
    return new Promise((resolve, reject) => {
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) {
          reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
          return;
        }
        raw.received = head.length - end - 4;
        socket.on('data', (c: Buffer) => {
          raw.received += c.length;
        });
        resolve(raw);
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(
        'GET /v1/daemon/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
          'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          `Authorization: Bearer ${token}\r\n\r\n`,
      );
    });
  }

  /** One masked text frame (clients must mask). */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    const len = payload.length;
    const head =
      len < 126
        ? Buffer.from([0x81, 0x80 | len])
        : len < 65_536
          ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
          : (() => {
              const b = Buffer.alloc(10);
              b[0] = 0x81;
              b[1] = 0x80 | 127;
              b.writeBigUInt64BE(BigInt(len), 2);
              return b;
            })();
    const mask = randomBytes(4);
    for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
    this.socket.write(Buffer.concat([head, mask, payload]));
  }

  send(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  /** Stops reading: whatever the node sends piles up in the kernel, then in the node. */
  stopReading(): void {
    this.socket.pause();
  }

  destroy(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }
}
