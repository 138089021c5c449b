/**
 * The daemon SDK (`connectDaemon`) against real nodes, real sockets and real HTTP: the
 * handler table, reconnecting to another node when one dies (a result held across the
 * crash is still accepted) or drains, heartbeat polling while websockets are refused
 * and back to the socket when they are not, result retries across a Redis outage,
 * cancel reaching the handler's AbortSignal, the capacity bound, close() (draining, its
 * time bound, during a handshake, during a heartbeat), and lease renewal. Each test
 * uses its own runtime; everything it starts is stopped after it.
 */
import { describe, expect, it } from 'vitest';
import type { DaemonRequest } from '../../protocol/index.js';
import { connectDaemon, type Daemon, type DaemonOptions } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, metric } from '../helpers/node.js';
import { type Frame, HttpProxy } from '../helpers/proxy.js';

type Reported = { id: string; epoch: number; status: string; accepted: boolean };

// Everything a test starts is stopped after it, newest first.
const { defer, redis, node } = stopAfterEach();

async function proxyTo(n: SwitchboardNode, refuseUpgrades = false): Promise<HttpProxy> {
  const proxy = await HttpProxy.start(n.url, { refuseUpgrades });
  defer(() => proxy.close());
  return proxy;
}

/** A daemon for `runtime`, closed after the test (a short close bound: nothing hangs). */
async function daemon(
  runtime: string,
  opts: Omit<DaemonOptions, 'token'>,
): Promise<{ d: Daemon; reported: Reported[]; requests: DaemonRequest[] }> {
  const d = connectDaemon({ closeTimeoutMs: 1000, ...opts, token: await daemonToken(runtime) });
  defer(() => d.close());
  const reported: Reported[] = [];
  const requests: DaemonRequest[] = [];
  d.on('reported', (r) => reported.push(r));
  d.on('request', (r) => requests.push(r));
  return { d, reported, requests };
}

/** The next `event` from the daemon that satisfies `pred` (registered now). */
function next<T>(
  d: Daemon,
  event: 'state' | 'request' | 'reported',
  pred: (value: T) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const listener = (value: T) => {
      if (!pred(value)) return;
      clearTimeout(timer);
      d.off(event, listener as never);
      resolve(value);
    };
    const timer = setTimeout(() => {
      d.off(event, listener as never);
      reject(new Error(`no matching '${event}' within ${timeoutMs} ms (state ${d.state})`));
    }, timeoutMs);
    d.on(event, listener as never);
  });
}

const nextState = (d: Daemon, state: string, timeoutMs?: number) =>
  next<string>(d, 'state', (s) => s === state, timeoutMs);
const nextRequest = (d: Daemon, pred: (r: DaemonRequest) => boolean = () => true) =>
  next<DaemonRequest>(d, 'request', pred);
const nextReported = (d: Daemon, id: string, timeoutMs?: number) =>
  next<Reported>(d, 'reported', (r) => r.id === id, timeoutMs);

function deferred<T = unknown>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const work = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const never = new Promise<never>(() => {});

function hub(n: { url: string }, client: string, runtime: string) {
  const path = `/v1/runtimes/${runtime}`;
  return {
    async create(body: Record<string, unknown>): Promise<string> {
      const res = await api(n, 'POST', `${path}/requests`, { token: client, body });
      expect(res.status).toBe(201);
      return res.body.id as string;
    },
    async get(id: string): Promise<any> {
      const res = await api(n, 'GET', `${path}/requests/${id}`, { token: client });
      expect(res.status).toBe(200);
      return res.body;
    },
    /** Long-poll: answers when the request is terminal (or after 20 s). */
    async wait(id: string): Promise<any> {
      const res = await api(n, 'GET', `${path}/requests/${id}?wait_ms=20000`, { token: client });
      expect(res).toMatchObject({ status: 200 });
      return res.body;
    },
    async runtime(): Promise<any> {
      return (await api(n, 'GET', path, { token: client })).body;
    },
  };
}

