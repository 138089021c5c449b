/**
 * The daemon socket's limits (DESIGN.md section 7) and the half-closed socket that used
 * to spin the dispatcher (section 8), each driven with a real socket past the limit: a
 * daemon that never answers a close, one that never sends `ready`, one that never
 * reads, and runs of bad frames.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { DaemonConnection } from '../../hub/daemon-conn.js';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  STORE_BACKENDS,
} from '../helpers/node.js';
import { RawDaemon } from './raw-daemon.js';

const { defer, node } = stopAfterEach();

const runtimeName = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

async function create(n: SwitchboardNode, runtime: string, body: unknown): Promise<string> {
  const res = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
    token: await clientToken(),
    body,
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/** The node's side of a daemon socket, once it matches `pred`. */
async function serverConn(
  n: SwitchboardNode,
  pred: (c: DaemonConnection) => boolean,
): Promise<DaemonConnection> {
  let found: DaemonConnection | undefined;
  await expect
    .poll(() => (found = n.hub.dispatcher.connections.find(pred)), { timeout: 5000 })
    .toBeDefined();
  return found as DaemonConnection;
}

/** Counts the node's claims; past `limit` they fail, so a spinning loop ends. */
function countClaims(n: SwitchboardNode, limit: number): { calls: number } {
  const counter = { calls: 0 };
  const claim = n.store.claim.bind(n.store);
  n.store.claim = (rt, opts) => {
    counter.calls += 1;
    if (counter.calls > limit) return Promise.reject(new Error('claim budget spent'));
    return claim(rt, opts);
  };
  return counter;
}

async function healthy(n: SwitchboardNode): Promise<number> {
  const res = await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(3000) });
  return res.status;
}

const track = (d: FrameSocket) => {
  defer(() => (d.ws.readyState === WebSocket.OPEN ? d.close() : Promise.resolve()));
  return d;
};

/** The close code, or 'still open' after `ms`. */
const closeCode = (d: FrameSocket, ms = 5000) =>
  Promise.race([
    d.closed.then((c) => c.code),
    new Promise<string>((r) => setTimeout(() => r('still open'), ms)),
  ]);

describe.each(STORE_BACKENDS)('a half-closed daemon socket (%s store)', (_name, backend) => {
  it('gets no claims: the node keeps answering and a healthy daemon gets the request', async () => {
    const b = await backend();
    defer(() => b.stop());
    const n = await node(b.env);
    const runtime = runtimeName('half');
    const token = await daemonToken(runtime);
    const good = track(await readyDaemon(n, token, 1));
    await serverConn(n, (c) => c.rt.runtime === runtime && c.capacity === 1);

    // A raw daemon with more free capacity (so it is tried first) that never answers
    // the close the node starts after its bad frames.
    const raw = await RawDaemon.open(n, token);
    defer(() => raw.destroy());
    raw.send({ type: 'ready', capacity: 5 });
    const conn = await serverConn(n, (c) => c.rt.runtime === runtime && c.capacity === 5);
    for (let i = 0; i < 11; i++) raw.sendText(`bad ${i}`);
    await expect.poll(() => conn.ws.readyState, { timeout: 5000 }).toBe(WebSocket.CLOSING);

    const claims = countClaims(n, 200);
    const id = await create(n, runtime, { kind: 'k' });
    const pushed = await good.next('request', 5000).catch(() => null);
    expect(claims.calls, 'claims made for one request').toBeLessThanOrEqual(5);
    expect(pushed?.request.id).toBe(id);
    expect(await healthy(n)).toBe(200);
  });
});

describe('a terminated daemon socket', () => {
  it('has no free capacity from the moment it is terminated', async () => {
    const n = await node();
    const runtime = runtimeName('term');
    track(await readyDaemon(n, await daemonToken(runtime), 3));
    const conn = await serverConn(n, (c) => c.rt.runtime === runtime && c.capacity === 3);
    expect(conn.free).toBe(3);
    // What the ping watchdog does; `close` fires only later.
    conn.ws.terminate();
    expect(conn.free).toBe(0);
  });
});

describe('bad frames in a row', () => {
  it('closes with 1008 past MAX_BAD_FRAMES, and a good frame resets the run', async () => {
    const n = await node();
    const d = track(await FrameSocket.daemon(n, await daemonToken(runtimeName('bad'))));
    await d.next('hello');
    // Two runs of ten, each ended by a good frame (a renew, answered lease_lost).
    for (const round of [1, 2]) {
      for (let i = 0; i < 10; i++) d.send(`garbage ${round}.${i}`);
      d.send({ type: 'renew', id: `nope-${round}`, epoch: 1 });
      expect(await d.next('lease_lost')).toMatchObject({ id: `nope-${round}` });
    }
    expect(d.all('error')).toHaveLength(20);
    for (let i = 0; i < 11; i++) d.send(`garbage 3.${i}`);
    expect(await closeCode(d)).toBe(1008);
    expect(d.all('error')).toHaveLength(30);
  });

  it('uses the configured limit', async () => {
    const n = await node({ MAX_BAD_FRAMES: '3' });
    const d = track(await FrameSocket.daemon(n, await daemonToken(runtimeName('bad3'))));
    await d.next('hello');
    for (let i = 0; i < 4; i++) d.send(`garbage ${i}`);
    expect(await closeCode(d)).toBe(1008);
    expect(d.all('error')).toHaveLength(3);
  });
});

