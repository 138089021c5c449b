/**
 * The browser client (src/client/browser.ts) run in Node against a real node: results
 * through the shared websocket, through long-polls when no socket can be had, watching a
 * runtime (snapshot, then changes, again after a reconnect), and its errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import {
  type Client,
  type ClientEvent,
  createClient,
  SwitchboardError,
} from '../../src/client/browser.js';
import type { SwitchboardNode } from '../../src/node.js';
import { StoreError } from '../../stores/errors.js';
import {
  clientToken,
  daemonToken,
  type FrameSocket,
  readyDaemon,
  startTestNode,
} from '../helpers/node.js';
import { FailingWebSocket, TrackedWebSocket } from './browser-sockets.js';

/** Collects a subscriber's events and lets the test wait for the one it wants. */
function recorder() {
  const events: ClientEvent[] = [];
  let wake = () => {};
  return {
    events,
    onEvent: (e: ClientEvent) => {
      events.push(e);
      wake();
    },
    async next<T extends ClientEvent>(pred: (e: ClientEvent) => e is T, from = 0): Promise<T> {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = events.slice(from).find(pred);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such event; got ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

const isRequest =
  (id: string, status?: string) =>
  (e: ClientEvent): e is Extract<ClientEvent, { type: 'request' }> =>
    e.type === 'request' && e.request.id === id && (!status || e.request.status === status);
const isSnapshot = (e: ClientEvent): e is Extract<ClientEvent, { type: 'snapshot' }> =>
  e.type === 'snapshot';

/** Answers every request pushed to `daemon` with its own payload. */
function echo(daemon: FrameSocket): void {
  daemon.ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    if (f.type !== 'request') return;
    daemon.send({
      type: 'result',
      id: f.request.id,
      epoch: f.request.epoch,
      status: 'completed',
      result: { echo: f.request.payload },
    });
  });
}

describe('browser client', () => {
  let node: SwitchboardNode;
  let token: string;
  const clients: Client[] = [];
  const daemons: FrameSocket[] = [];
  const open = (opts: Partial<Parameters<typeof createClient>[0]> = {}) => {
    const client = createClient({ url: node.url, token, WebSocket: TrackedWebSocket, ...opts });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    node = await startTestNode();
    token = await clientToken('acme');
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const c of clients.splice(0)) c.close();
    await Promise.all(daemons.splice(0).map((d) => d.close()));
  });
  afterAll(async () => {
    await node?.kill();
  });

  it('subscribes again after the node could not serve a subscribe (store_unavailable)', async () => {
    const list = node.store.list.bind(node.store);
    let failures = 1;
    vi.spyOn(node.store, 'list').mockImplementation(async (rt, opts) => {
      if (failures-- > 0) throw new StoreError('store_unavailable', 'injected');
      return list(rt, opts);
    });
    const client = open();
    const rec = recorder();
    const stop = client.subscribe('flaky', rec.onEvent);
    await rec.next(
      (e): e is Extract<ClientEvent, { type: 'error' }> =>
        e.type === 'error' && e.code === 'store_unavailable',
    );
    await rec.next(isSnapshot);
    stop();
  });

  it('sends and gets the result through the websocket, without long-polling', async () => {
    const daemon = await readyDaemon(node, await daemonToken('laptop'), 2);
    daemons.push(daemon);
    echo(daemon);
    const fetches = vi.spyOn(globalThis, 'fetch');
    const client = open();

    const sent = await client.send('laptop', 'skills.list', { q: 1 }, { priority: 3 });
    expect(sent).toMatchObject({ runtime_id: 'laptop', kind: 'skills.list', priority: 3 });
    const done = await client.result('laptop', sent.id, { timeoutMs: 10_000 });
    expect(done).toMatchObject({ id: sent.id, status: 'completed', result: { echo: { q: 1 } } });
    expect(client.mode).toBe('open');
    const urls = fetches.mock.calls.map(([u]) => String(u));
    expect(urls.some((u) => u.includes('wait_ms'))).toBe(false);

    // An already finished request resolves from the subscription's snapshot.
    await expect(client.result('laptop', sent.id)).resolves.toMatchObject({ status: 'completed' });
    // Both waits shared one socket.
    expect(TrackedWebSocket.all.filter((ws) => ws.readyState === WebSocket.OPEN)).toHaveLength(1);
  });

  it('long-polls when the websocket cannot be opened', async () => {
    const daemon = await readyDaemon(node, await daemonToken('poll-rt'), 1);
    daemons.push(daemon);
    const fetches = vi.spyOn(globalThis, 'fetch');
    FailingWebSocket.attempts = 0;
    const client = open({ WebSocket: FailingWebSocket, backoff: { initialMs: 20, maxMs: 50 } });

    const sent = await client.send('poll-rt', 'work', 'x');
    const waiting = client.result('poll-rt', sent.id, { timeoutMs: 20_000 });
    await vi.waitFor(() =>
      expect(fetches.mock.calls.some(([u]) => String(u).includes('wait_ms='))).toBe(true),
    );
    const pushed = await daemon.next('request');
    daemon.send({
      type: 'result',
      id: sent.id,
      epoch: pushed.request.epoch,
      status: 'failed',
      error: { code: 'boom', message: 'it broke' },
    });
    await expect(waiting).resolves.toMatchObject({
      id: sent.id,
      status: 'failed',
      error: { code: 'boom', message: 'it broke' },
    });
    expect(FailingWebSocket.attempts).toBeGreaterThanOrEqual(1);
  });

  it('long-polls with no WebSocket at all', async () => {
    const daemon = await readyDaemon(node, await daemonToken('plain'), 1);
    daemons.push(daemon);
    echo(daemon);
    const client = createClient({ url: node.url, token }); // Node 20: no global WebSocket
    clients.push(client);
    const sent = await client.send('plain', 'echo', [1, 2]);
    await expect(client.result('plain', sent.id)).resolves.toMatchObject({
      status: 'completed',
      result: { echo: [1, 2] },
    });
    expect(client.mode).toBe('unavailable');
  });

  it('subscribes: a snapshot, then every change, only of the requests asked for', async () => {
    const client = open();
    const before = await client.send('watched', 'a', 1);
    const all = recorder();
    client.subscribe('watched', all.onEvent);
    const snapshot = await all.next(isSnapshot);
    expect(snapshot.requests.map((r) => r.id)).toEqual([before.id]);
    expect(snapshot.runtime_info).toMatchObject({ id: 'watched', online: false });

    const daemon = await readyDaemon(node, await daemonToken('watched'), 1);
    daemons.push(daemon);
    await all.next(
      (e): e is Extract<ClientEvent, { type: 'runtime' }> =>
        e.type === 'runtime' && e.runtime_info.online,
    );
    const pushed = await daemon.next('request');
    await all.next(isRequest(before.id, 'running'));

    const other = await client.send('watched', 'b', 2);
    const only = recorder();
    client.subscribe('watched', only.onEvent, { requests: [other.id] });
    const narrow = await only.next(isSnapshot);
    expect(narrow.requests.map((r) => r.id)).toEqual([other.id]);

    daemon.send({
      type: 'result',
      id: before.id,
      epoch: pushed.request.epoch,
      status: 'completed',
      result: 'ok',
    });
    const finished = await all.next(isRequest(before.id, 'completed'));
    expect(finished.request.result).toBe('ok');
    const second = await daemon.next('request');
    daemon.send({
      type: 'result',
      id: other.id,
      epoch: second.request.epoch,
      status: 'completed',
      result: 'ok2',
    });
    await only.next(isRequest(other.id, 'completed'));
    await all.next(isRequest(other.id, 'completed'));
    expect(only.events.some((e) => e.type === 'request' && e.request.id === before.id)).toBe(false);
  });

  it('reconnects after the socket drops and subscribes again', async () => {
    TrackedWebSocket.all = [];
    const client = open({ backoff: { initialMs: 20, maxMs: 100 } });
    const events = recorder();
    const stop = client.subscribe('again', events.onEvent);
    await events.next(isSnapshot);
    const first = TrackedWebSocket.all[0];
    first?.terminate();
    await events.next(
      (e): e is Extract<ClientEvent, { type: 'connection' }> =>
        e.type === 'connection' && e.mode === 'backoff',
    );
    const mark = events.events.length;
    await events.next(isSnapshot, mark); // the subscription was sent again
    expect(TrackedWebSocket.all.length).toBeGreaterThanOrEqual(2);

    // ...and it is live: a change after the reconnect arrives.
    const sent = await client.send('again', 'k');
    await events.next(isRequest(sent.id, 'pending'), mark);
    stop();
  });

  it('falls back to long-polling when the socket drops while waiting', async () => {
    TrackedWebSocket.all = [];
    const daemon = await readyDaemon(node, await daemonToken('drop'), 1);
    daemons.push(daemon);
    const fetches = vi.spyOn(globalThis, 'fetch');
    // Every reconnect is refused: after the first socket, only long-polls are left.
    let allowed = 1;
    class OnceWebSocket extends TrackedWebSocket {
      constructor(url: string) {
        super(allowed-- > 0 ? url : url.replace(/access_token=[^&]*/, 'access_token=bad'));
      }
    }
    const client = open({ WebSocket: OnceWebSocket, backoff: { initialMs: 20, maxMs: 50 } });
    const sent = await client.send('drop', 'k', null);
    const waiting = client.result('drop', sent.id, { timeoutMs: 20_000 });
    await vi.waitFor(() => expect(client.mode).toBe('open'));
    TrackedWebSocket.all[0]?.terminate();
    await vi.waitFor(() =>
      expect(fetches.mock.calls.some(([u]) => String(u).includes('wait_ms='))).toBe(true),
    );
    const pushed = await daemon.next('request');
    daemon.send({
      type: 'result',
      id: sent.id,
      epoch: pushed.request.epoch,
      status: 'completed',
      result: 7,
    });
    await expect(waiting).resolves.toMatchObject({ status: 'completed', result: 7 });
  });

  it('reports hub errors as SwitchboardError with status, code and message', async () => {
    const client = open();
    const fail = (p: Promise<unknown>) =>
      p.then(
        () => {
          throw new Error('expected a failure');
        },
        (err: unknown) => {
          expect(err).toBeInstanceOf(SwitchboardError);
          const e = err as SwitchboardError;
          return { status: e.status, code: e.code, message: e.message };
        },
      );

    expect(await fail(client.send('laptop', 'bad kind!'))).toMatchObject({
      status: 400,
      code: 'invalid_request',
    });
    const stranger = createClient({ url: node.url, token: 'not-a-token' });
    expect(await fail(stranger.send('laptop', 'k'))).toMatchObject({
      status: 401,
      code: 'unauthorized',
    });
    const daemonAsClient = createClient({ url: node.url, token: await daemonToken('laptop') });
    expect(await fail(daemonAsClient.runtimes())).toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    // Unknown ids: through the socket's snapshot, and through the long-poll.
    expect(await fail(client.result('laptop', '01NOSUCHREQUEST'))).toMatchObject({
      status: 404,
      code: 'not_found',
    });
    const polling = open({ WebSocket: undefined });
    expect(await fail(polling.result('laptop', '01NOSUCHREQUEST'))).toMatchObject({
      status: 404,
      code: 'not_found',
    });

    const sent = await client.send('nobody-home', 'k', null, { idempotencyKey: 'key-1' });
    expect(await client.send('nobody-home', 'k', null, { idempotencyKey: 'key-1' })).toMatchObject({
      id: sent.id,
    });
    expect(
      await fail(client.send('nobody-home', 'k', 'other', { idempotencyKey: 'key-1' })),
    ).toMatchObject({ status: 409, code: 'idempotency_conflict' });
    expect(await fail(client.result('nobody-home', sent.id, { timeoutMs: 200 }))).toMatchObject({
      status: 0,
      code: 'timeout',
    });
    expect(await client.cancel('nobody-home', sent.id)).toMatchObject({ status: 'cancelled' });
    expect(await fail(client.cancel('nobody-home', sent.id))).toMatchObject({
      status: 409,
      code: 'already_terminal',
    });

    const pending = await client.send('nobody-home', 'k');
    const waiting = fail(client.result('nobody-home', pending.id));
    client.close();
    expect(await waiting).toMatchObject({ status: 0, code: 'closed' });
    const unreachable = createClient({ url: 'http://127.0.0.1:1', token });
    expect(await fail(unreachable.runtimes())).toMatchObject({ status: 0, code: 'network_error' });
  });
});

describe('browser client against a quota', () => {
  let node: SwitchboardNode;
  afterAll(async () => {
    await node?.kill();
  });

  it('waits out a 429 limit_exceeded for its Retry-After and tries again; gives it up past its retries', async () => {
    // One create per second in the workspace, burst 1.
    node = await startTestNode({ CREATE_RATE_PER_WORKSPACE: '1/1' });
    const token = await clientToken('acme');
    const patient = createClient({ url: node.url, token });
    const impatient = createClient({ url: node.url, token, rateLimit: { retries: 0 } });
    const posts = vi.spyOn(globalThis, 'fetch');
    try {
      await patient.send('laptop', 'job'); // the token there was
      const refused = await impatient.send('laptop', 'job').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(SwitchboardError);
      expect(refused).toMatchObject({ status: 429, code: 'limit_exceeded', retryAfterMs: 1000 });
      const before = posts.mock.calls.length;
      const created = await patient.send('laptop', 'job');
      expect(created.status).toBe('pending');
      // Refused once (no token yet), then accepted after waiting.
      expect(posts.mock.calls.length - before).toBe(2);
    } finally {
      posts.mockRestore();
      patient.close();
      impatient.close();
    }
  });
});
