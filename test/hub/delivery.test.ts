/**
 * Delivery across nodes: three real nodes on one real redis-server, real daemon sockets.
 * A lease survives a reconnect to another node, an expired lease is redelivered (or
 * times out), a daemon never holds more than its declared capacity, and a cancel reaches
 * the daemon that holds the request. Each test uses its own runtime.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { api, clientToken, daemonToken, readyDaemon, startNodesOn } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

const never = new Promise<never>(() => {});

describe('delivery across three nodes on one Redis', () => {
  let server: RedisServer;
  let a: SwitchboardNode;
  let b: SwitchboardNode;
  let c: SwitchboardNode;
  let client: string;

  beforeAll(async () => {
    server = await RedisServer.start();
    [a, b, c] = (await startNodesOn(server.url, 3)) as [
      SwitchboardNode,
      SwitchboardNode,
      SwitchboardNode,
    ];
    client = await clientToken();
  });
  afterAll(async () => {
    await Promise.all([a, b, c].map((n) => n?.kill()));
    await server?.close();
  });

  const create = async (node: SwitchboardNode, runtime: string, body: Record<string, unknown>) => {
    const res = await api(node, 'POST', `/v1/runtimes/${runtime}/requests`, {
      token: client,
      body,
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const get = async (node: SwitchboardNode, runtime: string, id: string) =>
    (await api(node, 'GET', `/v1/runtimes/${runtime}/requests/${id}`, { token: client })).body;

  it('accepts a result over a new socket on another node, with the original epoch', async () => {
    const token = await daemonToken('roam');
    const first = await readyDaemon(a, token, 1);
    const id = await create(c, 'roam', { kind: 'work', payload: { n: 1 } });
    const poll = api(c, 'GET', `/v1/runtimes/roam/requests/${id}?wait_ms=20000`, { token: client });
    const { request } = await first.next('request');
    expect(request).toMatchObject({ id, epoch: 1, attempt: 1 });
    await first.close();

    // Node A no longer has a socket for the runtime; the lease is still the daemon's.
    const second = await readyDaemon(b, token, 1);
    second.send({ type: 'result', id, epoch: 1, status: 'completed', result: { via: 'b' } });
    expect(await second.next((f) => f.type === 'ack' || f.type === 'nack')).toEqual({
      type: 'ack',
      id,
      epoch: 1,
    });
    const waited = await poll;
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({
      id,
      status: 'completed',
      result: { via: 'b' },
      attempt: 1,
    });
    await second.close();
  });

  it('accepts a result over HTTP on a third node, with the original epoch', async () => {
    const token = await daemonToken('roam-http');
    const d = await readyDaemon(a, token, 1);
    const id = await create(b, 'roam-http', { kind: 'work' });
    const { request } = await d.next('request');
    await d.close();

    const path = `/v1/daemon/requests/${id}/result`;
    const stale = await api(c, 'POST', path, {
      token,
      body: { epoch: request.epoch + 1, status: 'completed', result: 'wrong' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('lease_lost');
    const ok = await api(c, 'POST', path, {
      token,
      body: { epoch: request.epoch, status: 'completed', result: { via: 'http' } },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.request).toMatchObject({ id, status: 'completed', result: { via: 'http' } });
    expect(await get(b, 'roam-http', id)).toMatchObject({
      status: 'completed',
      result: { via: 'http' },
    });
  });

  // Deterministic "another connection": daemon 1 re-declares capacity 0 right after it
  // gets the request (before the 500 ms lease can lapse), so when its slot is freed by the
  // lease loss it cannot take the request back; daemon 2 connects only once node A shows
  // that capacity 0 in presence. Daemon 1 keeps its socket, so it sees the lease_lost.
  it('redelivers an expired lease to another connection and fences the late result', async () => {
    const token = await daemonToken('lease');
    const d1 = await readyDaemon(a, token, 1);
    const id = await create(c, 'lease', { kind: 'slow', max_attempts: 2, lease_ms: 500 });
    const first = (await d1.next('request')).request;
    expect(first).toMatchObject({ id, epoch: 1, attempt: 1 });
    d1.send({ type: 'ready', capacity: 0 });
    await expect
      .poll(async () => (await api(c, 'GET', '/v1/runtimes/lease', { token: client })).body, {
        timeout: 5000,
      })
      .toMatchObject({ connections: [{ node_id: 'node-a', capacity: 0 }] });

    const d2 = await readyDaemon(b, token, 1);
    const again = (await d2.next('request')).request;
    expect(again).toMatchObject({ id, attempt: 2 });
    expect(again.epoch).toBe(3); // claim 1, lease-expiry requeue 2, claim 3
    expect(await d1.next('lease_lost')).toEqual({ type: 'lease_lost', id, epoch: 1 });

    d1.send({ type: 'result', id, epoch: 1, status: 'completed', result: 'late' });
    expect(await d1.next((f) => f.type === 'ack' || f.type === 'nack')).toMatchObject({
      type: 'nack',
      id,
      epoch: 1,
      code: 'lease_lost',
      retry: false,
    });
    d2.send({ type: 'result', id, epoch: 3, status: 'completed', result: 'second' });
    expect(await d2.next((f) => f.type === 'ack' || f.type === 'nack')).toEqual({
      type: 'ack',
      id,
      epoch: 3,
    });
    expect(await get(c, 'lease', id)).toMatchObject({
      status: 'completed',
      result: 'second',
      attempt: 2,
      epoch: 3,
    });
    expect(d1.all('request')).toHaveLength(1);
    await Promise.all([d1.close(), d2.close()]);
  });

  it('times out an expired lease with no attempts left (lease_expired)', async () => {
    const token = await daemonToken('lease-once');
    const d = await readyDaemon(a, token, 1);
    const id = await create(b, 'lease-once', { kind: 'slow', lease_ms: 500 });
    const { request } = await d.next('request');
    expect(request).toMatchObject({ id, epoch: 1, attempt: 1 });
    await expect
      .poll(() => get(c, 'lease-once', id), { timeout: 10_000 })
      .toMatchObject({ status: 'timeout', attempt: 1, error: { code: 'lease_expired' } });
    d.send({ type: 'result', id, epoch: 1, status: 'completed', result: 'too late' });
    expect(await d.next((f) => f.type === 'ack' || f.type === 'nack')).toMatchObject({
      type: 'nack',
      code: 'lease_lost',
    });
    expect(await get(b, 'lease-once', id)).toMatchObject({ status: 'timeout', result: null });
    expect(d.all('request')).toHaveLength(1);
    await d.close();
  });

  // In flight, as the daemon sees it: request frames received minus results sent and
  // acked (a result is the daemon's until acked: a `nack` with retry means report again).
  // `working` (received minus results sent) is the looser count, asserted first.
  it('never has more than the declared capacity in flight under a burst of 200', async () => {
    const token = await daemonToken('burst');
    const d = await readyDaemon(a, token, 2);
    let inFlight = 0;
    let working = 0;
    let maxInFlight = 0;
    let maxWorking = 0;
    const delivered = new Set<string>();
    const duplicates: string[] = [];
    const acked = new Set<string>();
    const nacks: unknown[] = [];
    d.ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'request') {
        const key = `${f.request.id}@${f.request.epoch}`;
        if (delivered.has(key)) duplicates.push(key);
        delivered.add(key);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        maxWorking = Math.max(maxWorking, ++working);
        // Simulated work, not synchronisation: the result goes out 0-5 ms later.
        setTimeout(() => {
          working--;
          const { id, epoch, payload } = f.request;
          d.send({ type: 'result', id, epoch, status: 'completed', result: payload });
        }, Math.random() * 5);
      } else if (f.type === 'ack') {
        inFlight--;
        acked.add(f.id);
      } else if (f.type === 'nack') {
        nacks.push(f);
      }
    });

    const batch = await api(b, 'POST', '/v1/runtimes/burst/requests/batch', {
      token: client,
      body: {
        requests: Array.from({ length: 200 }, (_, n) => ({ kind: 'burst', payload: { n } })),
      },
    });
    expect(batch.status).toBe(201);
    const ids = (batch.body.requests as { id: string }[]).map((r) => r.id);
    await expect.poll(() => acked.size, { timeout: 25_000, interval: 50 }).toBe(200);

    expect(duplicates).toEqual([]);
    expect(nacks).toEqual([]);
    expect(delivered.size).toBe(200);
    const list = await api(c, 'GET', '/v1/runtimes/burst/requests?status=completed&limit=500', {
      token: client,
    });
    expect(new Set(list.body.requests.map((r: { id: string }) => r.id))).toEqual(new Set(ids));
    expect(maxWorking).toBe(2); // never above 2, and the burst did fill the capacity
    expect(
      maxInFlight,
      'a request was pushed before the ack of the result that freed its slot',
    ).toBeLessThanOrEqual(2);
    await d.close();
  });

  it('does not free a slot for a fenced-out report of a request held on this node', async () => {
    const token = await daemonToken('slot');
    const d = await readyDaemon(a, token, 1);
    const x = await create(b, 'slot', { kind: 'x' });
    expect((await d.next('request')).request).toMatchObject({ id: x, epoch: 1 });
    const y = await create(b, 'slot', { kind: 'y' }); // stays pending: d is full

    // A stale report (wrong epoch: an earlier holder's, or a confused daemon's) on node A.
    const stale = await api(a, 'POST', `/v1/daemon/requests/${x}/result`, {
      token,
      body: { epoch: 0, status: 'completed', result: 'stale' },
    });
    expect(stale.status).toBe(409);
    // A second connection on node A with room: y must go there, since d still holds x.
    const d2 = await readyDaemon(a, token, 1);
    // Whichever socket gets the next push first (the loser's wait ends when it closes).
    const first = await Promise.race([
      d.next('request').then(
        (f) => ({ to: 'd (full, capacity 1)', id: f.request.id }),
        () => never,
      ),
      d2.next('request').then(
        (f) => ({ to: 'd2', id: f.request.id }),
        () => never,
      ),
    ]);
    expect(first).toEqual({ to: 'd2', id: y });
    expect(await get(c, 'slot', x)).toMatchObject({ status: 'running', epoch: 1 });
    await Promise.all([d.close(), d2.close()]);
  });

  it('tells the daemon holding a running request that it was cancelled on another node', async () => {
    const token = await daemonToken('hold');
    const d = await readyDaemon(a, token, 1);
    const id = await create(b, 'hold', { kind: 'long' });
    const { request } = await d.next('request');

    const cancelled = await api(c, 'POST', `/v1/runtimes/hold/requests/${id}/cancel`, {
      token: client,
      body: { reason: 'changed my mind' },
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id, status: 'cancelled' });
    expect(await d.next('cancel')).toEqual({ type: 'cancel', id, epoch: request.epoch });

    d.send({
      type: 'result',
      id,
      epoch: request.epoch,
      status: 'completed',
      result: 'done anyway',
    });
    expect(await d.next((f) => f.type === 'ack' || f.type === 'nack')).toMatchObject({
      type: 'nack',
      id,
      epoch: request.epoch,
      code: 'lease_lost',
      retry: false,
    });
    expect(await get(b, 'hold', id)).toMatchObject({
      status: 'cancelled',
      result: null,
      error: { code: 'cancelled' },
    });
    await d.close();
  });
});