const quick = { initialMs: 50, maxMs: 200 };

describe('handlers', () => {
  it('completes with the handler result, fails on a throw, and routes other kinds to "*"', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'basics');
    const { d } = await daemon('basics', {
      url: n.url,
      capacity: 2,
      handlers: {
        echo: (payload) => payload,
        boom: () => {
          throw new Error('boom: bad input');
        },
        '*': (payload, ctx) => ({ payload, kind: ctx.kind, id: ctx.id, attempt: ctx.attempt }),
      },
    });
    await nextState(d, 'socket');

    const payload = { a: 1, list: [1, 'two', null], nested: { ok: true } };
    const echo = await h.create({ kind: 'echo', payload });
    expect(await h.wait(echo)).toMatchObject({
      id: echo,
      status: 'completed',
      result: payload,
      error: null,
      attempt: 1,
    });

    const boom = await h.create({ kind: 'boom', payload: 1 });
    expect(await h.wait(boom)).toMatchObject({
      status: 'failed',
      result: null,
      error: { code: 'handler_error', message: 'boom: bad input' },
    });

    const other = await h.create({ kind: 'skills.list', payload: 'p' });
    expect(await h.wait(other)).toMatchObject({
      status: 'completed',
      result: { payload: 'p', kind: 'skills.list', id: other, attempt: 1 },
    });
  });

  it('fails a kind with no handler (and no "*") with unknown_kind', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'narrow');
    const { d, reported } = await daemon('narrow', {
      url: n.url,
      handlers: { known: () => 'ok' },
    });
    await nextState(d, 'socket');
    const id = await h.create({ kind: 'nobody.handles.this' });
    expect(await h.wait(id)).toMatchObject({
      status: 'failed',
      error: { code: 'unknown_kind', message: expect.stringContaining('nobody.handles.this') },
    });
    expect(reported).toContainEqual(expect.objectContaining({ id, status: 'failed' }));
    const known = await h.create({ kind: 'known' });
    expect(await h.wait(known)).toMatchObject({ status: 'completed', result: 'ok' });
  });
});

describe('reconnect after the node is killed', () => {
  it('moves to the next URL by itself; a result held across the crash is accepted there', async () => {
    const server = await redis();
    const a = await node({ REDIS_URL: server.url, NODE_ID: 'node-a' });
    const b = await node({ REDIS_URL: server.url, NODE_ID: 'node-b' });
    const client = await clientToken();
    const onA = hub(a, client, 'roamer');
    const onB = hub(b, client, 'roamer');
    const gate = deferred();
    const { d } = await daemon('roamer', {
      url: [a.url, b.url],
      capacity: 2,
      backoff: quick,
      handlers: { hold: () => gate.promise, echo: (p) => p },
    });
    try {
      await nextState(d, 'socket');
      expect((await onA.runtime()).connections).toEqual([
        expect.objectContaining({ node_id: 'node-a', capacity: 2 }),
      ]);
      const claimed = nextRequest(d, (r) => r.kind === 'hold');
      const held = await onA.create({ kind: 'hold', payload: 'x' });
      const request = await claimed;
      expect(request).toMatchObject({ id: held, attempt: 1 });

      const down = nextState(d, 'connecting');
      const back = nextState(d, 'socket');
      const killedAt = Date.now();
      await a.kill();
      await down;
      await back;
      console.info(`reconnect: on node B ${Date.now() - killedAt} ms after node A was killed`);
      await expect
        .poll(async () => (await onB.runtime()).connections, { timeout: 5000 })
        .toContainEqual(expect.objectContaining({ node_id: 'node-b' }));

      // The handler that was running when A died finishes now: the report goes over the
      // new socket (to B) with the original epoch, and is accepted.
      const waiting = onB.wait(held);
      const settled = nextReported(d, held);
      gate.resolve({ survived: true });
      expect(await settled).toEqual({
        id: held,
        epoch: request.epoch,
        status: 'completed',
        accepted: true,
      });
      expect(await waiting).toMatchObject({
        id: held,
        status: 'completed',
        result: { survived: true },
        epoch: request.epoch,
        attempt: 1,
      });

      // New work, created on B after the crash, is pushed over the new socket.
      const ids = await Promise.all([1, 2, 3].map((i) => onB.create({ kind: 'echo', payload: i })));
      for (const [i, id] of ids.entries()) {
        expect(await onB.wait(id)).toMatchObject({ status: 'completed', result: i + 1 });
      }
      expect(d.state).toBe('socket');
    } finally {
      gate.resolve(null);
    }
  });
});

