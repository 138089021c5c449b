/**
 * The browser client's `output()` / `onOutput()` (src/client/browser-output.ts) run in
 * Node against a real node, with a raw daemon socket writing the output: chunks in order
 * over the socket, across a socket cut mid-stream (resubscribed with `after`), over HTTP
 * pages when no socket can be had, after the request ended, a second reader of the same
 * request on the same socket, and the errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Client,
  createClient,
  type OutputChunk,
  SwitchboardError,
} from '../../src/client/browser.js';
import type { SwitchboardNode } from '../../src/node.js';
import {
  clientToken,
  daemonToken,
  type FrameSocket,
  readyDaemon,
  startTestNode,
} from '../helpers/node.js';
import { emitOutput } from '../helpers/output.js';
import { FailingWebSocket, TrackedWebSocket } from './browser-sockets.js';

/** Chunk `n` of these tests. */
const data = (n: number) => ({ n, text: `line ${n}` });
const emit = (daemon: FrameSocket, id: string, epoch: number, from: number, to: number) =>
  emitOutput(daemon, id, epoch, from, to, data);

function finish(daemon: FrameSocket, id: string, epoch: number) {
  daemon.send({ type: 'result', id, epoch, status: 'completed', result: 'done' });
}

/** Reads an iterator to its end in the background; `got` fills as chunks come. */
function drain(it: AsyncIterable<OutputChunk>) {
  const got: OutputChunk[] = [];
  const done = (async () => {
    for await (const c of it) got.push(c);
    return got;
  })();
  return { got, done };
}

const offsets = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

