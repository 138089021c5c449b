/**
 * The client websocket's limits (DESIGN.md section 7), each driven past the limit over a
 * real socket: bad frames in a row, subscriptions per socket, a client that never
 * reads, and a client that never answers pings.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { SwitchboardNode } from '../../src/node.js';
import { runtimeKeys } from '../../stores/keys.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, FrameSocket } from '../helpers/node.js';

const { defer, redis, node } = stopAfterEach();

async function client(n: { url: string }, token: string): Promise<FrameSocket> {
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  return c;
}

/** Resolves with the close, or null when the socket is still open after `ms`. */
function closedWithin(c: FrameSocket, ms: number) {
  return Promise.race([c.closed, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
}

async function subscribers(r: Redis, channel: string): Promise<number> {
  const reply = (await r.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

async function openSockets(n: SwitchboardNode, kind: string): Promise<number> {
  const { body } = await api(n, 'GET', '/metrics');
  const line = String(body)
    .split('\n')
    .find((l) => l.startsWith('switchboard_sockets{') && l.includes(`kind="${kind}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const updates = (runtime: string) => runtimeKeys('sb', { workspace: 'acme', runtime }).updates;

describe('bad frames in a row', () => {
  it('closes the socket with 1008 past MAX_BAD_FRAMES', async () => {
    const n = await node({ MAX_BAD_FRAMES: '3' });
    const c = await client(n, await clientToken());
    for (let i = 0; i < 50; i++) c.send('not json');
    const closed = await closedWithin(c, 5_000);
    expect(closed?.code).toBe(1008);
    expect(c.all('error').length).toBeLessThanOrEqual(4);
  });

  it('a good frame resets the run', async () => {
    const n = await node({ MAX_BAD_FRAMES: '3' });
    const c = await client(n, await clientToken());
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) c.send({ type: 'nope' });
      c.send({ type: 'subscribe', runtime: `rt${round}` });
      await c.next('snapshot');
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(c.all('error')).toHaveLength(9);
  });
});

describe('subscriptions per client socket', () => {
  it('refuses a runtime past MAX_SUBSCRIBED_RUNTIMES with limit_exceeded and adds nothing', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url, MAX_SUBSCRIBED_RUNTIMES: '2' });
    const r = server.client();
    const c = await client(n, await clientToken());
    for (const rt of ['a', 'b']) {
      c.send({ type: 'subscribe', runtime: rt });
      expect(await c.next('snapshot')).toMatchObject({ runtime: rt });
    }
    c.send({ type: 'subscribe', runtime: 'c' });
    const err = await c.next((f) => f.type === 'error' || f.type === 'snapshot');
    expect(err).toMatchObject({ type: 'error', code: 'limit_exceeded' });
    // Widening a runtime already subscribed is not a new runtime.
    c.send({ type: 'subscribe', runtime: 'a' });
    expect(await c.next((f) => f.type === 'error' || f.type === 'snapshot')).toMatchObject({
      type: 'snapshot',
      runtime: 'a',
    });
    expect(await subscribers(r, updates('a'))).toBe(1);
    expect(await subscribers(r, updates('c'))).toBe(0);
    // After one leaves, another fits.
    c.send({ type: 'unsubscribe', runtime: 'b' });
    c.send({ type: 'subscribe', runtime: 'c' });
    expect(await c.next((f) => f.type === 'error' || f.type === 'snapshot')).toMatchObject({
      type: 'snapshot',
      runtime: 'c',
    });
  });

  it('refuses ids past MAX_SUBSCRIBED_IDS with limit_exceeded and adds none of them', async () => {
    const n = await node({ MAX_SUBSCRIBED_IDS: '3' });
    const c = await client(n, await clientToken());
    const next = () => c.next((f) => f.type === 'error' || f.type === 'snapshot');
    c.send({ type: 'subscribe', runtime: 'a', requests: ['r1', 'r2'] });
    expect(await next()).toMatchObject({ type: 'snapshot' });
    c.send({ type: 'subscribe', runtime: 'b', requests: ['r3', 'r4'] });
    expect(await next()).toMatchObject({ type: 'error', code: 'limit_exceeded' });
    // r3 and r4 were not added: one more id still fits, a repeat costs nothing.
    c.send({ type: 'subscribe', runtime: 'a', requests: ['r1', 'r3'] });
    expect(await next()).toMatchObject({ type: 'snapshot' });
    c.send({ type: 'subscribe', runtime: 'b', requests: ['r5'] });
    expect(await next()).toMatchObject({ type: 'error', code: 'limit_exceeded' });
  });
});

describe('a client that never reads', () => {
  it('is closed once its unsent buffer passes MAX_SOCKET_BUFFER_BYTES; others get every frame', async () => {
    const n = await node({ MAX_SOCKET_BUFFER_BYTES: '65536', HEARTBEAT_INTERVAL_MS: '60000' });
    const token = await clientToken();
    // Not closed politely at the end: a socket that does not read never sees the close.
    const slow = await FrameSocket.client(n, token);
    defer(async () => slow.ws.terminate());
    slow.send({ type: 'subscribe', runtime: 'laptop' });
    await slow.next('snapshot');
    slow.ws.pause(); // never reads again
    const fast = await client(n, token);
    fast.send({ type: 'subscribe', runtime: 'laptop' });
    await fast.next('snapshot');
    expect(await openSockets(n, 'client')).toBe(2);

    const payload = { blob: 'x'.repeat(16_384) };
    let last = '';
    for (let batch = 0; batch < 10; batch++) {
      const requests = Array.from({ length: 50 }, () => ({ kind: 'echo', payload }));
      const res = await api(n, 'POST', '/v1/runtimes/laptop/requests/batch', {
        token,
        body: { requests },
      });
      expect(res.status).toBe(201);
      last = res.body.requests.at(-1).id;
    }
    const lastId = last;
    await fast.next((f) => f.type === 'request' && f.request.id === lastId, 20_000);
    await expect.poll(() => openSockets(n, 'client'), { timeout: 10_000 }).toBe(1);
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('a client that never answers pings', () => {
  it('is terminated after two heartbeat intervals; one that answers stays', async () => {
    const n = await node({ HEARTBEAT_INTERVAL_MS: '300' });
    const token = await clientToken();
    const good = await client(n, token);
    let pings = 0;
    good.ws.on('ping', () => pings++);
    const silent = new WebSocket(`${n.url.replace(/^http/, 'ws')}/v1/ws`, {
      headers: { authorization: `Bearer ${token}` },
      autoPong: false,
    });
    defer(async () => silent.terminate());
    const closed = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    silent.on('error', () => {});
    const code = await Promise.race([
      closed,
      new Promise<null>((r) => setTimeout(() => r(null), 6_000)),
    ]);
    expect(code).toBe(1006); // terminated: no close frame
    expect(pings).toBeGreaterThan(0);
    expect(good.ws.readyState).toBe(WebSocket.OPEN);
  });
});