describe('graceful node shutdown (drain)', () => {
  it('moves to the next URL at once, without dropping the socket state or a held result', async () => {
    const server = await redis();
    const a = await node({ REDIS_URL: server.url, NODE_ID: 'node-a' });
    const b = await node({ REDIS_URL: server.url, NODE_ID: 'node-b' });
    const client = await clientToken();
    const onA = hub(a, client, 'drained');
    const onB = hub(b, client, 'drained');
    const gate = deferred();
    const states: string[] = [];
    const { d } = await daemon('drained', {
      url: [a.url, b.url],
      capacity: 2,
      handlers: { hold: () => gate.promise, echo: (p) => p },
    });
    d.on('state', (s) => states.push(s));
    try {
      await nextState(d, 'socket');
      const claimed = nextRequest(d, (r) => r.kind === 'hold');
      const held = await onA.create({ kind: 'hold' });
      const request = await claimed;

      // Node A drains: the daemon opens B before letting A go, so A's close does not wait
      // for its grace period, and the daemon never leaves the 'socket' state.
      const startedAt = Date.now();
      await a.close();
      const took = Date.now() - startedAt;
      await expect
        .poll(async () => (await onB.runtime()).connections, { timeout: 5000 })
        .toEqual([expect.objectContaining({ node_id: 'node-b', capacity: 1, in_flight: 0 })]);
      expect(took).toBeLessThan(a.config.shutdownGraceMs);
      expect(states).toEqual(['socket']);

      const waiting = onB.wait(held);
      const settled = nextReported(d, held);
      gate.resolve('after the drain');
      expect(await settled).toEqual({
        id: held,
        epoch: request.epoch,
        status: 'completed',
        accepted: true,
      });
      expect(await waiting).toMatchObject({ status: 'completed', result: 'after the drain' });
      // The carried job is done: the full capacity is offered on B again.
      await expect
        .poll(async () => (await onB.runtime()).connections, { timeout: 5000 })
        .toEqual([expect.objectContaining({ node_id: 'node-b', capacity: 2 })]);
      const id = await onB.create({ kind: 'echo', payload: 'on b' });
      expect(await onB.wait(id)).toMatchObject({ status: 'completed', result: 'on b' });
    } finally {
      gate.resolve(null);
    }
  });
});

describe('heartbeat polling while websockets are refused', () => {
  it('polls and completes work, then returns to the socket when upgrades pass again', async () => {
    const n = await node();
    const proxy = await proxyTo(n, true);
    const h = hub(n, await clientToken(), 'walled');
    const states: string[] = [];
    const { d } = await daemon('walled', {
      url: proxy.url,
      capacity: 2,
      pollIntervalMs: 100,
      backoff: quick,
      handlers: { '*': (payload, ctx) => ({ payload, kind: ctx.kind }) },
    });
    d.on('state', (s) => states.push(s));
    await nextState(d, 'polling');
    expect(proxy.refusedUpgrades).toBeGreaterThanOrEqual(2);

    const polled = await Promise.all(
      [1, 2, 3].map((i) => h.create({ kind: 'polled', payload: i })),
    );
    for (const [i, id] of polled.entries()) {
      expect(await h.wait(id)).toMatchObject({
        status: 'completed',
        result: { payload: i + 1, kind: 'polled' },
      });
    }
    expect(proxy.proxiedUpgrades).toBe(0); // all of it went over plain HTTP
    expect(await metric(n, 'switchboard_claims_total', 'path="heartbeat"')).toBe(3);
    expect(d.state).toBe('polling');

    const upgraded = nextState(d, 'socket');
    proxy.refuseUpgrades = false;
    await upgraded;
    expect(proxy.proxiedUpgrades).toBe(1);

    const pushed = await Promise.all(
      [4, 5, 6].map((i) => h.create({ kind: 'pushed', payload: i })),
    );
    for (const [i, id] of pushed.entries()) {
      expect(await h.wait(id)).toMatchObject({
        status: 'completed',
        result: { payload: i + 4, kind: 'pushed' },
      });
    }
    // They came over the socket (a heartbeat already in flight at the switch may take
    // the first one, so at least the later ones), and the daemon stayed on it.
    const viaSocket = proxy.seen('request', 'server').map((f) => f.request.id);
    expect(viaSocket).toContain(pushed[2]);
    expect(states.slice(states.indexOf('socket'))).toEqual(['socket']);
  });
});

