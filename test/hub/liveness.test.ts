/**
 * The ping watchdog terminates a daemon socket only for a ping it left unanswered, never
 * for the node's own silence: a node that stalled (a long GC pause, a blocked event
 * loop) before it had pinged a fresh socket must not take the socket's quiet for death.
 * A socket that never answers pings is still terminated.
 */
import { once } from 'node:events';
import { expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonToken, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();
const INTERVAL_MS = 400;

it('does not terminate a daemon socket it never pinged, however long since it spoke', async () => {
  // A long interval, so the socket's first visit comes well after the clock is set back.
  const interval = 2_000;
  const n = await node({ HEARTBEAT_INTERVAL_MS: String(interval) });
  const d = await readyDaemon(n, await daemonToken('laptop'));
  defer(() => d.close());
  let pings = 0;
  d.ws.on('ping', () => pings++);
  const conn = n.hub.dispatcher.connections.find((c) => c.rt.runtime === 'laptop');
  expect(conn).toBeDefined();
  await expect.poll(() => conn?.mode).toBe('ready'); // its last frame has been read
  // What a node stall (a long GC pause, a starved timer) before the first visit looks
  // like from the watchdog's side: the socket last spoke long ago, and was never pinged.
  (conn as { lastHeard: number }).lastHeard = Date.now() - 3 * interval;
  await expect.poll(() => pings, { timeout: 4 * interval }).toBeGreaterThanOrEqual(1);
  expect(d.ws.readyState).toBe(WebSocket.OPEN);
  await expect.poll(() => pings, { timeout: 4 * interval }).toBeGreaterThanOrEqual(2);
  expect(d.ws.readyState).toBe(WebSocket.OPEN);
});

it('terminates a daemon socket that leaves its pings unanswered', async () => {
  const n = await node({ HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS) });
  const token = await daemonToken('mute');
  const ws = new WebSocket(`${n.url.replace(/^http/, 'ws')}/v1/daemon/ws`, {
    headers: { authorization: `Bearer ${token}` },
    autoPong: false,
  });
  ws.on('error', () => {});
  defer(async () => ws.terminate());
  await once(ws, 'message');
  ws.send(JSON.stringify({ type: 'ready', capacity: 1 }));
  const [code] = (await once(ws, 'close')) as [number];
  expect(code).toBe(1006); // terminated: no close frame
});
