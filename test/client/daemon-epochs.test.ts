/**
 * The daemon SDK keys its jobs by (id, epoch): a claim at a newer epoch for a request
 * this daemon already holds runs as its own attempt (the older one is dead: its signal
 * aborts, its pending report is dropped once refused), leases are renewed while a report
 * is retried, and a cancel applies to the epoch it names. One test against a real node
 * (through a websocket gate the test controls), the rest against a scripted hub that
 * speaks the frames of DESIGN.md section 4.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { connectDaemon } from '../../src/client/daemon.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken } from '../helpers/node.js';
import { scriptedHub, testDaemon, until } from './scripted-hub.js';

type Frame = { type: string; [k: string]: any };
/** What the gate does with a frame: pass it, drop it, or drop it and answer this instead. */
type Verdict = 'pass' | 'drop' | { reply: Frame };

const { defer, node } = stopAfterEach();

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A websocket gate in front of a node's daemon socket: every frame passes through
 * `fromDaemon` / `fromHub`, which may drop it or answer it in the hub's place. Pings
 * are passed on, so the daemon's watchdog sees a live path.
 */
async function wsGate(
  target: string,
  fromDaemon: (f: Frame) => Verdict,
  fromHub: (f: Frame) => Verdict,
) {
  const seen: { from: 'daemon' | 'hub'; frame: Frame }[] = [];
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server });
  wss.on('connection', (down, req) => {
    const up = new WebSocket(`${target.replace(/^http/, 'ws')}/v1/daemon/ws`, {
      headers: { authorization: req.headers.authorization ?? '' },
    });
    const early: string[] = [];
    const relay = (
      from: 'daemon' | 'hub',
      text: string,
      to: WebSocket,
      back: WebSocket,
      decide: (f: Frame) => Verdict,
    ) => {
      const frame = JSON.parse(text) as Frame;
      seen.push({ from, frame });
      const verdict = decide(frame);
      if (verdict === 'pass') {
        if (to === up && up.readyState === WebSocket.CONNECTING) early.push(text);
        else if (to.readyState === WebSocket.OPEN) to.send(text);
      } else if (verdict !== 'drop' && back.readyState === WebSocket.OPEN) {
        back.send(JSON.stringify(verdict.reply));
      }
    };
    up.on('open', () => {
      for (const text of early.splice(0)) up.send(text);
    });
    up.on('message', (d) => relay('hub', d.toString(), down, up, fromHub));
    down.on('message', (d) => relay('daemon', d.toString(), up, down, fromDaemon));
    up.on('ping', () => down.readyState === WebSocket.OPEN && down.ping());
    up.on('close', () => down.close());
    down.on('close', () => up.close());
    up.on('error', () => down.terminate());
    down.on('error', () => up.terminate());
  });
  defer(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return { url: await listen(server), seen };
}

/** The scripted hub (test/client/scripted-hub.ts), stopped after each test. */
const fakeHub = (leaseMs = 30_000) => scriptedHub(defer, leaseMs);

const daemon = (url: string, runtime: string, opts: Partial<Parameters<typeof connectDaemon>[0]>) =>
  testDaemon(defer, url, runtime, opts);

