/**
 * A scripted hub for daemon SDK tests: one HTTP server that speaks the daemon frames and
 * routes of DESIGN.md sections 4 and 6 as the test tells it. The websocket says hello,
 * records every frame the daemon sends, acks results, answers renewals and stores
 * output chunks in a small model of the store (seq dedup, gaps refused; all overridable);
 * upgrades can be refused (the SDK then polls); HTTP calls go to `onHttp`, which may
 * answer or hold the call forever (a half-open path).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { connectDaemon } from '../../src/client/daemon.js';
import { daemonToken } from '../helpers/node.js';

export type Frame = { type: string; [k: string]: any };
export type HttpCall = { path: string; body: any };
/** An answer to an HTTP call, or 'hang': accept it and never answer. */
export type HttpReply = { status: number; body: unknown } | 'hang';

export type Reported = { id: string; epoch: number; status: string; accepted: boolean };

/** An SDK daemon with short timings, closed after the test, recording its reports. */
export async function testDaemon(
  defer: (stop: () => Promise<unknown>) => void,
  url: string | string[],
  runtime: string,
  opts: Partial<Parameters<typeof connectDaemon>[0]>,
) {
  const d = connectDaemon({
    url,
    token: await daemonToken(runtime),
    closeTimeoutMs: 500,
    backoff: { initialMs: 20, maxMs: 100 },
    handlers: {},
    ...opts,
  });
  defer(() => d.close());
  const reported: Reported[] = [];
  d.on('reported', (r) => reported.push(r));
  return { d, reported };
}

export function daemonRequest(id: string, epoch: number, kind = 'work', leaseMs = 30_000) {
  return {
    id,
    kind,
    payload: null,
    epoch,
    attempt: epoch,
    created_at: new Date().toISOString(),
    lease_expires_at: new Date(Date.now() + leaseMs).toISOString(),
  };
}

export async function until(cond: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function scriptedHub(defer: (stop: () => Promise<unknown>) => void, leaseMs = 30_000) {
  const frames: Frame[] = [];
  const calls: HttpCall[] = [];
  let socket: WebSocket | null = null;
  const hub = {
    frames,
    calls,
    url: '',
    acceptUpgrades: true,
    onResult: (f: Frame): Frame | null => ({ type: 'ack', id: f.id, epoch: f.epoch }),
    onRenew: (f: Frame): Frame | null => ({
      type: 'renewed',
      id: f.id,
      epoch: f.epoch,
      lease_expires_at: new Date(Date.now() + leaseMs).toISOString(),
    }),
    onHttp: (_call: HttpCall): HttpReply => ({ status: 404, body: null }),
    /** Stored output per attempt (`${epoch}:${id}`), in seq order. */
    outputs: new Map<string, unknown[]>(),
    /** Stores the chunk as the store would (a repeated seq once, a gap refused); the answer. */
    storeOutput(id: string, epoch: number, seq: number, data: unknown): Frame {
      const key = `${epoch}:${id}`;
      const log = hub.outputs.get(key) ?? [];
      hub.outputs.set(key, log);
      if (seq === log.length + 1) log.push(data);
      else if (seq > log.length + 1) {
        return { type: 'nack', id, epoch, seq, code: 'invalid_message', retry: false };
      }
      return { type: 'output_ack', id, epoch, seq: log.length };
    },
    onOutput: (f: Frame): Frame | null => hub.storeOutput(f.id, f.epoch, f.seq, f.data),
    /** Cuts the daemon's socket (as a network failure would). */
    cut() {
      socket?.terminate();
    },
    send(frame: Frame) {
      socket?.send(JSON.stringify(frame));
    },
    request(id: string, epoch: number, kind = 'work') {
      hub.send({ type: 'request', request: daemonRequest(id, epoch, kind, leaseMs) });
    },
    /** Answers the oldest call to `path` that was held ('hang'). */
    answerHeld(path: string, reply: { status: number; body: unknown }) {
      const i = held.findIndex((h) => h.path === path);
      if (i < 0) throw new Error(`no held call to ${path}`);
      const { res } = held.splice(i, 1)[0] as { res: http.ServerResponse };
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    },
    /** The first frame (received so far or later) that matches. */
    async next(pred: (f: Frame) => boolean, what: string, timeoutMs = 5_000): Promise<Frame> {
      await until(() => frames.some(pred), what, timeoutMs);
      return frames.find(pred) as Frame;
    },
  };
  const held: { path: string; res: http.ServerResponse }[] = [];
  const server = http.createServer((req, res) => {
    // A call the daemon gave up on (its timeout) resets the connection: not an error here.
    req.on('error', () => {});
    res.on('error', () => {});
    let text = '';
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', () => {
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      const call = { path: req.url ?? '', body };
      calls.push(call);
      const reply = hub.onHttp(call);
      if (reply === 'hang') {
        held.push({ path: call.path, res });
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, sock, head) => {
    sock.on('error', () => {}); // a refused upgrade may be reset by the daemon
    if (!hub.acceptUpgrades || req.url !== '/v1/daemon/ws') {
      sock.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws) => {
    socket = ws;
    ws.send(
      JSON.stringify({
        type: 'hello',
        node_id: 'scripted',
        connection_id: 'c1',
        heartbeat_interval_ms: 60_000,
        lease_ms: leaseMs,
        max_payload_bytes: 1_048_576,
      }),
    );
    ws.on('message', (d) => {
      const frame = JSON.parse(d.toString()) as Frame;
      frames.push(frame);
      const answer =
        frame.type === 'result'
          ? hub.onResult(frame)
          : frame.type === 'renew'
            ? hub.onRenew(frame)
            : frame.type === 'output'
              ? hub.onOutput(frame)
              : null;
      if (answer) ws.send(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    for (const h of held) h.res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}

/** A heartbeat answer: these claims, and every lease asked about as `ok` unless listed. */
export function heartbeatAnswer(
  body: any,
  requests: unknown[] = [],
  lost: { id: string; epoch: number }[] = [],
) {
  const leases = ((body?.leases ?? []) as { id: string; epoch: number }[]).map((l) => ({
    ...l,
    ok: !lost.some((x) => x.id === l.id && x.epoch === l.epoch),
    lease_expires_at: new Date(Date.now() + 30_000).toISOString(),
  }));
  return { status: 200, body: { requests, leases, heartbeat_interval_ms: 15_000 } };
}
