/**
 * A node cut off from Redis (DESIGN.md section 7): two nodes on one Redis, node A behind
 * a proxy that black-holes its link. After STORE_LOST_DRAIN_MS A answers /readyz 503,
 * drains its daemons (store_unavailable) so they reconnect to B, refuses new daemon
 * sockets, and takes daemons again once its link is back.
 */
import { describe, expect, it } from 'vitest';
import { connectDaemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, FrameSocket, readyDaemon } from '../helpers/node.js';
import { BlackHoleProxy } from './blackhole.js';

const { defer, redis, node } = stopAfterEach();

const conns = (n: SwitchboardNode) => n.hub.dispatcher.connections.length;
const readyz = async (n: SwitchboardNode) => (await api(n, 'GET', '/readyz')).status;

async function upgradeStatus(n: SwitchboardNode, token: string): Promise<number> {
  try {
    const d = await FrameSocket.daemon(n, token);
    await d.close();
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? 0;
  }
}

describe('store lost on one node', () => {
  it("drains that node's daemons to a node that can serve them, then takes daemons again", async () => {
    const server = await redis();
    const proxy = await BlackHoleProxy.start(server.port);
    defer(() => proxy.close());
    const env = { STORE_LOST_DRAIN_MS: '1000' };
    const a = await node({ ...env, REDIS_URL: proxy.url, NODE_ID: 'node-a' });
    const b = await node({ ...env, REDIS_URL: server.url, NODE_ID: 'node-b' });
    defer(async () => proxy.cut()); // before the nodes stop: A's QUIT must not hang
    const dtoken = await daemonToken('laptop');
    const daemon = connectDaemon({
      url: [a.url, b.url],
      token: dtoken,
      capacity: 2,
      handlers: { echo: (payload) => payload },
      backoff: { initialMs: 50, maxMs: 200 },
    });
    defer(() => daemon.close());
    await expect.poll(() => conns(a), { timeout: 5000 }).toBe(1);
    const raw = await readyDaemon(a, dtoken);
    defer(() => raw.close());

    proxy.blackHole();
    expect((await raw.next('drain', 10_000)).reason).toBe('store_unavailable');
    expect((await raw.closed).code).toBe(1012);
    expect(await readyz(a)).toBe(503);
    await expect.poll(() => conns(b), { timeout: 10_000 }).toBe(1);
    expect(conns(a)).toBe(0);
    const refused = await upgradeStatus(a, dtoken);
    expect(refused).toBe(503);

    const token = await clientToken();
    const res = await api(b, 'POST', '/v1/runtimes/laptop/requests', {
      token,
      body: { kind: 'echo', payload: { n: 1 } },
    });
    expect(res.status).toBe(201);
    const done = await api(b, 'GET', `/v1/runtimes/laptop/requests/${res.body.id}?wait_ms=5000`, {
      token,
    });
    expect(done.body).toMatchObject({ status: 'completed', result: { n: 1 } });

    proxy.pass();
    await expect.poll(() => readyz(a), { timeout: 10_000 }).toBe(200);
    expect(await upgradeStatus(a, dtoken)).toBe(101);
  });
});
