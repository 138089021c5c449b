/**
 * Every local holder of a superseded epoch hears `lease_lost` and gets its slot back:
 * another connection of the node that lost the lease (it was re-claimed by a sibling),
 * and the same connection when it is pushed the request again at a newer epoch. The
 * update hints are dropped here, as a lost hint would be: the push itself must tell.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Relay } from '../../hub/relay.js';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  STORE_BACKENDS,
} from '../helpers/node.js';

const { defer, node, redis } = stopAfterEach();

/** A relay whose update hints never arrive (wake-ups still do). */
function dropUpdates(relay: Relay): Relay {
  return {
    subscribe: (channel, listener) =>
      relay.subscribe(channel, channel.endsWith('updates') ? () => {} : listener),
    subscribed: (channel) => relay.subscribed(channel),
    publish: (channel, message) => relay.publish(channel, message),
    onReconnect: (listener) => relay.onReconnect(listener),
    get connected() {
      return relay.connected;
    },
    close: () => relay.close(),
  };
}

async function create(n: SwitchboardNode, runtime: string, body: unknown): Promise<string> {
  const res = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
    token: await clientToken(),
    body,
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const conn = (n: SwitchboardNode, id: string) =>
  n.hub.dispatcher.connections.find((c) => c.id === id);

const lapsing = { kind: 'k', max_attempts: 3, lease_ms: 300 };

describe.each(STORE_BACKENDS)('holders of a superseded epoch (%s store)', (_name, backend) => {
  async function start(): Promise<{ n: SwitchboardNode; runtime: string; token: string }> {
    const b = await backend();
    defer(() => b.stop());
    const n = await node(b.env, { wrapRelay: dropUpdates });
    const runtime = `hold-${randomUUID().slice(0, 8)}`;
    return { n, runtime, token: await daemonToken(runtime) };
  }

  const daemon = async (d: Promise<FrameSocket>) => {
    const s = await d;
    defer(() => s.close());
    return s;
  };

  it('tells a sibling connection whose lease lapsed, and frees its slot', async () => {
    const { n, runtime, token } = await start();
    // B connects first (the node finds it first), but is ready only later.
    const b = await daemon(FrameSocket.daemon(n, token));
    await b.next('hello');
    const a = await daemon(readyDaemon(n, token, 1));
    const x = await create(n, runtime, lapsing);
    const first = (await a.next('request')).request;
    expect(first).toMatchObject({ id: x, epoch: 1 });

    // A never renews; once its lease lapses X is requeued and claimed for B.
    b.send({ type: 'ready', capacity: 1 });
    const again = (await b.next('request', 5000)).request;
    expect(again.id).toBe(x);
    expect(again.epoch).toBeGreaterThan(1);
    // B finishes it at once, so X does not lapse again.
    b.send({ type: 'result', id: x, epoch: again.epoch, status: 'completed', result: 1 });
    expect(await b.next('ack')).toMatchObject({ id: x, epoch: again.epoch });
    expect(await a.next('lease_lost', 5000)).toMatchObject({ id: x, epoch: 1 });

    // A's slot is free again.
    const aConn = conn(n, a.frames[0]?.connection_id);
    expect(aConn?.inFlight.has(x)).toBe(false);
    expect(aConn?.free).toBe(1);
  });

  it('tells a connection pushed the same request again at a newer epoch, first', async () => {
    const { n, runtime, token } = await start();
    const a = await daemon(readyDaemon(n, token, 2));
    const x = await create(n, runtime, lapsing);
    expect((await a.next('request')).request).toMatchObject({ id: x, epoch: 1 });

    const again = (await a.next('request', 5000)).request;
    expect(again.id).toBe(x);
    expect(again.epoch).toBeGreaterThan(1);
    const told = a.frames.findIndex((f) => f.type === 'lease_lost' && f.id === x);
    const pushed = a.frames.findIndex((f) => f.type === 'request' && f.request.epoch > 1);
    expect(a.frames[told]).toMatchObject({ type: 'lease_lost', id: x, epoch: 1 });
    expect(told).toBeLessThan(pushed);

    // One slot, for X at its new epoch.
    const aConn = conn(n, a.frames[0]?.connection_id);
    expect([...(aConn?.inFlight ?? [])]).toEqual([[x, again.epoch]]);
  });
});

describe('holders of a superseded epoch on another node', () => {
  it('hear lease_lost through the update hints', async () => {
    const server = await redis();
    const n1 = await node({ REDIS_URL: server.url, NODE_ID: 'node-a' });
    const n2 = await node({ REDIS_URL: server.url, NODE_ID: 'node-b' });
    const runtime = `hold-${randomUUID().slice(0, 8)}`;
    const token = await daemonToken(runtime);
    const a = await readyDaemon(n1, token, 1);
    defer(() => a.close());
    const x = await create(n1, runtime, lapsing);
    expect((await a.next('request')).request).toMatchObject({ id: x, epoch: 1 });

    // Node A's only socket is full: only node B can claim X once A's lease lapses.
    const b = await readyDaemon(n2, token, 1);
    defer(() => b.close());
    const again = (await b.next('request', 5000)).request;
    expect(again).toMatchObject({ id: x });
    b.send({ type: 'result', id: x, epoch: again.epoch, status: 'completed', result: 1 });
    expect(await a.next('lease_lost', 5000)).toMatchObject({ id: x, epoch: 1 });
    await expect.poll(() => conn(n1, a.frames[0]?.connection_id)?.free).toBe(1);
  });
});