function gateOpen(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

describe('a re-claim at a newer epoch while the old report is pending (real node)', () => {
  it('runs the new claim as its own attempt; the old report is dropped once refused', async () => {
    const n = await node({ LEASE_MS: '300' });
    const runtime = 'epochs-real';
    let first: number | undefined;
    let reclaimed = false;
    // The path loses what the daemon says about the first claim (its result is answered
    // "try again", its renewals vanish) and the hub's lease_lost for it (a hint lost, as
    // after a reconnect), until the hub has claimed the request again for this daemon.
    const gate = await wsGate(
      n.url,
      (f) => {
        if (reclaimed || f.epoch !== first) return 'pass';
        if (f.type === 'renew') return 'drop';
        if (f.type === 'result') {
          return {
            reply: {
              type: 'nack',
              id: f.id,
              epoch: f.epoch,
              code: 'store_unavailable',
              retry: true,
            },
          };
        }
        return 'pass';
      },
      (f) => {
        if (f.type === 'request') {
          if (first === undefined) first = f.request.epoch;
          else if (f.request.epoch > first) reclaimed = true;
        }
        if (f.type === 'lease_lost' && f.epoch === first && !reclaimed) return 'drop';
        return 'pass';
      },
    );
    const epochs: number[] = [];
    const { reported } = await daemon(gate.url, runtime, {
      handlers: {
        echo: (_p, ctx) => {
          epochs.push(ctx.epoch);
          return { epoch: ctx.epoch };
        },
      },
    });
    await until(
      () => gate.seen.some((s) => s.from === 'daemon' && s.frame.type === 'ready'),
      'ready',
    );
    const client = await clientToken();
    const created = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
      token: client,
      body: { kind: 'echo', max_attempts: 2 },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    const done = await api(n, 'GET', `/v1/runtimes/${runtime}/requests/${id}?wait_ms=10000`, {
      token: client,
    });
    expect(done.body).toMatchObject({ status: 'completed', attempt: 2 });
    const second = done.body.epoch as number;
    expect(second).toBeGreaterThan(first as number);
    expect(done.body.result).toEqual({ epoch: second });
    expect(epochs).toEqual([first, second]);

    // Renewals for the first claim went on while its report was being retried.
    const fromDaemon = gate.seen.filter((s) => s.from === 'daemon').map((s) => s.frame);
    const firstResult = fromDaemon.findIndex((f) => f.type === 'result' && f.epoch === first);
    expect(firstResult).toBeGreaterThanOrEqual(0);
    expect(fromDaemon.slice(firstResult).some((f) => f.type === 'renew' && f.epoch === first)).toBe(
      true,
    );
    // The old report reached the hub once the path let it and was refused: dropped.
    await until(() => reported.some((r) => r.epoch === first), 'the old report to settle');
    expect(reported).toContainEqual({ id, epoch: first, status: 'completed', accepted: false });
    expect(reported).toContainEqual({ id, epoch: second, status: 'completed', accepted: true });
  });
});

describe('attempts keyed by (id, epoch) (scripted hub)', () => {
  it("aborts the older attempt's signal; the newer one runs after it returns and reports its own epoch", async () => {
    const hub = await fakeHub();
    const release = gateOpen();
    const calls: { epoch: number; signal: AbortSignal }[] = [];
    await daemon(hub.url, 'epochs-a', {
      capacity: 2,
      handlers: {
        work: async (_p, ctx) => {
          calls.push({ epoch: ctx.epoch, signal: ctx.signal });
          if (ctx.epoch === 1) await release.promise; // ignores its signal for a while
          return `epoch ${ctx.epoch}`;
        },
      },
    });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('r1', 1);
    await until(() => calls.length === 1, 'the first attempt');
    hub.request('r1', 3);
    await until(() => calls[0]?.signal.aborted === true, 'the first attempt to be aborted');
    expect(calls).toHaveLength(1); // the newer attempt waits for the older handler
    release.open();
    const result = await hub.next((f) => f.type === 'result', 'a result');
    expect(result).toMatchObject({ id: 'r1', epoch: 3, status: 'completed', result: 'epoch 3' });
    expect(calls.map((c) => c.epoch)).toEqual([1, 3]);
    expect(hub.frames.filter((f) => f.type === 'result' && f.epoch === 1)).toEqual([]);
  });

  it('a cancel for the newer epoch holds even when it came before the older handler let go', async () => {
    const hub = await fakeHub();
    const release = gateOpen();
    const epochs: number[] = [];
    const { d } = await daemon(hub.url, 'epochs-b', {
      capacity: 2,
      handlers: {
        work: async (_p, ctx) => {
          epochs.push(ctx.epoch);
          if (ctx.epoch === 1) await release.promise;
          return ctx.epoch;
        },
        other: () => 'other',
      },
    });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('r1', 1);
    await until(() => epochs.length === 1, 'the first attempt');
    hub.send({ type: 'lease_lost', id: 'r1', epoch: 1 });
    hub.request('r1', 3);
    hub.send({ type: 'cancel', id: 'r1', epoch: 3 });
    // The frames are read in order: once `other` is reported, all three were handled.
    hub.request('r2', 1, 'other');
    await hub.next((f) => f.type === 'result' && f.id === 'r2', 'the result of r2');
    release.open();
    await until(() => d.inFlight === 0, 'no job left');
    expect(epochs).toEqual([1]);
    expect(hub.frames.filter((f) => f.type === 'result' && f.id === 'r1')).toEqual([]);
  });

  it('keeps renewing the lease while a report is being retried', async () => {
    const hub = await fakeHub(300);
    let nacks = 0;
    hub.onResult = (f) =>
      nacks++ < 1_000 && hub.frames.filter((x) => x.type === 'renew').length < 2
        ? { type: 'nack', id: f.id, epoch: f.epoch, code: 'store_unavailable', retry: true }
        : { type: 'ack', id: f.id, epoch: f.epoch };
    const { reported } = await daemon(hub.url, 'epochs-c', { handlers: { work: () => 'done' } });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('r1', 5);
    await hub.next((f) => f.type === 'result', 'the first result');
    const firstResult = hub.frames.findIndex((f) => f.type === 'result');
    // No renew before the result (the handler returned at once): these came while it was retried.
    await until(
      () => hub.frames.slice(firstResult).filter((f) => f.type === 'renew').length >= 2,
      'renewals while the report is retried',
    );
    expect(hub.frames.find((f) => f.type === 'renew')).toMatchObject({ id: 'r1', epoch: 5 });
    await until(() => reported.length === 1, 'the report to be acked');
    expect(reported[0]).toMatchObject({ id: 'r1', epoch: 5, accepted: true });
  });
});
