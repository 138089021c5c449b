/**
 * The daemon SDK's `ctx.output()` without a socket (`POST /v1/daemon/requests/:id/output`
 * batches of the unacknowledged chunks in the window, retried on 503, stopped by 409
 * lease_lost and output_limit), and `switchboard daemon --echo`'s `stream` kind, against
 * the scripted hub (test/client/scripted-hub.ts).
 */
import { describe, expect, it } from 'vitest';
import { type HandlerContext, OutputError } from '../../src/client/daemon.js';
import { echoChunk, echoHandlers } from '../../src/client/echo.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import {
  daemonRequest,
  type HttpCall,
  type HttpReply,
  heartbeatAnswer,
  scriptedHub,
  testDaemon,
  until,
} from './scripted-hub.js';

const { defer } = stopAfterEach();

type Hub = Awaited<ReturnType<typeof scriptedHub>>;

async function outcomes(writes: Promise<void>[]): Promise<string[]> {
  const settled = await Promise.allSettled(writes);
  return settled.map((s) =>
    s.status === 'fulfilled' ? 'ok' : s.reason instanceof OutputError ? s.reason.code : 'other',
  );
}

/** A hub without sockets: heartbeats claim request `a` once; `output` answers its output calls. */
async function pollingHub(output: (call: HttpCall) => HttpReply) {
  const hub = await scriptedHub(defer);
  hub.acceptUpgrades = false;
  let claimed = false;
  hub.onHttp = (call) => {
    if (call.path === '/v1/daemon/heartbeat') {
      const requests = claimed ? [] : [daemonRequest('a', 1, 'write')];
      claimed = true;
      return heartbeatAnswer(call.body, requests);
    }
    if (call.path === '/v1/daemon/requests/a/output') return output(call);
    if (call.path === '/v1/daemon/requests/a/result') return { status: 200, body: {} };
    return { status: 404, body: null };
  };
  return hub;
}

/** The hub's answer to an output batch: stored like the store does, or a seq gap refused. */
function storeBatch(hub: Hub, body: any): HttpReply {
  let acked = 0;
  for (const c of body.chunks) {
    const answer = hub.storeOutput('a', body.epoch, c.seq, c.data);
    if (answer.type === 'nack')
      return { status: 400, body: { error: { code: 'invalid_request' } } };
    acked = answer.seq;
  }
  return { status: 200, body: { epoch: body.epoch, acked_seq: acked } };
}

const paths = (hub: Hub) => hub.calls.map((c) => c.path.split('/').at(-1));
const batches = (hub: Hub) =>
  hub.calls
    .filter((c) => c.path.endsWith('/output'))
    .map((c) => c.body.chunks.map((x: { seq: number }) => x.seq));

const pollingDaemon = (hub: Hub, handlers: Record<string, any>, outputWindow = 64) =>
  testDaemon(defer, hub.url, 'output-http', {
    handlers,
    outputWindow,
    pollIntervalMs: 20,
    socketFailuresBeforePolling: 1,
  });

