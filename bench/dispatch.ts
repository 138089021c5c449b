/**
 * Dispatch benchmark: three node processes and one redis-server on this machine.
 *  1. push latency: a client creates on node A, a daemon on node B receives the push
 *     (one request at a time, so the machine is otherwise idle);
 *  2. end-to-end throughput: create on A, push to a daemon of capacity 64 on B, result,
 *     a client websocket on C sees it completed;
 *  3. the heartbeat-only path: a daemon with no socket polling every 50 ms.
 * Usage: npm run bench:dispatch [-- --n 10000 --throughput 20000 --only throughput
 *        --profile DIR --dist]
 * --only runs one of push, throughput, heartbeat; --profile DIR writes each node's CPU
 * profile there (node --cpu-prof; the nodes are stopped by SIGTERM so they write it);
 * --dist runs the built node (dist/src/cli.js, after `npm run build`) instead of the
 * sources through tsx.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { Auth } from '../src/auth.js';
import { RedisServer } from '../test/helpers/redis.js';
import { startBenchNode } from './ready.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    throughput: { type: 'string', default: '20000' },
    heartbeat: { type: 'string', default: '300' },
    only: { type: 'string' },
    profile: { type: 'string' },
    dist: { type: 'boolean', default: false },
  },
});
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const auth = new Auth(SECRET);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
function summary(label: string, ms: number[]): void {
  const s = [...ms].sort((x, y) => x - y);
  console.log(
    `${label.padEnd(44)} n=${s.length}  p50 ${pct(s, 50).toFixed(3)} ms  p99 ${pct(s, 99).toFixed(3)} ms  max ${(s.at(-1) ?? 0).toFixed(3)} ms`,
  );
}

function openDaemon(
  url: string,
  token: string,
  capacity: number,
  onRequest: (f: { request: { id: string; epoch: number } }, ws: WebSocket) => void,
) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/daemon/ws`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'ready', capacity }));
        resolve(ws);
      } else if (f.type === 'request') onRequest(f, ws);
    });
    ws.on('error', reject);
  });
}

// node:http with keep-alive: a lighter client than fetch, so the figures measure the hub.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function create(url: string, token: string, runtime: string, body: unknown) {
  const res = await post(`${url}/v1/runtimes/${runtime}/requests`, token, body);
  if (res.status !== 201) throw new Error(`create answered ${res.status}`);
  return res.json as { id: string; created_at: string };
}

async function pushLatency(a: string, b: string, client: string) {
  const n = Number(values.n);
  const waiting = new Map<string, (t: number) => void>();
  const early = new Map<string, number>();
  const ws = await openDaemon(
    b,
    await auth.sign({ sub: 'd', ws: 'bench', role: 'daemon', rt: 'lat' }, '1h'),
    1,
    (f, sock) => {
      const t = performance.now();
      const done = waiting.get(f.request.id);
      if (done) done(t);
      else early.set(f.request.id, t);
      sock.send(
        JSON.stringify({
          type: 'result',
          id: f.request.id,
          epoch: f.request.epoch,
          status: 'completed',
          result: null,
        }),
      );
    },
  );
  const fromCreate: number[] = [];
  const fromCommit: number[] = [];
  const postRtt: number[] = [];
  for (let i = 0; i < n + 200; i++) {
    const t0 = performance.now();
    const wall0 = Date.now();
    const req = await create(a, client, 'lat', { kind: 'lat', payload: i });
    const tPost = performance.now() - t0;
    const t1 = early.get(req.id) ?? (await new Promise<number>((r) => waiting.set(req.id, r)));
    early.delete(req.id);
    waiting.delete(req.id);
    if (i < 200) continue; // warm-up
    fromCreate.push(t1 - t0);
    postRtt.push(tPost);
    fromCommit.push(Math.max(0, wall0 + (t1 - t0) - Date.parse(req.created_at)));
  }
  summary('push latency (POST on A -> frame on B)', fromCreate);
  summary('  of which after commit (created_at -> frame)', fromCommit);
  summary('  for reference: the POST round trip alone', postRtt);
  ws.close();
}

async function throughput(a: string, b: string, c: string, client: string) {
  const total = Number(values.throughput);
  await openDaemon(
    b,
    await auth.sign({ sub: 'd', ws: 'bench', role: 'daemon', rt: 'tp' }, '1h'),
    64,
    (f, sock) => {
      sock.send(
        JSON.stringify({
          type: 'result',
          id: f.request.id,
          epoch: f.request.epoch,
          status: 'completed',
          result: { ok: 1 },
        }),
      );
    },
  );
  const watcher = new WebSocket(`${c.replace('http', 'ws')}/v1/ws?access_token=${client}`);
  let completed = 0;
  const finished = new Promise<void>((resolve) => {
    watcher.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'request' && f.request.status === 'completed' && ++completed === total)
        resolve();
    });
  });
  await new Promise<void>((resolve) => {
    watcher.on('open', () => {
      watcher.send(JSON.stringify({ type: 'subscribe', runtime: 'tp' }));
      watcher.once('message', () => resolve());
    });
  });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) {
        next++;
        await create(a, client, 'tp', { kind: 'tp', payload: { i: next } });
      }
    }),
  );
  await finished;
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `end-to-end throughput (create A -> daemon B cap 64 -> result -> client ws C): ${(total / secs).toFixed(0)} req/s over ${total}`,
  );
  watcher.close();
}

async function heartbeatPath(a: string, b: string, client: string) {
  const n = Number(values.heartbeat);
  const token = await auth.sign({ sub: 'hb', ws: 'bench', role: 'daemon', rt: 'hb' }, '1h');
  const rtts: number[] = [];
  const latencies: number[] = [];
  const created = new Map<string, number>();
  let stop = false;
  const poller = (async () => {
    while (!stop) {
      const t0 = performance.now();
      const res = await post(`${b}/v1/daemon/heartbeat`, token, { max: 10 });
      const body = res.json as { requests: { id: string; epoch: number }[] };
      const t1 = performance.now();
      rtts.push(t1 - t0);
      for (const r of body.requests) {
        const t = created.get(r.id);
        if (t !== undefined) latencies.push(t1 - t);
        await post(`${b}/v1/daemon/requests/${r.id}/result`, token, {
          epoch: r.epoch,
          status: 'completed',
          result: null,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const req = await create(a, client, 'hb', { kind: 'hb' });
    created.set(req.id, t0);
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
  }
  while (latencies.length < n) await new Promise((r) => setTimeout(r, 20));
  stop = true;
  await poller;
  summary('heartbeat round trip (POST /v1/daemon/heartbeat)', rtts);
  summary('heartbeat-only latency (create -> poll, 50 ms)', latencies);
}

const redis = await RedisServer.start();
const nodes: ChildProcess[] = [];
try {
  const [a, b, c] = await Promise.all(
    ['bench-a', 'bench-b', 'bench-c'].map((id) => startBenchNode(redis.url, id, SECRET, values)),
  );
  for (const n of [a, b, c]) if (n) nodes.push(n.child);
  const client = await auth.sign({ sub: 'c', ws: 'bench', role: 'client' }, '1h');
  console.log(`3 node processes + redis-server on ${redis.url}; node ${process.version}`);
  const run = (part: string) => values.only === undefined || values.only === part;
  if (run('push')) await pushLatency(a!.url, b!.url, client);
  if (run('throughput')) await throughput(a!.url, b!.url, c!.url, client);
  if (run('heartbeat')) await heartbeatPath(a!.url, b!.url, client);
} finally {
  // SIGTERM lets a profiled node write its profile on the way out.
  const exits = nodes.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of nodes) child.kill(values.profile ? 'SIGTERM' : 'SIGKILL');
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
  for (const child of nodes) if (child.exitCode === null) child.kill('SIGKILL');
  await redis.close();
  process.exit(0);
}
