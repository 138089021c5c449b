/**
 * The daemon SDK's `ctx.output()` over the websocket, against the scripted hub
 * (test/client/scripted-hub.ts, which stores chunks like the store: a repeated seq once,
 * a gap refused): the window of unacknowledged chunks, the result waiting for its
 * output, resend with the same seq after a reconnect and on another node, and the
 * stream stopping at `lease_lost` and `output_limit` (`OutputError`), retrying after a
 * `store_unavailable` nack.
 *
 * What did not happen is shown with a marker: a second request's chunk, sent by the
 * daemon after the moment in question on the same socket, has arrived at the hub, so
 * everything the daemon sent before it has too.
 */
import { describe, expect, it } from 'vitest';
import { type connectDaemon, type HandlerContext, OutputError } from '../../src/client/daemon.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { type Frame, scriptedHub, testDaemon, until } from './scripted-hub.js';

const { defer } = stopAfterEach();

type Hub = Awaited<ReturnType<typeof scriptedHub>>;
type Opts = Partial<Parameters<typeof connectDaemon>[0]>;

async function daemon(hub: Hub, opts: Opts) {
  const handlers = { mark: (_p: unknown, ctx: HandlerContext) => ctx.output('mark') };
  const made = await testDaemon(defer, hub.url, 'output', {
    capacity: 2,
    ...opts,
    handlers: { ...handlers, ...opts.handlers },
  });
  await until(() => made.d.state === 'socket', 'the socket');
  return made;
}

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

const outputs = (hub: Hub, id: string) =>
  hub.frames.filter((f) => f.type === 'output' && f.id === id);
const seqs = (hub: Hub, id: string) => outputs(hub, id).map((f) => f.seq as number);
const results = (hub: Hub, id: string) =>
  hub.frames.filter((f) => f.type === 'result' && f.id === id);

/** Everything the daemon sent before now has reached the hub (see the header). */
async function marker(hub: Hub, id: string) {
  hub.request(id, 1, 'mark');
  await hub.next((f) => f.type === 'output' && f.id === id, `the marker ${id}`);
}

/** How each write settled: 'ok' or the OutputError's code. */
async function outcomes(writes: Promise<void>[]): Promise<string[]> {
  const settled = await Promise.allSettled(writes);
  return settled.map((s) =>
    s.status === 'fulfilled' ? 'ok' : s.reason instanceof OutputError ? s.reason.code : 'other',
  );
}

