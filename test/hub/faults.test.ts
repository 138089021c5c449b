/**
 * Faults, over real redis-server processes, real nodes and real sockets: wake-ups lost
 * (pub/sub connections killed) or suppressed (a relay that drops them), a daemon that
 * only polls over HTTP, Redis going down and coming back, and a result hint lost while
 * a client is subscribed. Hints may be lost; requests and results may not.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Relay } from '../../hub/relay.js';
import type { SwitchboardNode } from '../../src/node.js';
import { runtimeKeys } from '../../stores/keys.js';
import { MemoryStore } from '../../stores/memory/store.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  metric,
  readyDaemon,
} from '../helpers/node.js';

const KEYS = runtimeKeys('sb', { workspace: 'acme', runtime: 'laptop' });

// Everything a test starts is stopped after it, newest first.
const { defer, redis, node } = stopAfterEach();

async function daemonOn(n: SwitchboardNode, capacity: number): Promise<FrameSocket> {
  const d = await readyDaemon(n, await daemonToken('laptop'), capacity);
  defer(() => d.close());
  return d;
}

async function create(n: SwitchboardNode, token: string, body: unknown): Promise<string> {
  const res = await api(n, 'POST', '/v1/runtimes/laptop/requests', { token, body });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const claims = (n: SwitchboardNode, path: string) =>
  metric(n, 'switchboard_claims_total', `path="${path}"`);

async function subscribers(r: Redis, channel: string): Promise<number> {
  const reply = (await r.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/** Collects the next `n` pushed requests and returns their ids, sorted. */
async function pushedIds(d: FrameSocket, n: number, timeoutMs = 5000): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await d.next('request', timeoutMs)).request.id);
  return ids.sort();
}

/**
 * A relay whose wake-up listeners never run (or only after the first `limit` wake-ups
 * were swallowed); counts the wake-ups it swallowed.
 */
function dropWakes(dropped: { count: number }, limit = Number.POSITIVE_INFINITY) {
  const swallow =
    (listener: (message: string) => void) =>
    (message: string): void => {
      if (dropped.count < limit) dropped.count++;
      else listener(message);
    };
  return (relay: Relay): Relay => ({
    subscribe: (channel, listener) =>
      relay.subscribe(channel, channel.endsWith(':wake') ? swallow(listener) : listener),
    subscribed: (channel) => relay.subscribed(channel),
    publish: (channel, message) => relay.publish(channel, message),
    onReconnect: (listener) => relay.onReconnect(listener),
    get connected() {
      return relay.connected;
    },
    close: () => relay.close(),
  });
}

describe('push lost: pub/sub connections killed', () => {
  it('delivers requests whose wake-ups were lost, through the fallbacks', async () => {
    const server = await redis();
    const env = { REDIS_URL: server.url, SWEEP_INTERVAL_MS: '200' };
    const [a, b, c] = [await node(env), await node(env), await node(env)];
    const client = await clientToken();
    const d = await daemonOn(b, 5);
    const r = server.client();
    await expect.poll(() => subscribers(r, KEYS.wake), { timeout: 5000 }).toBe(1);

    // While SUBSCRIBE is refused, no node can be listening when the creates publish
    // their wake-ups: those are lost for certain, whatever the reconnect's speed.
    await r.call('ACL', 'SETUSER', 'default', '-subscribe');
    const killedAt = Date.now();
    expect(Number(await r.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(1);
    await expect.poll(() => subscribers(r, KEYS.wake), { timeout: 5000 }).toBe(0);
    const ids = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => create(a, client, { kind: 'lost', payload: i })),
    );
    await r.call('ACL', 'SETUSER', 'default', '+subscribe');
    expect(await pushedIds(d, 5)).toEqual([...ids].sort());
    console.info(`push lost: 5 requests delivered ${Date.now() - killedAt} ms after the kill`);

    await expect
      .poll(() => metric(b, 'switchboard_relay_reconnects_total'), { timeout: 5000 })
      .toBeGreaterThanOrEqual(1);
    expect((await claims(b, 'sweep')) + (await claims(b, 'reconnect'))).toBeGreaterThanOrEqual(1);

    for (const { request: q } of d.all('request')) {
      d.send({ type: 'result', id: q.id, epoch: q.epoch, status: 'completed', result: q.payload });
      expect(await d.next('ack')).toMatchObject({ id: q.id });
    }
    for (const [i, id] of ids.entries()) {
      const read = await api(c, 'GET', `/v1/runtimes/laptop/requests/${id}`, { token: client });
      expect(read.body).toMatchObject({ id, status: 'completed', result: i, attempt: 1 });
    }
  });
});

/**
 * Nodes a and b on one store (memory or a private Redis); b's relay swallows wake-ups
 * (the first `limit` of them); a daemon of capacity 5 on b, listed as connected.
 */