describe('result retry across a Redis outage', () => {
  it('retries a nacked result (retry: true) until Redis is back, then it is accepted', async () => {
    // appendfsync always: with everysec, Redis may postpone the AOF write while an fsync
    // is under way (a loaded disk) and a SIGKILL then loses the request itself, which is
    // Redis' documented trade-off, not what this test is about.
    const server = await redis({ appendonly: true, extraArgs: ['--appendfsync', 'always'] });
    const n = await node({ REDIS_URL: server.url, LEASE_MS: '60000' });
    // The proxy passes everything through; it only lets the test watch the frames.
    const proxy = await proxyTo(n);
    const h = hub(n, await clientToken(), 'outage');
    const gate = deferred();
    const { d } = await daemon('outage', {
      url: proxy.url,
      backoff: quick,
      handlers: { work: () => gate.promise },
    });
    try {
      await nextState(d, 'socket');
      const claimed = nextRequest(d);
      const id = await h.create({ kind: 'work' });
      const request = await claimed;
      expect(request.id).toBe(id);

      await server.kill();
      const settled = nextReported(d, id, 30_000);
      gate.resolve({ survived: true });
      const mine = (f: Frame) => f.id === id;
      await expect
        .poll(() => proxy.seen('nack', 'server').filter(mine), { timeout: 10_000 })
        .toContainEqual({
          type: 'nack',
          id,
          epoch: request.epoch,
          code: 'store_unavailable',
          retry: true,
        });
      // The SDK tries again (with backoff) while Redis is still down.
      await expect
        .poll(() => proxy.seen('result', 'client').filter(mine).length, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(2);
      expect(proxy.seen('ack', 'server').filter(mine)).toEqual([]);
      expect(d.inFlight).toBe(1);

      const restartedAt = Date.now();
      await server.restart();
      await expect
        .poll(async () => (await api(n, 'GET', '/readyz')).status, { timeout: 15_000 })
        .toBe(200);
      const waiting = h.wait(id); // a client long-poll started after the restart
      waiting.catch(() => {}); // asserted below
      const outcome = await settled;
      const seen = JSON.stringify(proxy.frames.filter((f) => f.frame.id === id));
      expect(outcome, `frames: ${seen}`).toEqual({
        id,
        epoch: request.epoch,
        status: 'completed',
        accepted: true,
      });
      console.info(
        `redis outage: result accepted ${Date.now() - restartedAt} ms after the restart, ` +
          `after ${proxy.seen('result', 'client').filter(mine).length} attempts`,
      );
      expect(await waiting).toMatchObject({
        id,
        status: 'completed',
        result: { survived: true },
        epoch: request.epoch,
        attempt: 1,
      });
      expect(proxy.seen('ack', 'server').filter(mine)).toEqual([
        { type: 'ack', id, epoch: request.epoch },
      ]);
    } finally {
      gate.resolve(null);
    }
  });
});

describe('cancel', () => {
  it("reaches the handler's AbortSignal, and nothing is reported for it", async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'cancel');
    const aborted = deferred<unknown>();
    const { d, reported } = await daemon('cancel', {
      url: n.url,
      handlers: {
        wait: (_payload, ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted.resolve(ctx.signal.reason);
              resolve('finished anyway');
            });
          }),
        echo: (p) => p,
      },
    });
    await nextState(d, 'socket');
    const claimed = nextRequest(d);
    const id = await h.create({ kind: 'wait' });
    await claimed;

    const cancel = await api(n, 'POST', `/v1/runtimes/cancel/requests/${id}/cancel`, {
      token: await clientToken(),
    });
    expect(cancel).toMatchObject({ status: 200, body: { id, status: 'cancelled' } });
    const reason = await aborted.promise;
    expect(reason).toBeInstanceOf(Error);
    expect((reason as Error).message).toBe('cancelled');
    // The job is gone once its handler returned; a report would have come before that.
    await expect.poll(() => d.inFlight, { timeout: 5000 }).toBe(0);
    expect(reported.map((r) => r.id)).not.toContain(id);
    expect(await h.get(id)).toMatchObject({
      status: 'cancelled',
      result: null,
      error: expect.objectContaining({ code: expect.any(String) }),
    });

    // The slot is free again (capacity 1): the next request runs.
    const after = await h.create({ kind: 'echo', payload: 'next' });
    expect(await h.wait(after)).toMatchObject({ status: 'completed', result: 'next' });
    expect(reported.map((r) => r.id)).toEqual([after]);
  });
});

