/**
 * Store work per socket is bounded (DESIGN.md section 7): a hostile client or daemon
 * token holder keeps at most a fixed number of store calls of its node in flight,
 * however fast it sends valid frames, and other runtimes' dispatch still works.
 * The node's store methods are wrapped in the test to count the calls in flight.
 */
import { describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import type { RequestStore } from '../../stores/store.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, FrameSocket, readyDaemon } from '../helpers/node.js';

const { defer, redis, node } = stopAfterEach();

/** Wraps `method` of the node's store; counts calls in flight (those `which` selects). */
function countInFlight<K extends keyof RequestStore>(
  n: SwitchboardNode,
  method: K,
  which: (...args: any[]) => boolean = () => true,
) {
  const store = n.store as any;
  const original = store[method].bind(store);
  const count = { now: 0, peak: 0, calls: 0 };
  store[method] = async (...args: any[]) => {
    if (!which(...args)) return original(...args);
    count.now += 1;
    count.calls += 1;
    count.peak = Math.max(count.peak, count.now);
    try {
      return await original(...args);
    } finally {
      count.now -= 1;
    }
  };
  return count;
}

/**
 * Another socket holding a subscription to `runtime`, so its relay channel stays live
 * and a subscribe of the hostile socket goes straight on to its snapshot reads.
 */
async function watcher(n: { url: string }, token: string, runtime: string) {
  const w = await FrameSocket.client(n, token);
  defer(() => w.close());
  w.send({ type: 'subscribe', runtime });
  await w.next('snapshot');
}

async function create(n: { url: string }, token: string, runtime: string): Promise<string> {
  const res = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
    token,
    body: { kind: 'echo', payload: {} },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

describe('a hostile client socket', () => {
  it('subscribe/unsubscribe of 500 ids in a loop keeps at most 8 reads in flight; other runtimes still dispatch', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const token = await clientToken();
    const reads = countInFlight(n, 'get', (rt: { runtime: string }) => rt.runtime === 'hostile');
    const ids = Array.from({ length: 500 }, (_, i) => `01HOSTILE${String(i).padStart(17, '0')}`);
    await watcher(n, token, 'hostile');
    const c = await FrameSocket.client(n, token);
    defer(() => c.close());
    for (let i = 0; i < 200; i++) {
      c.send({ type: 'subscribe', runtime: 'hostile', requests: ids });
      c.send({ type: 'unsubscribe', runtime: 'hostile' });
    }
    // Meanwhile another runtime's request is pushed to its daemon.
    const d = await readyDaemon(n, await daemonToken('laptop'));
    defer(() => d.close());
    const id = await create(n, token, 'laptop');
    const pushed = await d.next('request', 8_000);
    expect(pushed.request.id).toBe(id);
    // A subscribe that stays gets its snapshot of all 500 ids, read through the same
    // bound (the loop's subscribes were refused or dropped, and hold no place by now).
    // The loop's reads may still hold their places for a moment: refused meanwhile
    // (limit_exceeded, naming the runtime), it is asked again, as a client would.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const from = c.frames.length;
      c.send({ type: 'subscribe', runtime: 'hostile', requests: ids });
      const answer = await c.next(
        (f) =>
          c.frames.indexOf(f) >= from &&
          f.runtime === 'hostile' &&
          (f.type === 'snapshot' || f.type === 'error'),
        8_000,
      );
      if (answer.type === 'snapshot') break;
      expect(answer.code).toBe('limit_exceeded');
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200)); // a client's backoff before asking again
    }
    expect(reads.calls).toBeGreaterThanOrEqual(500);
    await expect.poll(() => reads.now, { timeout: 8_000 }).toBe(0);
    expect(reads.peak).toBeGreaterThan(0);
    expect(reads.peak).toBeLessThanOrEqual(8);
  });

  it('a subscription still being read counts against the id limit until it ends', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url, MAX_SUBSCRIBED_IDS: '600' });
    const token = await clientToken();
    await watcher(n, token, 'a');
    const c = await FrameSocket.client(n, token);
    defer(() => c.close());
    const ids = Array.from({ length: 500 }, (_, i) => `01PENDING${String(i).padStart(17, '0')}`);
    c.send({ type: 'subscribe', runtime: 'a', requests: ids });
    c.send({ type: 'unsubscribe', runtime: 'a' });
    c.send({ type: 'subscribe', runtime: 'b', requests: ids });
    const answer = await c.next((f) => f.type === 'error' || f.type === 'snapshot', 8_000);
    expect(answer).toMatchObject({ type: 'error', code: 'limit_exceeded' });
    // Once the dropped one's reads ended, the same subscribe fits.
    await expect
      .poll(
        async () => {
          c.send({ type: 'subscribe', runtime: 'b', requests: ids });
          const f = await c.next((x) => x.type === 'error' || x.type === 'snapshot', 8_000);
          return f.type;
        },
        { timeout: 8_000 },
      )
      .toBe('snapshot');
  });
});