describe('browser client output', () => {
  let node: SwitchboardNode;
  let token: string;
  const clients: Client[] = [];
  const daemons: FrameSocket[] = [];
  const open = (opts: Partial<Parameters<typeof createClient>[0]> = {}) => {
    const client = createClient({
      url: node.url,
      token,
      WebSocket: TrackedWebSocket,
      backoff: { initialMs: 20, maxMs: 100 },
      ...opts,
    });
    clients.push(client);
    return client;
  };
  /** A daemon of `runtime` with one request of it claimed. */
  const claimed = async (client: Client, runtime: string) => {
    const daemon = await readyDaemon(node, await daemonToken(runtime), 1);
    daemons.push(daemon);
    const sent = await client.send(runtime, 'stream', null);
    const pushed = await daemon.next('request');
    return { daemon, id: sent.id, epoch: pushed.request.epoch as number };
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

  it('streams over the socket, resumes after a cut mid-stream, and ends at the terminal state', async () => {
    TrackedWebSocket.all = [];
    TrackedWebSocket.sent = [];
    const client = open();
    const { daemon, id, epoch } = await claimed(client, 'stream-rt');
    const reader = drain(client.output('stream-rt', id));

    await emit(daemon, id, epoch, 1, 40);
    await vi.waitFor(() => expect(reader.got.length).toBe(40));
    expect(client.mode).toBe('open');

    // Cut the socket; the daemon goes on while the client reconnects.
    TrackedWebSocket.all[0]?.terminate();
    await emit(daemon, id, epoch, 41, 90);
    await vi.waitFor(() => expect(TrackedWebSocket.all.length).toBe(2));
    await vi.waitFor(() => expect(reader.got.length).toBe(90));
    await emit(daemon, id, epoch, 91, 120);
    finish(daemon, id, epoch);

    const got = await reader.done;
    expect(got.map((c) => c.offset)).toEqual(offsets(120));
    expect(got.map((c) => (c.data as { n: number }).n)).toEqual(offsets(120));
    expect(new Set(got.map((c) => c.epoch))).toEqual(new Set([epoch]));
    // The new socket asked for the output past what the reader had, not from the start.
    const resumed = TrackedWebSocket.sent.filter(
      (f): f is { output: true; after: Record<string, number> } =>
        (f as { output?: boolean }).output === true,
    );
    expect(resumed).toHaveLength(2);
    expect(resumed[0]?.after[id]).toBeUndefined();
    expect(resumed[1]?.after[id]).toBeGreaterThanOrEqual(40);
  });

  it('reads HTTP pages when no socket can be had (callback form)', async () => {
    const fetches = vi.spyOn(globalThis, 'fetch');
    const setup = open();
    const { daemon, id, epoch } = await claimed(setup, 'poll-out');
    await emit(daemon, id, epoch, 1, 1500); // more than one page

    const client = open({ WebSocket: FailingWebSocket });
    const got: OutputChunk[] = [];
    const ended = new Promise<SwitchboardError | undefined>((resolve) => {
      client.onOutput('poll-out', id, (c) => got.push(c), { onEnd: resolve });
    });
    await vi.waitFor(() => expect(got.length).toBe(1500));
    await emit(daemon, id, epoch, 1501, 1510);
    await vi.waitFor(() => expect(got.length).toBe(1510));
    finish(daemon, id, epoch);

    await expect(ended).resolves.toBeUndefined();
    expect(got.map((c) => c.offset)).toEqual(offsets(1510));
    const pages = fetches.mock.calls.map(([u]) => String(u)).filter((u) => u.includes('/output?'));
    expect(pages.some((u) => u.includes('after=0&'))).toBe(true);
    expect(pages.some((u) => u.includes('after=1000&'))).toBe(true);
    expect(pages.some((u) => u.includes('after=1500&'))).toBe(true);
  });

  it('reads over HTTP while the socket is down, then goes on over the socket', async () => {
    TrackedWebSocket.all = [];
    let refuse = false;
    class GatedWebSocket extends TrackedWebSocket {
      constructor(url: string) {
        super(refuse ? url.replace(/access_token=[^&]*/, 'access_token=bad') : url);
      }
    }
    const client = open({ WebSocket: GatedWebSocket });
    const { daemon, id, epoch } = await claimed(client, 'gated');
    const reader = drain(client.output('gated', id));
    await emit(daemon, id, epoch, 1, 10);
    await vi.waitFor(() => expect(reader.got.length).toBe(10));

    refuse = true;
    TrackedWebSocket.all[0]?.terminate();
    await emit(daemon, id, epoch, 11, 30);
    await vi.waitFor(() => expect(reader.got.length).toBe(30)); // by HTTP: no socket now
    expect(client.mode).not.toBe('open');

    refuse = false;
    await vi.waitFor(() => expect(client.mode).toBe('open'));
    await emit(daemon, id, epoch, 31, 45);
    finish(daemon, id, epoch);
    const got = await reader.done;
    expect(got.map((c) => c.offset)).toEqual(offsets(45));
  });

  it('gives the whole output of a finished request, or the part past `after`', async () => {
    const client = open();
    const { daemon, id, epoch } = await claimed(client, 'after-rt');
    await emit(daemon, id, epoch, 1, 25);
    finish(daemon, id, epoch);
    await client.result('after-rt', id);

    const all = await drain(client.output('after-rt', id)).done;
    expect(all.map((c) => c.offset)).toEqual(offsets(25));
    const rest = await drain(client.output('after-rt', id, { after: 20 })).done;
    expect(rest.map((c) => c.offset)).toEqual(offsets(5, 21));
  });

  it('a second reader of a request this socket already streams gets all of it', async () => {
    const client = open();
    const { daemon, id, epoch } = await claimed(client, 'twice');
    const first = drain(client.output('twice', id));
    await emit(daemon, id, epoch, 1, 30);
    await vi.waitFor(() => expect(first.got.length).toBe(30));

    // The hub follows each request once per socket: it sends this one nothing before 31.
    const second = drain(client.output('twice', id));
    const late = drain(client.output('twice', id, { after: 10 }));
    await emit(daemon, id, epoch, 31, 40);
    await vi.waitFor(() => expect(second.got.length).toBe(40));
    // One stops early; the others go on.
    const early = client.output('twice', id);
    await early.next();
    await early.return?.();
    await emit(daemon, id, epoch, 41, 50);
    finish(daemon, id, epoch);

    expect((await first.done).map((c) => c.offset)).toEqual(offsets(50));
    expect((await second.done).map((c) => c.offset)).toEqual(offsets(50));
    expect((await late.done).map((c) => c.offset)).toEqual(offsets(40, 11));
  });

  it('fails with not_found for an unknown request, and with closed when the client closes', async () => {
    const client = open();
    const failure = (it: AsyncIterable<OutputChunk>) =>
      drain(it).done.then(
        () => {
          throw new Error('expected a failure');
        },
        (err: unknown) => {
          expect(err).toBeInstanceOf(SwitchboardError);
          return (err as SwitchboardError).code;
        },
      );
    await expect(failure(client.output('laptop', '01NOSUCHREQUEST'))).resolves.toBe('not_found');
    const polling = open({ WebSocket: undefined });
    await expect(failure(polling.output('laptop', '01NOSUCHREQUEST'))).resolves.toBe('not_found');

    const { id } = await claimed(client, 'closing');
    const waiting = failure(client.output('closing', id));
    await vi.waitFor(() => expect(client.mode).toBe('open'));
    client.close();
    await expect(waiting).resolves.toBe('closed');
  });
});