describe('results the hub cannot take', () => {
  it('reports an unencodable, too deep or too long outcome as failed instead of crashing', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'odd');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100; i++) deep = [deep];
    const { d } = await daemon('odd', {
      url: n.url,
      handlers: {
        bigint: () => 10n,
        circular: () => circular,
        deep: () => deep,
        long: () => {
          throw new Error('x'.repeat(10_000));
        },
      },
    });
    await nextState(d, 'socket');
    for (const kind of ['bigint', 'circular', 'deep']) {
      const id = await h.create({ kind });
      expect(await h.wait(id), kind).toMatchObject({
        status: 'failed',
        error: { code: 'invalid_result' },
      });
    }
    const long = await h.wait(await h.create({ kind: 'long' }));
    expect(long).toMatchObject({ status: 'failed', error: { code: 'handler_error' } });
    expect(long.error.message).toHaveLength(4096);
    expect(d.state).toBe('socket');
  });
});

describe('a handler that ignores its cancel', () => {
  it('still holds its slot: no new work runs beside it beyond capacity', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'stubborn');
    const release = deferred<void>();
    let running = 0;
    let most = 0;
    const { d } = await daemon('stubborn', {
      url: n.url,
      capacity: 1,
      handlers: {
        '*': async (_p, ctx) => {
          running++;
          most = Math.max(most, running);
          if (ctx.kind === 'stubborn') await release.promise; // ignores ctx.signal
          running--;
          return 'done';
        },
      },
    });
    await nextState(d, 'socket');
    const claimed = nextRequest(d);
    const stubborn = await h.create({ kind: 'stubborn' });
    await claimed;
    await api(n, 'POST', `/v1/runtimes/stubborn/requests/${stubborn}/cancel`, {
      token: await clientToken(),
    });
    const next = await h.create({ kind: 'quick' });
    // The hub freed the slot, but the daemon says it has none until the handler returns.
    await expect
      .poll(
        async () =>
          (await api(n, 'GET', '/v1/runtimes/stubborn', { token: await clientToken() })).body
            .connections[0]?.capacity,
        { timeout: 5000 },
      )
      .toBe(0);
    expect((await h.get(next)).status).toBe('pending');
    release.resolve();
    expect(await h.wait(next)).toMatchObject({ status: 'completed', result: 'done' });
    expect(most).toBe(1);
  });
});

