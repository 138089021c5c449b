/**
 * The whole life of a request on one node, over real HTTP and a real daemon websocket,
 * on the embedded store and on Redis.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  STORE_BACKENDS,
  startTestNode,
} from '../helpers/node.js';
import { RedisCluster } from '../helpers/redis.js';

describe.each(STORE_BACKENDS)('one node (%s store)', (_name, backend) => {
  let node: SwitchboardNode;
  let stopBackend: () => Promise<void>;
  let client: string;
  let daemon: string;

  beforeAll(async () => {
    const b = await backend();
    stopBackend = b.stop;
    node = await startTestNode(b.env);
    client = await clientToken();
    daemon = await daemonToken('laptop');
  });
  afterAll(async () => {
    await node?.kill();
    await stopBackend?.();
  });

  it('creates, pushes, completes, and answers the long-poll', async () => {
    const d = await readyDaemon(node, daemon, 2);
    const hello = d.all('hello')[0]!;
    expect(hello).toMatchObject({ heartbeat_interval_ms: 1000, lease_ms: 30000 });

    const created = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'echo', payload: { say: 'hi' } },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const poll = api(node, 'GET', `/v1/runtimes/laptop/requests/${id}?wait_ms=10000`, {
      token: client,
    });

    const pushed = await d.next('request');
    expect(pushed.request).toMatchObject({
      id,
      kind: 'echo',
      payload: { say: 'hi' },
      epoch: 1,
      attempt: 1,
    });
    d.send({ type: 'renew', id, epoch: 1 });
    expect(await d.next('renewed')).toMatchObject({ id, epoch: 1 });
    d.send({ type: 'result', id, epoch: 1, status: 'completed', result: { said: 'hi' } });
    expect(await d.next('ack')).toEqual({ type: 'ack', id, epoch: 1 });

    const waited = await poll;
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({
      id,
      status: 'completed',
      result: { said: 'hi' },
      attempt: 1,
    });

    const runtimes = await api(node, 'GET', '/v1/runtimes', { token: client });
    expect(runtimes.body.runtimes).toEqual([
      expect.objectContaining({ id: 'laptop', online: true, pending: 0, running: 0 }),
    ]);
    expect(runtimes.body.runtimes[0].connections[0]).toMatchObject({
      capacity: 2,
      node_id: node.config.nodeId,
    });
    await d.close();
  });

  it('reports a failure and refuses a stale epoch', async () => {
    const d = await readyDaemon(node, daemon, 1);
    const created = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'boom' },
    });
    const { request } = await d.next('request');
    d.send({ type: 'result', id: request.id, epoch: 99, status: 'completed', result: 1 });
    expect(await d.next('nack')).toMatchObject({
      id: request.id,
      code: 'lease_lost',
      retry: false,
    });
    d.send({
      type: 'result',
      id: request.id,
      epoch: request.epoch,
      status: 'failed',
      error: { code: 'boom', message: 'it broke' },
    });
    await d.next('ack');
    const read = await api(node, 'GET', `/v1/runtimes/laptop/requests/${created.body.id}`, {
      token: client,
    });
    expect(read.body).toMatchObject({
      status: 'failed',
      error: { code: 'boom', message: 'it broke' },
    });
    await d.close();
  });

  it('exposes health, readiness and metrics', async () => {
    expect((await api(node, 'GET', '/healthz')).status).toBe(200);
    const ready = await api(node, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    const metrics = await api(node, 'GET', '/metrics');
    expect(metrics.body).toContain('switchboard_claims_total{path="push"');
    expect(metrics.body).toContain('switchboard_dispatch_latency_seconds_bucket');
  });

  it('pushes nothing before ready and drains the backlog on ready', async () => {
    const created = await api(node, 'POST', '/v1/runtimes/backlog/requests/batch', {
      token: client,
      body: { requests: [{ kind: 'a' }, { kind: 'b' }, { kind: 'c' }] },
    });
    expect(created.status).toBe(201);
    const d = await FrameSocket.daemon(node, await daemonToken('backlog'));
    await d.next('hello');
    expect(d.all('request')).toHaveLength(0);
    d.send({ type: 'ready', capacity: 5 });
    const kinds = [
      (await d.next('request')).request.kind,
      (await d.next('request')).request.kind,
      (await d.next('request')).request.kind,
    ];
    expect(kinds).toEqual(['a', 'b', 'c']);
    await d.close();
  });
});

describe('one node on Redis Cluster (REDIS_CLUSTER=true)', () => {
  let cluster: RedisCluster;
  let node: SwitchboardNode;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
    const urls = cluster.startupNodes.map((n) => `redis://${n.host}:${n.port}`).join(',');
    node = await startTestNode({ REDIS_URL: urls, REDIS_CLUSTER: 'true' });
  });
  afterAll(async () => {
    await node?.kill();
    await cluster?.close();
  });

  it('pushes, completes and answers the long-poll across cluster slots', async () => {
    const client = await clientToken();
    const daemons = await Promise.all(
      ['c-1', 'c-2', 'c-3'].map(async (rt) => readyDaemon(node, await daemonToken(rt), 1)),
    );
    for (const [i, d] of daemons.entries()) {
      const rt = `c-${i + 1}`;
      const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: client,
        body: { kind: 'echo', payload: i },
      });
      expect(created.status).toBe(201);
      const { request } = await d.next('request');
      d.send({
        type: 'result',
        id: request.id,
        epoch: request.epoch,
        status: 'completed',
        result: i,
      });
      await d.next('ack');
      const done = await api(
        node,
        'GET',
        `/v1/runtimes/${rt}/requests/${request.id}?wait_ms=5000`,
        {
          token: client,
        },
      );
      expect(done.body).toMatchObject({ status: 'completed', result: i });
      await d.close();
    }
    expect((await api(node, 'GET', '/readyz')).status).toBe(200);
  });
});