async function wakesDroppedOnB(mode: 'memory' | 'redis', limit?: number) {
  let env: Record<string, string> = {};
  let memoryStore: MemoryStore | undefined;
  if (mode === 'redis') env = { REDIS_URL: (await redis()).url };
  else memoryStore = new MemoryStore({ prefix: 'sb' });
  const dropped = { count: 0 };
  const a = await node(env, { memoryStore });
  const b = await node(env, { memoryStore, wrapRelay: dropWakes(dropped, limit) });
  const client = await clientToken();
  const d = await daemonOn(b, 5);
  // Presence shows the connection once its ready-time drain has run on an empty queue.
  const runtime = () => api(a, 'GET', '/v1/runtimes/laptop', { token: client });
  await expect
    .poll(async () => (await runtime()).body.connections?.length, { timeout: 5000 })
    .toBe(1);
  return { a, b, client, d, dropped };
}

describe.each(['memory', 'redis'] as const)(
  'push suppressed: wake-ups dropped (%s store)',
  (mode) => {
    it('delivers every request through the sweep', async () => {
      const { a, b, client, d, dropped } = await wakesDroppedOnB(mode);

      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await create(a, client, { kind: 'quiet', payload: i }));
      expect(await pushedIds(d, 5)).toEqual([...ids].sort());
      await expect.poll(() => dropped.count, { timeout: 5000 }).toBeGreaterThanOrEqual(5);
      expect({ push: await claims(b, 'push'), sweep: await claims(b, 'sweep') }).toEqual({
        push: 0,
        sweep: 5,
      });
    });
  },
);

describe.each(['memory', 'redis'] as const)(
  'one wake-up lost: the sweeper announces waiting work again (%s store)',
  (mode) => {
    it('delivers it by a pushed claim a pass or two later, not by the slow re-check', async () => {
      const { a, b, client, d, dropped } = await wakesDroppedOnB(mode, 1);

      const id = await create(a, client, { kind: 'late', payload: 1 });
      expect(await pushedIds(d, 1)).toEqual([id]);
      expect(dropped.count).toBe(1);
      const rewakes = async () =>
        (await metric(a, 'switchboard_sweeper_rewakes_total')) +
        (await metric(b, 'switchboard_sweeper_rewakes_total'));
      expect(await rewakes()).toBeGreaterThanOrEqual(1);
      expect({ push: await claims(b, 'push'), sweep: await claims(b, 'sweep') }).toEqual({
        push: 1,
        sweep: 0,
      });
    });
  },
);