describe('capacity', () => {
  it('never runs more than `capacity` handlers at once', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'capacity');
    let running = 0;
    let most = 0;
    const { d, reported } = await daemon('capacity', {
      url: n.url,
      capacity: 3,
      handlers: {
        job: async (payload) => {
          running++;
          most = Math.max(most, running);
          await work(5 + Math.floor(Math.random() * 10));
          running--;
          return payload;
        },
      },
    });
    await nextState(d, 'socket');
    const startedAt = Date.now();
    const batch = await api(n, 'POST', '/v1/runtimes/capacity/requests/batch', {
      token: await clientToken(),
      body: { requests: Array.from({ length: 60 }, (_, i) => ({ kind: 'job', payload: i })) },
    });
    expect(batch.status).toBe(201);
    const ids = (batch.body.requests as { id: string }[]).map((r) => r.id);
    expect(ids).toHaveLength(60);
    await expect.poll(() => reported.length, { timeout: 20_000 }).toBe(60);
    console.info(`capacity: 60 requests at capacity 3 in ${Date.now() - startedAt} ms`);

    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1); // it did run them side by side
    expect(reported.every((r) => r.accepted && r.status === 'completed')).toBe(true);
    const records = await Promise.all(ids.map((id) => h.get(id)));
    expect(records.map((r) => [r.status, r.result])).toEqual(ids.map((_, i) => ['completed', i]));
  });
});

describe('close()', () => {
  it('takes no new work, waits for running handlers and their reports, then closes', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'drain');
    const gate = deferred();
    const { d, reported, requests } = await daemon('drain', {
      url: n.url,
      capacity: 3,
      closeTimeoutMs: 15_000,
      handlers: { hold: async (payload) => ({ payload, gate: await gate.promise }) },
    });
    try {
      await nextState(d, 'socket');
      const both = Promise.all([
        nextRequest(d, (r) => r.payload === 1),
        nextRequest(d, (r) => r.payload === 2),
      ]);
      const held = [
        await h.create({ kind: 'hold', payload: 1 }),
        await h.create({ kind: 'hold', payload: 2 }),
      ];
      await both;

      let closed = false;
      const closing = d.close().then(() => {
        closed = true;
      });
      expect(d.state).toBe('closing');
      // One slot was free; while closing it is not offered, so new work stays pending.
      const late = await h.create({ kind: 'hold', payload: 3 });
      await expect
        .poll(async () => (await h.runtime()).connections, { timeout: 5000 })
        .toEqual([expect.objectContaining({ capacity: 0, in_flight: 2 })]);
      expect(await h.get(late)).toMatchObject({ status: 'pending', attempt: 0 });
      expect(requests.map((r) => r.id)).toEqual(held);
      expect(closed).toBe(false);

      gate.resolve('released');
      await closing;
      expect(d.state).toBe('closed');
      // Reported (and acknowledged) before close() resolved.
      expect(reported).toEqual(
        expect.arrayContaining(
          held.map((id) => expect.objectContaining({ id, status: 'completed', accepted: true })),
        ),
      );
      expect(reported).toHaveLength(2);
      for (const [i, id] of held.entries()) {
        expect(await h.get(id)).toMatchObject({
          status: 'completed',
          result: { payload: i + 1, gate: 'released' },
        });
      }
      expect(await h.get(late)).toMatchObject({ status: 'pending' });
      await expect.poll(async () => (await h.runtime()).connections, { timeout: 5000 }).toEqual([]);
    } finally {
      gate.resolve(null);
    }
  });

  it('gives up after closeTimeoutMs and aborts the handler that is still running', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'stuck');
    let signal: AbortSignal | undefined;
    const { d, reported } = await daemon('stuck', {
      url: n.url,
      closeTimeoutMs: 300,
      handlers: {
        forever: (_payload, ctx) => {
          signal = ctx.signal;
          return never;
        },
      },
    });
    await nextState(d, 'socket');
    const claimed = nextRequest(d);
    const id = await h.create({ kind: 'forever' });
    await claimed;

    const startedAt = Date.now();
    await d.close();
    const took = Date.now() - startedAt;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(3000);
    expect(d.state).toBe('closed');
    expect(signal?.aborted).toBe(true);
    expect(reported).toEqual([]);
    // Nothing was reported: the request is still running on its lease.
    expect(await h.get(id)).toMatchObject({ status: 'running', attempt: 1 });
  });
});