describe('a hostile daemon socket', () => {
  it('5,000 renew frames at once: at most 8 in flight, every frame answered', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const renews = countInFlight(n, 'renew');
    const token = await clientToken();
    const d = await readyDaemon(n, await daemonToken('laptop'));
    defer(() => d.close());
    const id = await create(n, token, 'laptop');
    const { request } = await d.next('request');
    const frames = 5_000;
    const text = JSON.stringify({ type: 'renew', id, epoch: request.epoch });
    for (let i = 0; i < frames; i++) d.ws.send(text);
    const answered = () =>
      d.frames.filter(
        (f) =>
          f.type === 'renewed' ||
          f.type === 'lease_lost' ||
          (f.type === 'error' && f.code === 'limit_exceeded'),
      ).length;
    await expect.poll(answered, { timeout: 15_000, interval: 50 }).toBe(frames);
    expect(renews.peak).toBeGreaterThan(0);
    expect(renews.peak).toBeLessThanOrEqual(8);
    expect(d.all('renewed').length).toBeGreaterThan(0);
    // The socket is still usable: its result is stored and acked.
    d.send({ type: 'result', id, epoch: request.epoch, status: 'completed', result: 1 });
    expect(await d.next((f) => f.type === 'ack' || f.type === 'nack')).toMatchObject({
      type: 'ack',
      id,
    });
  });

  it('results past the queue get nack store_unavailable with retry, and lose nothing', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const reports = countInFlight(n, 'report');
    const token = await clientToken();
    const d = await readyDaemon(n, await daemonToken('laptop'), 1);
    defer(() => d.close());
    const id = await create(n, token, 'laptop');
    const { request } = await d.next('request');
    const frames = 2_000;
    const text = JSON.stringify({
      type: 'result',
      id,
      epoch: request.epoch,
      status: 'completed',
      result: 'done',
    });
    for (let i = 0; i < frames; i++) d.ws.send(text);
    const answered = () => d.all('ack').length + d.all('nack').length;
    await expect.poll(answered, { timeout: 15_000, interval: 50 }).toBe(frames);
    expect(reports.peak).toBeLessThanOrEqual(8);
    for (const f of d.all('nack')) {
      expect(f).toMatchObject({ id, code: 'store_unavailable', retry: true });
    }
    expect(d.all('ack').length).toBeGreaterThan(0);
    const got = await api(n, 'GET', `/v1/runtimes/laptop/requests/${id}`, { token });
    expect(got.body).toMatchObject({ status: 'completed', result: 'done' });
  });

  it('ready frames: the capacity applies at once, the presence work at most once a second', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const upserts = countInFlight(n, 'upsertConnection');
    const token = await clientToken();
    const d = await FrameSocket.daemon(n, await daemonToken('laptop'));
    defer(() => d.close());
    await d.next('hello');
    const started = Date.now();
    for (let capacity = 1; capacity <= 500; capacity++) d.send({ type: 'ready', capacity });
    d.send({ type: 'ready', capacity: 3 });
    // The latest capacity wins, in the presence record as well.
    await expect
      .poll(
        async () => {
          const res = await api(n, 'GET', '/v1/runtimes/laptop', { token });
          return res.body.connections?.[0]?.capacity;
        },
        { timeout: 5_000 },
      )
      .toBe(3);
    const seconds = (Date.now() - started) / 1000;
    // Once a second for the ready frames, once a second for the periodic presence refresh.
    expect(upserts.calls).toBeLessThanOrEqual(2 * Math.ceil(seconds) + 2);
    const ids = [await create(n, token, 'laptop'), await create(n, token, 'laptop')];
    ids.push(await create(n, token, 'laptop'), await create(n, token, 'laptop'));
    const first = await d.next('request');
    const second = await d.next('request');
    const third = await d.next('request');
    expect(new Set([first, second, third].map((f) => f.request.id)).size).toBe(3);
    expect(d.all('request')).toHaveLength(3);
  });
});
