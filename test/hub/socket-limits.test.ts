/** sendBounded over a real websocket pair: the cap sheds a peer that does not read, never one that does. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { sendBounded } from '../../hub/socket-limits.js';

let server: WebSocketServer | undefined;
afterEach(async () => {
  for (const c of server?.clients ?? []) c.terminate();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function pair(): Promise<{ near: WebSocket; far: WebSocket }> {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const far = new WebSocket(`ws://127.0.0.1:${port}`, { maxPayload: 64 * 1024 * 1024 });
  const [near] = (await once(server, 'connection')) as [WebSocket];
  await once(far, 'open');
  return { near, far };
}

describe('sendBounded', () => {
  it('lets one frame larger than the cap out onto an empty buffer', async () => {
    const { near, far } = await pair();
    const big = 'x'.repeat(256 * 1024);
    const got = once(far, 'message');
    expect(sendBounded(near, big, 64 * 1024)).toBe(true);
    const [data] = (await got) as [Buffer];
    expect(data.length).toBe(big.length);
    expect(near.readyState).toBe(near.OPEN);
  });

  it('closes with 1013 once a peer that does not read fills the buffer', async () => {
    const { near, far } = await pair();
    far.pause();
    const frame = 'y'.repeat(64 * 1024);
    let sent = 0;
    while (sendBounded(near, frame, 256 * 1024) && sent < 10_000) sent += 1;
    expect(sent).toBeLessThan(10_000);
    expect(near.bufferedAmount).toBeLessThanOrEqual(256 * 1024 + frame.length);
    far.resume();
    const [code] = (await once(far, 'close')) as [number];
    expect(code).toBe(1013);
  });
});
