/**
 * Three nodes on one Redis, each with its own connections: a client creates on A, a
 * daemon on B gets the push and reports on B, a long-poll on C gets the result, and a
 * client websocket on A sees every state change and the daemon's presence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  startNodesOn,
} from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

describe('three nodes on one Redis', () => {
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

  it('create on A, push on B, result on B, long-poll on C, every change on A', async () => {
    const watcher = await FrameSocket.client(a, client);
    watcher.send({ type: 'subscribe', runtime: 'laptop' });
    const snapshot = await watcher.next('snapshot');
    expect(snapshot).toMatchObject({ runtime: 'laptop', requests: [] });

    const daemon = await readyDaemon(b, await daemonToken('laptop'), 1);
    const online = await watcher.next((f) => f.type === 'runtime' && f.runtime_info.online);
    expect(online.runtime_info.connections).toEqual([
      expect.objectContaining({ node_id: 'node-b', capacity: 1 }),
    ]);

    const created = await api(a, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'skills.list', payload: { q: 1 } },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const poll = api(c, 'GET', `/v1/runtimes/laptop/requests/${id}?wait_ms=20000`, {
      token: client,
    });

    const pushed = await daemon.next('request');
    expect(pushed.request).toMatchObject({ id, kind: 'skills.list', payload: { q: 1 }, epoch: 1 });
    const running = await watcher.next(
      (f) => f.type === 'request' && f.request.status === 'running',
    );
    expect(running.request).toMatchObject({ id, epoch: 1, attempt: 1 });

    daemon.send({ type: 'result', id, epoch: 1, status: 'completed', result: ['a', 'b'] });
    await daemon.next('ack');
    const finished = await watcher.next(
      (f) => f.type === 'request' && f.request.status === 'completed',
    );
    expect(finished.request.result).toEqual(['a', 'b']);
    const statuses = watcher
      .all('request')
      .filter((f) => f.request.id === id)
      .map((f) => f.request.status);
    expect(statuses).toEqual(
      ['pending', 'running', 'completed'].filter((s) => statuses.includes(s)),
    );
    expect(statuses).toContain('running');
    expect(statuses.at(-1)).toBe('completed');

    const waited = await poll;
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ id, status: 'completed', result: ['a', 'b'] });

    await daemon.close();
    const offline = await watcher.next((f) => f.type === 'runtime' && !f.runtime_info.online);
    expect(offline.runtime_info.connections).toEqual([]);
    await watcher.close();
  });

  it('gives each of many requests to exactly one daemon across nodes', async () => {
    const token = await daemonToken('pool');
    const daemons = await Promise.all([a, b, c].map((n) => readyDaemon(n, token, 3)));
    const seen = new Map<string, number>();
    for (const d of daemons) {
      d.ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (f.type !== 'request') return;
        seen.set(f.request.id, (seen.get(f.request.id) ?? 0) + 1);
        d.send({
          type: 'result',
          id: f.request.id,
          epoch: f.request.epoch,
          status: 'completed',
          result: null,
        });
      });
    }
    const body = { requests: Array.from({ length: 60 }, (_, i) => ({ kind: 'n', payload: i })) };
    const created = await api(b, 'POST', '/v1/runtimes/pool/requests/batch', {
      token: client,
      body,
    });
    expect(created.status).toBe(201);
    await expect
      .poll(
        async () =>
          (
            await api(c, 'GET', '/v1/runtimes/pool/requests?status=completed&limit=500', {
              token: client,
            })
          ).body.requests.length,
        { timeout: 10_000 },
      )
      .toBe(60);
    expect(seen.size).toBe(60);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    await Promise.all(daemons.map((d) => d.close()));
  });

  it('tells a watch_runtimes socket of every runtime, including one that appears later', async () => {
    const token = await clientToken('watchers');
    const watcher = await FrameSocket.client(c, token);
    const early = await readyDaemon(a, await daemonToken('early', 'watchers'), 1);
    watcher.send({ type: 'watch_runtimes' });
    const first = await watcher.next((f) => f.type === 'runtime' && f.runtime_info.id === 'early');
    expect(first.runtime_info.online).toBe(true);

    const late = await readyDaemon(b, await daemonToken('late', 'watchers'), 2);
    const appeared = await watcher.next(
      (f) => f.type === 'runtime' && f.runtime_info.id === 'late' && f.runtime_info.online,
    );
    expect(appeared.runtime_info.connections).toEqual([
      expect.objectContaining({ node_id: 'node-b', capacity: 2 }),
    ]);
    await late.close();
    await watcher.next(
      (f) => f.type === 'runtime' && f.runtime_info.id === 'late' && !f.runtime_info.online,
    );

    watcher.send({ type: 'unwatch_runtimes' });
    watcher.send({ type: 'subscribe', runtime: 'early' });
    await watcher.next('snapshot');
    await early.close();
    // Still told through the runtime's own subscription once the watch is off.
    await watcher.next(
      (f) => f.type === 'runtime' && f.runtime_info.id === 'early' && !f.runtime_info.online,
    );
    await watcher.close();
  });
});
