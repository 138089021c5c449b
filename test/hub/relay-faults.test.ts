/**
 * The relay's faults, over real redis-server processes: a subscriber connection that is
 * down, and one whose SUBSCRIBE was in flight when its link was black-holed and then
 * cut. Long-polls must answer by their deadline, client subscribes must get a snapshot
 * or an error frame, and nothing may hang for good once the store is back.
 */
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, FrameSocket } from '../helpers/node.js';
import { BlackHoleProxy } from './blackhole.js';

const { defer, redis, node } = stopAfterEach();

/** A long-poll with an outer bound far past its deadline: null when it got no answer. */
async function longPoll(url: string, token: string, id: string, waitMs: number) {
  const started = Date.now();
  try {
    const res = await fetch(`${url}/v1/runtimes/laptop/requests/${id}?wait_ms=${waitMs}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(waitMs + 5_000),
    });
    return { status: res.status, body: (await res.json()) as any, ms: Date.now() - started };
  } catch {
    return null;
  }
}

async function create(n: { url: string }, token: string): Promise<string> {
  const res = await api(n, 'POST', '/v1/runtimes/laptop/requests', {
    token,
    body: { kind: 'echo', payload: {} },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function client(n: { url: string }, token: string): Promise<FrameSocket> {
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  return c;
}

describe('subscriber connection down (Redis unreachable)', () => {
  it('a long-poll answers by its deadline: 503 store_unavailable', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const token = await clientToken();
    const id = await create(n, token);
    await server.kill();
    const answer = await longPoll(n.url, token, id, 1000);
    expect(answer).not.toBeNull();
    expect(answer?.status).toBe(503);
    expect(answer?.body.error.code).toBe('store_unavailable');
  });

  it('a client subscribe gets an error frame store_unavailable', async () => {
    const server = await redis();
    const n = await node({ REDIS_URL: server.url });
    const c = await client(n, await clientToken());
    await server.kill();
    c.send({ type: 'subscribe', runtime: 'laptop' });
    const frame = await c.next((f) => f.type === 'snapshot' || f.type === 'error', 8_000);
    expect(frame).toMatchObject({ type: 'error', code: 'store_unavailable' });
  });
});

describe('SUBSCRIBE in flight when the subscriber link is black-holed, then cut', () => {
  it('long-polls and client subscribes for that runtime answer again afterwards', async () => {
    const server = await redis();
    const proxy = await BlackHoleProxy.start(server.port);
    defer(() => proxy.close());
    const n = await node({ REDIS_URL: proxy.url });
    const token = await clientToken();
    const id = await create(n, token);

    proxy.blackHole();
    proxy.sent = '';
    const during = longPoll(n.url, token, id, 1000);
    const c1 = await client(n, token);
    c1.send({ type: 'subscribe', runtime: 'laptop' });
    await expect.poll(() => /subscribe/i.test(proxy.sent), { timeout: 5000 }).toBe(true);
    proxy.cut();

    // Answered by its deadline even though its SUBSCRIBE never got an answer.
    expect(await during).not.toBeNull();
    await expect
      .poll(async () => (await api(n, 'GET', '/readyz')).status, { timeout: 10_000 })
      .toBe(200);

    const after = await longPoll(n.url, token, id, 1000);
    expect(after).not.toBeNull();
    expect(after?.status).toBe(200);
    expect(after?.body).toMatchObject({ id, status: 'pending' });

    const c2 = await client(n, token);
    c2.send({ type: 'subscribe', runtime: 'laptop' });
    const snap = await c2.next((f) => f.type === 'snapshot' || f.type === 'error', 8_000);
    expect(snap).toMatchObject({ type: 'snapshot', runtime: 'laptop' });
    expect(snap.requests.map((r: { id: string }) => r.id)).toContain(id);

    // And hints flow again: a cancel reaches the subscribed client.
    await api(n, 'POST', `/v1/runtimes/laptop/requests/${id}/cancel`, { token, body: {} });
    const update = await c2.next((f) => f.type === 'request' && f.request.id === id, 8_000);
    expect(update.request.status).toBe('cancelled');
  });
});