describe('heartbeat only: no daemon websocket (two nodes on Redis)', () => {
  it('claims, renews and completes over HTTP, and the client sees the result', async () => {
    const server = await redis();
    const [a, b] = [await node({ REDIS_URL: server.url }), await node({ REDIS_URL: server.url })];
    const client = await clientToken();
    const daemon = await daemonToken('poller');
    const path = '/v1/runtimes/poller/requests';
    const created = await api(b, 'POST', path, {
      token: client,
      body: { kind: 'poll.me', payload: { n: 1 } },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const before = await api(b, 'GET', '/v1/runtimes/poller', { token: client });
    expect(before.body).toMatchObject({ id: 'poller', online: false, pending: 1 });
    const waiting = api(b, 'GET', `${path}/${id}?wait_ms=20000`, { token: client });
    const heartbeat = (body: unknown) =>
      api(a, 'POST', '/v1/daemon/heartbeat', { token: daemon, body });

    const first = await heartbeat({ max: 5, leases: [] });
    expect(first.status).toBe(200);
    expect(first.body.requests).toEqual([
      expect.objectContaining({ id, kind: 'poll.me', payload: { n: 1 }, epoch: 1, attempt: 1 }),
    ]);
    const { epoch, lease_expires_at: granted } = first.body.requests[0];
    const listed = await api(b, 'GET', '/v1/runtimes', { token: client });
    expect(listed.body.runtimes).toContainEqual(
      expect.objectContaining({ id: 'poller', online: true, pending: 0, running: 1 }),
    );

    // Renew the right epoch and a wrong one; a renewal restarts the lease from now, so
    // poll until one lands in a later millisecond than the grant.
    let renewed: { body: any } = { body: null };
    const renew = async () => {
      renewed = await heartbeat({
        max: 0,
        leases: [
          { id, epoch },
          { id, epoch: epoch + 1 },
        ],
      });
      return Date.parse(renewed.body.leases[0].lease_expires_at);
    };
    await expect.poll(renew, { timeout: 5000 }).toBeGreaterThan(Date.parse(granted));
    expect(renewed.body).toMatchObject({ requests: [], heartbeat_interval_ms: 1000 });
    const [lease, wrong] = renewed.body.leases;
    expect(lease).toEqual({ id, epoch, ok: true, lease_expires_at: expect.any(String) });
    expect(wrong).toEqual({ id, epoch: epoch + 1, ok: false, lease_expires_at: null });
    const running = await api(b, 'GET', `${path}/${id}`, { token: client });
    expect(running.body).toMatchObject({
      status: 'running',
      epoch,
      lease_expires_at: lease.lease_expires_at,
    });

    const report = (e: number) =>
      api(a, 'POST', `/v1/daemon/requests/${id}/result`, {
        token: daemon,
        body: { epoch: e, status: 'completed', result: { answer: 42 } },
      });
    expect(await report(epoch)).toMatchObject({
      status: 200,
      body: { request: { id, status: 'completed' } },
    });
    expect(await waiting).toMatchObject({
      status: 200,
      body: { id, status: 'completed', result: { answer: 42 } },
    });
    expect((await report(epoch)).status).toBe(200); // a retried report whose answer was lost
    expect(await report(epoch + 1)).toMatchObject({
      status: 409,
      body: { error: { code: 'lease_lost' } },
    });
  });
});

describe('Redis down and back', () => {
  it('reports the outage as failures, then accepts the retried result and answers the waiter', async () => {
    // SIGKILL below is a crash: `always`, since `everysec` may lose acknowledged writes.
    const server = await redis({ appendonly: true, extraArgs: ['--appendfsync', 'always'] });
    const env = { REDIS_URL: server.url, LEASE_MS: '60000' };
    const [a, b] = [await node(env), await node(env)];
    const client = await clientToken();
    const d = await daemonOn(a, 1);
    const id = await create(a, client, { kind: 'outage' });
    const { request } = await d.next('request');
    expect(request.id).toBe(id);
    const longPoll = () =>
      api(b, 'GET', `/v1/runtimes/laptop/requests/${id}?wait_ms=30000`, { token: client });
    const waiting = longPoll();
    // Node A's dispatcher and node B's long-poll both listen for this runtime's updates.
    const r = server.client();
    await expect.poll(() => subscribers(r, KEYS.updates), { timeout: 5000 }).toBe(2);

    await server.kill();
    const refused = await api(a, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'x' },
    });
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'store_unavailable' } } });
    const metrics = (await api(a, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^switchboard_store_errors_total\{[^}]*\} [1-9]/m);
    const result = {
      type: 'result',
      id,
      epoch: request.epoch,
      status: 'completed',
      result: { survived: true },
    };
    const answer = (f: { type: string; id?: string }) =>
      (f.type === 'ack' || f.type === 'nack') && f.id === id;
    d.send(result);
    expect(await d.next(answer)).toEqual({
      type: 'nack',
      id,
      epoch: request.epoch,
      code: 'store_unavailable',
      retry: true,
    });
    expect((await api(a, 'GET', '/readyz')).status).toBe(503);

    // Both nodes ready again: store reachable and subscriber back (node B's long-poll is
    // resubscribed; a hint lost meanwhile is the bug the last test below covers).
    await server.restart();
    for (const n of [a, b]) {
      await expect
        .poll(async () => (await api(n, 'GET', '/readyz')).status, { timeout: 15_000 })
        .toBe(200);
    }
    const reply = await (async () => {
      for (let attempt = 1; ; attempt++) {
        d.send(result);
        const f = await d.next(answer);
        if (f.type === 'ack' || !f.retry || attempt === 10) return f;
      }
    })();
    expect(reply).toEqual({ type: 'ack', id, epoch: request.epoch });

    let waited = await waiting;
    if (waited.status === 503) waited = await longPoll(); // the wait itself hit the outage
    expect(waited).toMatchObject({
      status: 200,
      body: { id, status: 'completed', result: { survived: true } },
    });
  });
});

describe('result hint lost: pub/sub connections killed while a client is subscribed', () => {
  it('the subscribed client still learns the result', async () => {
    const server = await redis();
    const [a, b] = [await node({ REDIS_URL: server.url }), await node({ REDIS_URL: server.url })];
    const client = await clientToken();
    const d = await daemonOn(a, 1);
    const id = await create(a, client, { kind: 'watched' });
    const { request } = await d.next('request');
    const watcher = await FrameSocket.client(b, client);
    defer(() => watcher.close());
    watcher.send({ type: 'subscribe', runtime: 'laptop', requests: [id] });
    expect((await watcher.next('snapshot')).requests).toEqual([
      expect.objectContaining({ id, status: 'running' }),
    ]);
    const r = server.client();
    await expect.poll(() => subscribers(r, KEYS.updates), { timeout: 5000 }).toBe(2);

    expect(Number(await r.client('KILL', 'TYPE', 'pubsub'))).toBe(2);
    d.send({ type: 'result', id, epoch: request.epoch, status: 'completed', result: 'done' });
    expect(await d.next('ack')).toMatchObject({ id });
    // The completion hint went out while node B's subscriber was down; B must catch up.
    const update = await watcher.next(
      (f) => f.type === 'request' && f.request.status === 'completed',
      5000,
    );
    expect(update.request).toMatchObject({ id, result: 'done' });
  });
});