describe('the ready deadline', () => {
  it('closes sockets without a valid ready with 1008, and keeps the ready one', async () => {
    const n = await node({ READY_TIMEOUT_MS: '300' });
    const token = await daemonToken(runtimeName('ready'));
    const silent = await Promise.all(
      Array.from({ length: 5 }, async () => track(await FrameSocket.daemon(n, token))),
    );
    // An invalid ready does not count as one.
    silent[0]?.send({ type: 'ready', capacity: -1 });
    const ready = track(await readyDaemon(n, token, 1));
    const codes = await Promise.all(silent.map((d) => closeCode(d)));
    expect(codes).toEqual([1008, 1008, 1008, 1008, 1008]);
    // Its deadline has passed too; it still answers.
    ready.send({ type: 'renew', id: 'nope', epoch: 1 });
    expect(await ready.next('lease_lost')).toMatchObject({ id: 'nope' });
    expect(ready.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('a daemon that does not read', () => {
  it('is closed with 1013 past MAX_SOCKET_BUFFER_BYTES; what it never got is released', async () => {
    // Pushes stop once its buffer is backed up; the heartbeat visit that finds it still
    // backed up an interval later sheds it (before the ping watchdog, at two intervals).
    const n = await node({ MAX_SOCKET_BUFFER_BYTES: '65536', HEARTBEAT_INTERVAL_MS: '1000' });
    const slowRuntime = runtimeName('slow');
    const fastRuntime = runtimeName('fast');
    const fast = track(await readyDaemon(n, await daemonToken(fastRuntime), 1));
    const raw = await RawDaemon.open(n, await daemonToken(slowRuntime));
    defer(() => raw.destroy());
    raw.send({ type: 'ready', capacity: 100 });
    const conn = await serverConn(n, (c) => c.rt.runtime === slowRuntime && c.capacity === 100);
    const closes: unknown[] = [];
    const close = conn.ws.close.bind(conn.ws);
    conn.ws.close = (code?: number, reason?: string | Buffer) => {
      closes.push(code);
      close(code, reason);
    };
    raw.stopReading();

    const big = 'x'.repeat(200_000);
    const ids: string[] = [];
    for (let i = 0; i < 80; i += 10) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, () => create(n, slowRuntime, { kind: 'k', payload: big })),
        )),
      );
    }
    await expect
      .poll(() => n.hub.dispatcher.connections.includes(conn), { timeout: 8000 })
      .toBe(false);
    expect(closes[0]).toBe(1013);

    // The other runtime on this node is served as before.
    const id = await create(n, fastRuntime, { kind: 'k' });
    expect((await fast.next('request', 5000)).request.id).toBe(id);

    // Nothing lost: every request is running (pushed, left to its lease) or back to pending.
    const statuses = await Promise.all(
      ids.map(async (rid) => {
        const res = await api(n, 'GET', `/v1/runtimes/${slowRuntime}/requests/${rid}`, {
          token: await clientToken(),
        });
        return res.body.status as string;
      }),
    );
    expect(statuses.filter((s) => s !== 'running' && s !== 'pending')).toEqual([]);
    expect(statuses.filter((s) => s === 'pending').length).toBeGreaterThan(0);
  });
});

describe('a daemon that reads, behind a burst larger than the buffer cap', () => {
  it('is not closed: pushes that do not fit wait (released), and all arrive once it reads', async () => {
    const n = await node({ MAX_SOCKET_BUFFER_BYTES: '262144' });
    const runtime = runtimeName('burst');
    const d = track(await readyDaemon(n, await daemonToken(runtime), 64));
    const conn = await serverConn(n, (c) => c.rt.runtime === runtime && c.capacity === 64);
    d.ws.pause(); // it reads, just not at this moment: the kernel buffers fill
    const big = 'x'.repeat(200_000);
    const ids = await Promise.all(
      Array.from({ length: 64 }, () => create(n, runtime, { kind: 'k', payload: big })),
    );
    await expect.poll(() => conn.ws.bufferedAmount, { timeout: 8000 }).toBeGreaterThan(0);
    d.ws.resume();
    await expect
      .poll(() => new Set(d.all('request').map((f) => f.request.id)).size, { timeout: 15_000 })
      .toBe(ids.length);
    expect(conn.open).toBe(true);
    expect(n.hub.dispatcher.connections.includes(conn)).toBe(true);
  });
});