describe('output over HTTP (polling mode)', () => {
  it('posts the window in batches, retries a 503, and reports the result after', async () => {
    let posts = 0;
    const hub = await pollingHub((call) => {
      posts++;
      if (posts === 1) return { status: 503, body: { error: { code: 'store_unavailable' } } };
      return storeBatch(hub, call.body);
    });
    const write = (_p: unknown, ctx: HandlerContext) =>
      outcomes(['a', 'b', 'c', 'd', 'e'].map((c) => ctx.output(c)));
    const { reported } = await pollingDaemon(hub, { write }, 3);
    await until(() => reported.length === 1, 'the result');
    // The first write went out alone (and met the 503); then the window of 3, then the rest.
    expect(batches(hub)).toEqual([[1], [1, 2, 3], [4, 5]]);
    expect(hub.calls.find((c) => c.path.endsWith('/output'))?.body).toEqual({
      epoch: 1,
      chunks: [{ seq: 1, data: 'a' }],
    });
    expect(hub.outputs.get('1:a')).toEqual(['a', 'b', 'c', 'd', 'e']);
    const last = paths(hub).filter((p) => p === 'output' || p === 'result');
    expect(last.at(-1)).toBe('result');
    expect(last.filter((p) => p === 'result')).toHaveLength(1);
    const result = hub.calls.find((c) => c.path.endsWith('/result'));
    expect(result?.body).toMatchObject({
      epoch: 1,
      status: 'completed',
      result: Array(5).fill('ok'),
    });
  });

  it('409 lease_lost: the writes reject so, the handler is aborted, no result is posted', async () => {
    const hub = await pollingHub(() => ({
      status: 409,
      body: { error: { code: 'lease_lost', message: 'not running at that epoch' } },
    }));
    let codes: string[] = [];
    let aborted = false;
    const write = async (_p: unknown, ctx: HandlerContext) => {
      codes = await outcomes([ctx.output(1), ctx.output(2)]);
      codes.push(...(await outcomes([ctx.output(3)])));
      aborted = ctx.signal.aborted;
      return 'ignored';
    };
    const { d } = await pollingDaemon(hub, { write });
    await until(() => codes.length === 3, 'the handler');
    await until(() => d.inFlight === 0, 'the attempt to leave');
    expect(codes).toEqual(['lease_lost', 'lease_lost', 'lease_lost']);
    expect(aborted).toBe(true);
    expect(paths(hub)).not.toContain('result');
  });

  it('409 output_limit: the chunks before the refused one settle, the rest reject so', async () => {
    // Seq 3 does not fit: the hub stores the batch up to it and names it in the details.
    const hub = await pollingHub((call) => {
      const at = call.body.chunks.findIndex((c: { seq: number }) => c.seq >= 3);
      if (at < 0) return storeBatch(hub, call.body);
      storeBatch(hub, { ...call.body, chunks: call.body.chunks.slice(0, at) });
      return {
        status: 409,
        body: {
          error: {
            code: 'output_limit',
            message: "the request's output is full",
            details: [{ path: ['chunks', at], message: 'refused; acked_seq 2' }],
          },
        },
      };
    });
    const write = async (_p: unknown, ctx: HandlerContext) => {
      const writes = ['a', 'b', 'c', 'd'].map((c) => ctx.output(c));
      return [...(await outcomes(writes)), ...(await outcomes([ctx.output('later')]))];
    };
    const { reported } = await pollingDaemon(hub, { write });
    await until(() => reported.length === 1, 'the result');
    expect(batches(hub)).toEqual([[1], [2, 3, 4]]);
    expect(reported[0]).toMatchObject({ status: 'completed', accepted: true });
    const result = hub.calls.find((c) => c.path.endsWith('/result'));
    expect(result?.body.result).toEqual([
      'ok',
      'ok',
      'output_limit',
      'output_limit',
      'output_limit',
    ]);
    expect(hub.outputs.get('1:a')).toEqual(['a', 'b']);
  });
});

describe("daemon --echo: kind 'stream'", () => {
  const stream = (hub: Hub, id: string, payload: unknown) =>
    hub.send({ type: 'request', request: { ...daemonRequest(id, 1, 'stream'), payload } });

  async function echoDaemon(hub: Hub) {
    const made = await testDaemon(defer, hub.url, 'echo', {
      handlers: echoHandlers,
      outputWindow: 16,
    });
    await until(() => made.d.state === 'socket', 'the socket');
    return made;
  }

  it('streams N chunks of the given size, in order, then answers {chunks: N}', async () => {
    const hub = await scriptedHub(defer);
    const { reported } = await echoDaemon(hub);
    stream(hub, 's1', { chunks: 300, size: 8 });
    await until(() => reported.length === 1, 'the result');
    const want = Array.from({ length: 300 }, (_, i) => echoChunk(i + 1, 8));
    expect(want[0]).toBe('1:......');
    expect(want[299]).toBe('300:....');
    expect(hub.outputs.get('1:s1')).toEqual(want);
    const result = hub.frames.find((f) => f.type === 'result');
    expect(result).toMatchObject({ id: 's1', status: 'completed', result: { chunks: 300 } });
  });

  it('stops at output_limit and says how many chunks were stored', async () => {
    const hub = await scriptedHub(defer);
    hub.onOutput = (f) =>
      f.seq > 100
        ? { type: 'nack', id: f.id, epoch: f.epoch, seq: 101, code: 'output_limit', retry: false }
        : hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    const { reported } = await echoDaemon(hub);
    stream(hub, 's1', { chunks: 1000 });
    await until(() => reported.length === 1, 'the result');
    const result = hub.frames.find((f) => f.type === 'result');
    expect(result?.result).toEqual({ chunks: 100, stopped: 'output_limit' });
    expect(hub.outputs.get('1:s1')).toHaveLength(100);
  });

  it('answers any other kind with its payload, and refuses a bad stream payload', async () => {
    const hub = await scriptedHub(defer);
    const { reported } = await echoDaemon(hub);
    hub.send({ type: 'request', request: { ...daemonRequest('e1', 1, 'hello'), payload: [1] } });
    stream(hub, 's1', { chunks: -1 });
    await until(() => reported.length === 2, 'two results');
    expect(hub.frames.find((f) => f.type === 'result' && f.id === 'e1')?.result).toEqual([1]);
    expect(hub.frames.find((f) => f.type === 'result' && f.id === 's1')).toMatchObject({
      status: 'failed',
      error: { code: 'handler_error', message: expect.stringContaining('chunks must be') },
    });
  });
});