describe('the window of unacknowledged chunks', () => {
  it('sends at most outputWindow chunks past the last ack; each settles on its ack', async () => {
    const hub = await scriptedHub(defer);
    const held: Frame[] = [];
    hub.onOutput = (f) => {
      if (f.id !== 'a') return hub.storeOutput(f.id, f.epoch, f.seq, f.data);
      held.push(f);
      return null;
    };
    let storedAtResult = -1;
    hub.onResult = (f) => {
      if (f.id === 'a') storedAtResult = hub.outputs.get('1:a')?.length ?? 0;
      return { type: 'ack', id: f.id, epoch: f.epoch };
    };
    const settled: number[] = [];
    const wrote = gate();
    const fill = async (_p: unknown, ctx: HandlerContext) => {
      const writes: Promise<unknown>[] = [];
      for (let i = 1; i <= 10; i++) writes.push(ctx.output(i).then(() => settled.push(i)));
      wrote.open();
      await Promise.all(writes);
      return 'filled';
    };
    const { reported } = await daemon(hub, { outputWindow: 4, handlers: { fill } });
    hub.request('a', 1, 'fill');
    await wrote.promise;
    await marker(hub, 'm1');
    expect(seqs(hub, 'a')).toEqual([1, 2, 3, 4]);
    expect(settled).toEqual([]);

    // Acks are cumulative: seq 2 settles 1 and 2 and lets 5 and 6 out, not more.
    for (const f of held.slice(0, 2)) hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    hub.send({ type: 'output_ack', id: 'a', epoch: 1, seq: 2 });
    await until(() => seqs(hub, 'a').length >= 6, 'chunks 5 and 6');
    await marker(hub, 'm2');
    expect(seqs(hub, 'a')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(settled).toEqual([1, 2]);
    expect(results(hub, 'a')).toEqual([]);

    // The hub catches up: the rest flows, in order, and only then the result.
    hub.onOutput = (f) => hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    for (const f of held.slice(2)) hub.send(hub.storeOutput(f.id, f.epoch, f.seq, f.data));
    await until(() => reported.some((r) => r.id === 'a'), 'the result of a');
    expect(hub.outputs.get('1:a')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seqs(hub, 'a')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(settled).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(storedAtResult).toBe(10);
    expect(reported.find((r) => r.id === 'a')).toMatchObject({
      status: 'completed',
      accepted: true,
    });
  });

  it('holds the result until the output written before the handler returned is stored', async () => {
    const hub = await scriptedHub(defer);
    const held: Frame[] = [];
    hub.onOutput = (f) => {
      if (f.id !== 'a') return hub.storeOutput(f.id, f.epoch, f.seq, f.data);
      held.push(f);
      return null;
    };
    let kept: HandlerContext | undefined;
    const writes: Promise<void>[] = [];
    // Writes without awaiting them and returns at once.
    const quick = (_p: unknown, ctx: HandlerContext) => {
      kept = ctx;
      for (const word of ['one', 'two', 'three']) writes.push(ctx.output(word));
      return 'quick';
    };
    const { reported } = await daemon(hub, { handlers: { quick } });
    hub.request('a', 1, 'quick');
    await until(() => held.length === 3, 'three chunks');
    await marker(hub, 'm1');
    expect(results(hub, 'a')).toEqual([]);
    // A write after the handler returned is refused: it would follow the result.
    await expect((kept as HandlerContext).output('late')).rejects.toMatchObject({
      name: 'OutputError',
      code: 'closed',
    });

    for (const f of held) hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    hub.send({ type: 'output_ack', id: 'a', epoch: 1, seq: 3 });
    await until(() => reported.some((r) => r.id === 'a'), 'the result of a');
    expect(await outcomes(writes)).toEqual(['ok', 'ok', 'ok']);
    expect(hub.outputs.get('1:a')).toEqual(['one', 'two', 'three']);
    const order = hub.frames.filter((f) => f.id === 'a').map((f) => f.type);
    expect(order).toEqual(['output', 'output', 'output', 'result']);
  });

  it('refuses a value it cannot send, without using up a seq', async () => {
    const hub = await scriptedHub(defer);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    let deep: unknown = 0;
    for (let i = 0; i < 70; i++) deep = [deep];
    let codes: string[] = [];
    const bad = async (_p: unknown, ctx: HandlerContext) => {
      codes = await outcomes([
        ctx.output(undefined),
        ctx.output(circular),
        ctx.output(1n),
        ctx.output(deep),
        ctx.output('x'.repeat(1_048_576)),
        ctx.output({ fine: [1, 2, 3] }),
      ]);
      return 'done';
    };
    const { reported } = await daemon(hub, { handlers: { bad } });
    hub.request('a', 1, 'bad');
    await until(() => reported.some((r) => r.id === 'a'), 'the result');
    expect(codes).toEqual([...Array(5).fill('invalid_output'), 'ok']);
    expect(seqs(hub, 'a')).toEqual([1]);
    expect(hub.outputs.get('1:a')).toEqual([{ fine: [1, 2, 3] }]);
  });
});

describe('resending across sockets', () => {
  /** Writes `n` chunks ('c1', 'c2', ...) and waits for them all. */
  const writer = (n: number) => async (_p: unknown, ctx: HandlerContext) => {
    const writes = Array.from({ length: n }, (_, i) => ctx.output(`c${i + 1}`));
    return outcomes(writes);
  };
  const chunks = (n: number) => Array.from({ length: n }, (_, i) => `c${i + 1}`);

  it('resends what was not acknowledged, with the same seq, on the new socket', async () => {
    const hub = await scriptedHub(defer);
    // The hub stores everything but acks only up to seq 2 before the socket breaks.
    hub.onOutput = (f) => {
      const answer = hub.storeOutput(f.id, f.epoch, f.seq, f.data);
      return f.seq <= 2 ? answer : null;
    };
    const { d, reported } = await daemon(hub, { handlers: { write: writer(5) } });
    hub.request('a', 1, 'write');
    await until(() => outputs(hub, 'a').length === 5, 'five chunks');
    const before = hub.frames.length;
    hub.onOutput = (f) => hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    hub.cut();
    await until(() => reported.some((r) => r.id === 'a'), 'the result');
    const resent = hub.frames.slice(before).filter((f) => f.type === 'output');
    expect(resent.map((f) => [f.seq, f.data])).toEqual([
      [3, 'c3'],
      [4, 'c4'],
      [5, 'c5'],
    ]);
    expect(hub.outputs.get('1:a')).toEqual(chunks(5));
    expect(reported.find((r) => r.id === 'a')).toMatchObject({ accepted: true });
    expect(results(hub, 'a')[0]?.result).toEqual(Array(5).fill('ok'));
    expect(d.state).toBe('socket');
  });

  it('finishes the stream on another node, which shares the store', async () => {
    const first = await scriptedHub(defer);
    const second = await scriptedHub(defer);
    second.outputs = first.outputs; // one store behind both nodes
    first.onOutput = (f) => (f.seq <= 3 ? first.storeOutput(f.id, f.epoch, f.seq, f.data) : null);
    const gateA = gate();
    let wrote = 0;
    const write = async (_p: unknown, ctx: HandlerContext) => {
      const writes = chunks(4).map((c) => ctx.output(c).then(() => void wrote++));
      await gateA.promise;
      writes.push(...['c5', 'c6'].map((c) => ctx.output(c).then(() => void wrote++)));
      return outcomes(writes);
    };
    const made = await testDaemon(defer, [first.url, second.url], 'output', {
      handlers: { write },
    });
    await until(() => made.d.state === 'socket', 'the socket');
    first.request('a', 1, 'write');
    await until(() => wrote === 3, 'three chunks stored on the first node');
    // The first node goes away for good; the daemon moves to the second.
    first.acceptUpgrades = false;
    first.cut();
    await until(() => outputs(second, 'a').length >= 1, 'the resend on the second node');
    gateA.open();
    await until(() => made.reported.some((r) => r.id === 'a'), 'the result');
    expect(seqs(second, 'a')).toEqual([4, 5, 6]);
    expect(first.outputs.get('1:a')).toEqual(chunks(6));
    expect(results(second, 'a')[0]?.result).toEqual(Array(6).fill('ok'));
  });
});

describe('where the stream stops', () => {
  it('lease_lost: every pending and later write rejects so, and no result is reported', async () => {
    const hub = await scriptedHub(defer);
    hub.onOutput = (f) =>
      f.seq < 3
        ? hub.storeOutput(f.id, f.epoch, f.seq, f.data)
        : { type: 'nack', id: f.id, epoch: f.epoch, seq: f.seq, code: 'lease_lost', retry: false };
    let codes: string[] = [];
    let later = '';
    let aborted = false;
    const write = async (_p: unknown, ctx: HandlerContext) => {
      codes = await outcomes([1, 2, 3, 4, 5].map((i) => ctx.output(i)));
      later = (await outcomes([ctx.output(6)]))[0] as string;
      aborted = ctx.signal.aborted;
      return 'ignored';
    };
    const { d, reported } = await daemon(hub, { handlers: { write } });
    hub.request('a', 1, 'write');
    await until(() => later !== '', 'the handler');
    await until(() => d.inFlight === 0, 'the attempt to leave');
    await marker(hub, 'm1');
    expect(codes).toEqual(['ok', 'ok', 'lease_lost', 'lease_lost', 'lease_lost']);
    expect(later).toBe('lease_lost');
    expect(aborted).toBe(true);
    expect(results(hub, 'a')).toEqual([]);
    expect(reported.some((r) => r.id === 'a')).toBe(false);
    expect(hub.outputs.get('1:a')).toEqual([1, 2]);
  });

  it('output_limit: writes reject so; the handler still returns its result', async () => {
    const hub = await scriptedHub(defer);
    // Seq 2 is stored but its ack never comes; the nack for 3 says so (every seq before it).
    hub.onOutput = (f) => {
      if (f.seq >= 3) {
        return {
          type: 'nack',
          id: f.id,
          epoch: f.epoch,
          seq: 3,
          code: 'output_limit',
          retry: false,
        };
      }
      const answer = hub.storeOutput(f.id, f.epoch, f.seq, f.data);
      return f.seq === 1 ? answer : null;
    };
    const write = async (_p: unknown, ctx: HandlerContext) => {
      const codes = await outcomes([1, 2, 3, 4].map((i) => ctx.output(i)));
      const later = await outcomes([ctx.output(5)]);
      return { codes, later, aborted: ctx.signal.aborted };
    };
    const { reported } = await daemon(hub, { handlers: { write } });
    hub.request('a', 1, 'write');
    await until(() => reported.some((r) => r.id === 'a'), 'the result');
    expect(reported.find((r) => r.id === 'a')).toMatchObject({
      status: 'completed',
      accepted: true,
    });
    expect(results(hub, 'a')[0]?.result).toEqual({
      codes: ['ok', 'ok', 'output_limit', 'output_limit'],
      later: ['output_limit'],
      aborted: false,
    });
    expect(hub.outputs.get('1:a')).toEqual([1, 2]);
  });

  it('store_unavailable with retry: resends the same chunks after a backoff', async () => {
    const hub = await scriptedHub(defer);
    let refusals = 0;
    hub.onOutput = (f) => {
      if (f.seq >= 2 && refusals < 2) {
        refusals++;
        return {
          type: 'nack',
          id: f.id,
          epoch: f.epoch,
          seq: f.seq,
          code: 'store_unavailable',
          retry: true,
        };
      }
      return hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    };
    const write = async (_p: unknown, ctx: HandlerContext) =>
      outcomes(['a', 'b', 'c'].map((c) => ctx.output(c)));
    const { reported } = await daemon(hub, { handlers: { write } });
    hub.request('a', 1, 'write');
    await until(() => reported.some((r) => r.id === 'a'), 'the result');
    expect(results(hub, 'a')[0]?.result).toEqual(['ok', 'ok', 'ok']);
    expect(hub.outputs.get('1:a')).toEqual(['a', 'b', 'c']);
    expect(seqs(hub, 'a').filter((s) => s === 2).length).toBeGreaterThanOrEqual(2);
  });

  it('a seq gap behind a refused frame (the hub buffer was full) is mended by a resend', async () => {
    const hub = await scriptedHub(defer);
    let refused = false;
    // Seq 2 is refused once (retryable); seq 3, taken after it, meets a gap in the store.
    hub.onOutput = (f) => {
      if (f.seq === 2 && !refused) {
        refused = true;
        return {
          type: 'nack',
          id: f.id,
          epoch: f.epoch,
          seq: 2,
          code: 'store_unavailable',
          retry: true,
        };
      }
      return hub.storeOutput(f.id, f.epoch, f.seq, f.data);
    };
    const write = async (_p: unknown, ctx: HandlerContext) =>
      outcomes(['a', 'b', 'c', 'd'].map((c) => ctx.output(c)));
    const { reported } = await daemon(hub, { handlers: { write } });
    hub.request('a', 1, 'write');
    await until(() => reported.some((r) => r.id === 'a'), 'the result');
    const gaps = hub.frames.filter((f) => f.type === 'output' && f.seq === 3).length;
    expect(gaps).toBeGreaterThanOrEqual(2);
    expect(results(hub, 'a')[0]?.result).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(hub.outputs.get('1:a')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('close(): writes the hub never acknowledged reject with closed', async () => {
    const hub = await scriptedHub(defer);
    hub.onOutput = () => null;
    let code = '';
    const started = gate();
    const write = async (_p: unknown, ctx: HandlerContext) => {
      const p = ctx.output('never acked');
      started.open();
      code = (await outcomes([p]))[0] as string;
      return code;
    };
    const { d } = await daemon(hub, { handlers: { write }, closeTimeoutMs: 200 });
    hub.request('a', 1, 'write');
    await started.promise;
    await d.close();
    await until(() => code !== '', 'the handler');
    expect(code).toBe('closed');
    expect(results(hub, 'a')).toEqual([]);
  });
});
