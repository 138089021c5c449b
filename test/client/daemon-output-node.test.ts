/**
 * `ctx.output()` end to end against real nodes (both stores): a daemon streams 1,000
 * chunks (`--echo`'s `stream` kind) and a client reads them back with
 * `GET .../output`, every one present, in order, once; the same over HTTP when no socket
 * can be had (a proxy that refuses upgrades); and a daemon whose socket is cut
 * mid-stream finishes on another node without losing or doubling a chunk.
 */
import { describe, expect, it } from 'vitest';
import type { OutputChunk } from '../../protocol/index.js';
import { connectDaemon, type HandlerContext } from '../../src/client/daemon.js';
import { echoChunk, echoHandlers } from '../../src/client/echo.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, STORE_BACKENDS, startNodesOn } from '../helpers/node.js';
import { HttpProxy, TcpProxy } from '../helpers/proxy.js';
import { until } from './scripted-hub.js';

const { defer, node, redis } = stopAfterEach();

async function daemon(url: string | string[], runtime: string, handlers = echoHandlers) {
  const d = connectDaemon({
    url,
    token: await daemonToken(runtime),
    handlers,
    closeTimeoutMs: 1000,
    backoff: { initialMs: 20, maxMs: 200 },
    socketFailuresBeforePolling: 1,
    pollIntervalMs: 50,
  });
  defer(() => d.close());
  return d;
}

function client(url: string, token: string, runtime: string) {
  const path = `/v1/runtimes/${runtime}/requests`;
  return {
    async create(body: Record<string, unknown>): Promise<string> {
      const res = await api({ url }, 'POST', path, { token, body });
      expect(res.status).toBe(201);
      return res.body.id as string;
    },
    async wait(id: string): Promise<any> {
      const res = await api({ url }, 'GET', `${path}/${id}?wait_ms=20000`, { token });
      expect(res.status).toBe(200);
      return res.body;
    },
    /** The whole output, paged `limit` at a time. */
    async output(id: string, limit: number): Promise<OutputChunk[]> {
      const all: OutputChunk[] = [];
      let after = 0;
      for (;;) {
        const res = await api(
          { url },
          'GET',
          `${path}/${id}/output?after=${after}&limit=${limit}`,
          {
            token,
          },
        );
        expect(res.status).toBe(200);
        all.push(...res.body.chunks);
        after = res.body.next_after;
        if (res.body.done) return all;
        expect(res.body.chunks.length).toBeGreaterThan(0);
      }
    },
  };
}

const expected = (n: number, size: number, epoch = 1) =>
  Array.from({ length: n }, (_, i) => ({ offset: i + 1, epoch, data: echoChunk(i + 1, size) }));

describe.each(STORE_BACKENDS)('streaming output to a real node (%s store)', (_name, backend) => {
  it('1,000 chunks over the socket, read back in order by GET .../output', async () => {
    const store = await backend();
    defer(() => store.stop());
    const n = await node(store.env);
    const runtime = 'stream-ws';
    const d = await daemon(n.url, runtime);
    await until(() => d.state === 'socket', 'the socket');
    const c = client(n.url, await clientToken(), runtime);
    const id = await c.create({ kind: 'stream', payload: { chunks: 1000, size: 32 } });
    const done = await c.wait(id);
    expect(done).toMatchObject({ status: 'completed', result: { chunks: 1000 } });
    expect(await c.output(id, 400)).toEqual(expected(1000, 32));
  });

  it('1,000 chunks over HTTP batches when no socket can be had', async () => {
    const store = await backend();
    defer(() => store.stop());
    const n = await node(store.env);
    const proxy = await HttpProxy.start(n.url, { refuseUpgrades: true });
    defer(() => proxy.close());
    const runtime = 'stream-http';
    const d = await daemon(proxy.url, runtime);
    await until(() => d.state === 'polling', 'polling');
    const c = client(n.url, await clientToken(), runtime);
    const id = await c.create({ kind: 'stream', payload: { chunks: 1000, size: 8 } });
    const done = await c.wait(id);
    expect(done).toMatchObject({ status: 'completed', result: { chunks: 1000 } });
    expect(proxy.proxiedUpgrades).toBe(0);
    expect(await c.output(id, 1000)).toEqual(expected(1000, 8));
  });
});

describe('a daemon whose socket is cut mid-stream', () => {
  it('finishes the stream on another node: nothing lost, nothing stored twice', async () => {
    const server = await redis();
    const [a, b] = await startNodesOn(server.url, 2);
    if (!a || !b) throw new Error('two nodes');
    defer(() => a.kill());
    defer(() => b.kill());
    const toA = new TcpProxy(() => a.port);
    await toA.start();
    defer(() => toA.close());
    const runtime = 'stream-cut';
    let written = 0;
    let resume!: () => void;
    const resumed = new Promise<void>((r) => {
      resume = r;
    });
    // Writes 1,000 chunks, 16 in flight; pauses after the 300th until the test says.
    const stream = async (_p: unknown, ctx: HandlerContext) => {
      const inFlight: Promise<void>[] = [];
      for (let i = 1; i <= 1000; i++) {
        inFlight.push(ctx.output(echoChunk(i, 8)));
        written = i;
        if (i === 300) await resumed;
        if (inFlight.length >= 16) await inFlight.shift();
      }
      await Promise.all(inFlight);
      return { chunks: 1000 };
    };
    const d = await daemon([toA.url, b.url], runtime, { stream });
    await until(() => d.state === 'socket', 'the socket');
    const c = client(b.url, await clientToken(), runtime);
    const id = await c.create({ kind: 'stream', payload: null });
    await until(() => written === 300, '300 chunks written');
    // The path to node A holds every byte: chunk 301 on goes out and is never acked.
    toA.blackhole();
    resume();
    await until(() => written > 300, 'chunk 301 written');
    // Then it goes away for good (RST, held bytes dropped): the daemon moves to B.
    await toA.close();
    const done = await c.wait(id);
    expect(done).toMatchObject({ status: 'completed', attempt: 1, result: { chunks: 1000 } });
    expect(await c.output(id, 1000)).toEqual(expected(1000, 8));
  });
});
