/**
 * Output streams across three nodes on one Redis (DESIGN.md section 6): a daemon on B
 * streams 5,000 chunks at full speed; one reader follows by client websocket, cut five
 * times and resubscribing on A, then C, in turn; one by SSE with Last-Event-ID
 * reconnects; one by HTTP paging; one subscribes only after the request completed.
 * Each reassembles exactly the daemon's sequence. Then a daemon whose socket drops
 * mid-stream finishes on another node, with nothing lost or stored twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { api, clientToken, daemonToken, readyDaemon, startNodesOn } from '../helpers/node.js';
import {
  type Chunk,
  readByPages,
  readBySocket,
  readBySse,
  streamFromDaemon,
} from '../helpers/output.js';
import { RedisServer } from '../helpers/redis.js';

const N = 5_000;
const data = (seq: number) => ({ seq, line: `line ${seq} ${'x'.repeat(seq % 50)}` });

function expectExactly(chunks: Chunk[], count: number, epoch: number): void {
  expect(chunks.length).toBe(count);
  chunks.forEach((c, i) => {
    if (c.offset !== i + 1 || c.epoch !== epoch) {
      expect({ at: i, chunk: c }).toEqual({
        at: i,
        chunk: { offset: i + 1, epoch, data: data(i + 1) },
      });
    }
  });
  expect(chunks.map((c) => c.data)).toEqual(Array.from({ length: count }, (_, i) => data(i + 1)));
}

describe('output streams across three nodes', () => {
  let server: RedisServer;
  let a: SwitchboardNode;
  let b: SwitchboardNode;
  let c: SwitchboardNode;
  let client: string;
  let daemon: string;

  beforeAll(async () => {
    server = await RedisServer.start();
    [a, b, c] = (await startNodesOn(server.url, 3)) as [
      SwitchboardNode,
      SwitchboardNode,
      SwitchboardNode,
    ];
    client = await clientToken();
    daemon = await daemonToken('laptop');
  });
  afterAll(async () => {
    await Promise.all([a, b, c].map((n) => n?.kill()));
    await server?.close();
  });

  async function claimOn(node: SwitchboardNode) {
    const socket = await readyDaemon(node, daemon, 1);
    const created = await api(a, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'stream', payload: { n: N } },
    });
    expect(created.status).toBe(201);
    const pushed = await socket.next('request');
    return { socket, id: pushed.request.id as string, epoch: pushed.request.epoch as number };
  }

  it('5,000 chunks from B reach socket, SSE and paging readers exactly, through cuts and node switches', async () => {
    const { socket, id, epoch } = await claimOn(b);
    const bySocket = readBySocket([c, a], client, 'laptop', id, 700, 5);
    const bySse = readBySse([c, a, b], client, 'laptop', id, 900, 4);
    const byPages = readByPages(c, client, 'laptop', id);
    await streamFromDaemon({ socket, id, epoch, count: N, data });
    socket.send({ type: 'result', id, epoch, status: 'completed', result: { chunks: N } });
    await socket.next((f) => f.type === 'ack' && f.id === id);

    expectExactly(await bySocket, N, epoch);
    const sse = await bySse;
    expectExactly(sse.chunks, N, epoch);
    expect(sse.states.at(-1)).toBe('completed');
    expectExactly(await byPages, N, epoch);
    // Subscribing after the end: the whole output, then the terminal snapshot.
    expectExactly(await readBySocket([b], client, 'laptop', id, N, 0), N, epoch);
    socket.ws.terminate();
  });

  it('a daemon whose socket drops mid-stream finishes on another node: nothing lost or stored twice', async () => {
    const { socket, id, epoch } = await claimOn(b);
    const reader = readBySocket([a], client, 'laptop', id, N, 0);
    const { socket: last } = await streamFromDaemon({
      socket,
      id,
      epoch,
      count: 2_000,
      data,
      reconnect: { afterAcks: 10, open: () => readyDaemon(c, daemon, 0) },
    });
    last.send({ type: 'result', id, epoch, status: 'completed', result: { chunks: 2_000 } });
    await last.next((f) => f.type === 'ack' && f.id === id);
    expectExactly(await reader, 2_000, epoch);
    expectExactly(await readByPages(a, client, 'laptop', id, 1000), 2_000, epoch);
    last.ws.terminate();
  });

  it('refuses output of a request the daemon does not hold at that epoch, and answers HTTP output', async () => {
    const { socket, id, epoch } = await claimOn(b);
    socket.send({ type: 'output', id, epoch: epoch + 1, seq: 1, data: 'stale' });
    const nack = await socket.next('nack');
    expect(nack).toMatchObject({ id, epoch: epoch + 1, seq: 1, code: 'lease_lost', retry: false });
    socket.send({ type: 'output', id, epoch, seq: 2, data: 'gap' });
    expect(await socket.next('nack')).toMatchObject({ seq: 2, code: 'invalid_message' });

    const posted = await api(c, 'POST', `/v1/daemon/requests/${id}/output`, {
      token: daemon,
      body: {
        epoch,
        chunks: [
          { seq: 1, data: 'one' },
          { seq: 2, data: { two: 2 } },
        ],
      },
    });
    expect(posted).toEqual({ status: 200, body: { epoch, acked_seq: 2 } });
    const again = await api(c, 'POST', `/v1/daemon/requests/${id}/output`, {
      token: daemon,
      body: {
        epoch,
        chunks: [
          { seq: 2, data: { two: 2 } },
          { seq: 4, data: 'gap' },
        ],
      },
    });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('invalid_request');
    const stale = await api(c, 'POST', `/v1/daemon/requests/${id}/output`, {
      token: daemon,
      body: { epoch: epoch + 5, chunks: [{ seq: 1, data: 1 }] },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('lease_lost');
    const page = await api(a, 'GET', `/v1/runtimes/laptop/requests/${id}/output?after=1&limit=5`, {
      token: client,
    });
    expect(page).toEqual({
      status: 200,
      body: { chunks: [{ offset: 2, epoch, data: { two: 2 } }], next_after: 2, done: false },
    });
    const tooMany = await api(a, 'GET', `/v1/runtimes/laptop/requests/${id}/output?limit=1001`, {
      token: client,
    });
    expect(tooMany.status).toBe(400);
    const missing = await api(a, 'GET', '/v1/runtimes/laptop/requests/01NOSUCHREQUEST/output', {
      token: client,
    });
    expect(missing.status).toBe(404);
    socket.ws.terminate();
  });
});
