/**
 * The Switchboard client of bench/vs-bullmq.ts, one process: creates requests over HTTP
 * on one node (node:http, a keep-alive agent with one socket per lane) and waits for each
 * through a client websocket on another node, subscribed to the whole runtime: a request
 * is done when a `request` frame shows it in a terminal status. The payload carries the
 * send time and a sequence number, which is how a frame is matched to its waiting lane
 * (the frame may come before the create's 201).
 * Driven over IPC: `pass {n, inFlight}` runs n requests with inFlight lanes (PassResult).
 * Env: BENCH_CREATE_URL, BENCH_WATCH_URL, BENCH_TOKEN (client), BENCH_RUNTIME.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { type Payload, runLanes, serve } from './vs-bullmq-common.js';

const { values } = parseArgs({ options: { 'in-flight': { type: 'string', default: '64' } } });
const createUrl = process.env.BENCH_CREATE_URL;
const watchUrl = process.env.BENCH_WATCH_URL;
const token = process.env.BENCH_TOKEN;
const runtime = process.env.BENCH_RUNTIME;
if (!createUrl || !watchUrl || !token || !runtime)
  throw new Error('BENCH_CREATE_URL, BENCH_WATCH_URL, BENCH_TOKEN and BENCH_RUNTIME are required');
const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(values['in-flight']) });
const createPath = `${createUrl}/v1/runtimes/${runtime}/requests`;
function create(payload: Payload): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      createPath,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 201 ? resolve() : reject(new Error(`create: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ kind: 'bench', payload }));
  });
}

/** Lanes waiting for their request, by the payload's sequence number. */
const waiting = new Map<number, (ok: boolean) => void>();
const ws = new WebSocket(`${watchUrl.replace(/^http/, 'ws')}/v1/ws`, {
  headers: { authorization: `Bearer ${token}` },
  perMessageDeflate: false,
});
await new Promise<void>((resolve, reject) => {
  ws.once('error', reject);
  ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', runtime })));
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as {
      type: string;
      request?: { status: string; payload: Payload | null };
    };
    if (f.type === 'snapshot') resolve();
    else if (f.type === 'request' && f.request && TERMINAL.has(f.request.status)) {
      const i = f.request.payload?.i;
      const done = i === undefined ? undefined : waiting.get(i);
      if (done) {
        waiting.delete(i as number);
        done(f.request.status === 'completed');
      }
    } else if (f.type === 'error') console.error(`sb-client: ${data.toString()}`);
  });
});
ws.on('close', (code) => {
  console.error(`sb-client: the client websocket closed (${code})`);
  process.exit(1);
});

let seq = 0;
serve({
  pass: ({ n, inFlight }) =>
    runLanes(
      n as number,
      inFlight as number,
      () => ++seq,
      (i, t) => {
        const done = new Promise<boolean>((resolve) => waiting.set(i, resolve));
        return create({ t, i }).then(() => done);
      },
    ),
});
