/**
 * GET /v1/stats across nodes on one Redis: every node answers the same figures (each
 * flushes its counts into the shared per-minute buckets), a node that closes flushes
 * what it had, and the pending gauge comes from whichever node sweeps the runtime.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { api, clientToken, daemonToken, startNodesOn } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

describe('GET /v1/stats on three nodes on one Redis', () => {
  let server: RedisServer;
  let nodes: SwitchboardNode[];
  let daemon: Daemon;
  let client: string;

  beforeAll(async () => {
    server = await RedisServer.start();
    nodes = await startNodesOn(server.url, 3);
    client = await clientToken();
  });
  afterAll(async () => {
    await daemon?.close();
    await Promise.all(nodes.map((n) => n.kill()));
    await server?.close();
  });

  it('answers the same merged figures on every node, including a closed node’s last ones', async () => {
    const [a, b, c] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
    daemon = connectDaemon({
      url: b.url,
      token: await daemonToken('laptop'),
      capacity: 4,
      handlers: { echo: async (p) => p, fail: async () => Promise.reject(new Error('no')) },
    });
    const ids: [SwitchboardNode, string][] = [];
    for (const [node, kind, n] of [
      [a, 'echo', 6],
      [b, 'echo', 4],
      [a, 'fail', 2],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const res = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
          token: client,
          body: { kind, payload: { i } },
        });
        expect(res.status).toBe(201);
        ids.push([node, res.body.id]);
      }
    }
    for (const [node, id] of ids) {
      const res = await api(node, 'GET', `/v1/runtimes/laptop/requests/${id}?wait_ms=20000`, {
        token: client,
      });
      expect(['completed', 'failed']).toContain(res.body.status);
    }
    // Three that wait (no daemon for `idle`), created on C, which then closes at once.
    for (let i = 0; i < 3; i++) {
      await api(c, 'POST', '/v1/runtimes/idle/requests', { token: client, body: { kind: 'x' } });
    }
    await c.close();

    const figures = async (node: SwitchboardNode) => {
      const { body } = await api(node, 'GET', '/v1/stats', { token: client });
      const sum = (f: string) => body.minutes.reduce((n: number, m: any) => n + m[f], 0);
      const pendingIdle = Math.max(
        0,
        ...(body.pending.idle ?? []).map((v: number | null) => v ?? 0),
      );
      return {
        created: sum('created'),
        completed: sum('completed'),
        failed: sum('failed'),
        pendingIdle,
      };
    };
    const want = { created: 15, completed: 10, failed: 2, pendingIdle: 3 };
    await expect.poll(() => figures(a), { timeout: 15_000 }).toEqual(want);
    await expect.poll(() => figures(b), { timeout: 15_000 }).toEqual(want);
    const onA = await api(a, 'GET', '/v1/stats', { token: client });
    const onB = await api(b, 'GET', '/v1/stats', { token: client });
    // The same buckets: every minute's figures agree (the window may have moved on by one).
    const byT = (body: any) => new Map(body.minutes.map((m: any) => [m.t, m]));
    const mapA = byT(onA.body);
    for (const [t, m] of byT(onB.body)) if (mapA.has(t)) expect(m).toEqual(mapA.get(t));
    const measured = onA.body.minutes.filter((m: any) => m.p50_ms !== null);
    expect(measured.length).toBeGreaterThan(0);
    for (const m of measured) expect(m.p99_ms).toBeGreaterThanOrEqual(m.p50_ms);
  });
});