describe('close() before the socket is up', () => {
  it('stays closed: the handshake under way does not bring the daemon back', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'early');
    const { d, requests } = await daemon('early', { url: n.url, handlers: { '*': (p) => p } });
    const states: string[] = [];
    d.on('state', (s) => states.push(s));
    expect(d.state).toBe('connecting');
    await d.close(); // e.g. SIGTERM right after start, while the websocket is connecting
    expect(d.state).toBe('closed');

    const id = await h.create({ kind: 'early' });
    // A bounded long-poll: a daemon that came back to life would have taken it meanwhile.
    const waited = await api(n, 'GET', `/v1/runtimes/early/requests/${id}?wait_ms=1500`, {
      token: await clientToken(),
    });
    expect(waited.body).toMatchObject({ id, status: 'pending', attempt: 0 });
    expect(requests).toEqual([]);
    expect(states).toEqual(['closing', 'closed']);
    expect((await h.runtime()).connections).toEqual([]);
  });
});

describe('close() while a heartbeat is in flight', () => {
  it('runs and reports what that heartbeat claimed before close() resolves', async () => {
    const n = await node();
    const proxy = await proxyTo(n, true); // websockets refused: the daemon polls
    const h = hub(n, await clientToken(), 'late-claim');
    const { d, reported, requests } = await daemon('late-claim', {
      url: proxy.url,
      pollIntervalMs: 100,
      backoff: quick,
      handlers: { '*': (payload) => ({ done: payload }) },
    });
    await nextState(d, 'polling');
    // Hold the heartbeat answer that carries a claim, as a slow network would.
    const claimedInFlight = deferred<void>();
    const network = deferred<void>();
    proxy.beforeResponse = (req, body) => {
      if (req.url !== '/v1/daemon/heartbeat' || !body.includes('"requests":[{')) return undefined;
      claimedInFlight.resolve();
      return network.promise;
    };
    const id = await h.create({ kind: 'late', payload: 7 });
    await claimedInFlight.promise;
    expect(await h.get(id)).toMatchObject({ status: 'running', attempt: 1 });

    const closing = d.close();
    network.resolve(); // the claim arrives while close() is under way
    await closing;
    expect(d.state).toBe('closed');
    // The daemon holds the lease: unless it runs and reports the request before it is
    // closed, the request is stranded until its lease expires (30 s) and then times out.
    expect(requests.map((r) => r.id)).toEqual([id]);
    expect(reported).toEqual([
      { id, epoch: requests[0]?.epoch, status: 'completed', accepted: true },
    ]);
    expect(await h.get(id)).toMatchObject({ status: 'completed', result: { done: 7 } });
  });
});

describe('lease renewal', () => {
  it('renews a short lease while a long handler runs, so the request completes', async () => {
    const n = await node();
    const h = hub(n, await clientToken(), 'lease');
    const { d, reported } = await daemon('lease', {
      url: n.url,
      handlers: {
        slow: async (payload) => {
          await work(1000);
          return payload;
        },
      },
    });
    await nextState(d, 'socket');
    const claimed = nextRequest(d);
    const id = await h.create({ kind: 'slow', payload: 'slow but alive', lease_ms: 300 });
    const request = await claimed;
    expect(Date.parse(request.lease_expires_at) - Date.now()).toBeLessThanOrEqual(300);

    expect(await h.wait(id)).toMatchObject({
      status: 'completed',
      result: 'slow but alive',
      attempt: 1,
      epoch: request.epoch,
    });
    await expect
      .poll(() => reported, { timeout: 5000 })
      .toEqual([{ id, epoch: request.epoch, status: 'completed', accepted: true }]);
  });
});
