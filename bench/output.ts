/**
 * Output-stream benchmark (DESIGN.md section 6): three node processes and one
 * redis-server. A client creates a request on node A; a daemon on node B claims it and
 * streams 1 KB chunks (raw `output` frames, at most --window unacknowledged, those sent
 * together in one write as the daemon SDK sends them); a client websocket on node C,
 * subscribed with `output: true`, receives them.
 *  1. throughput: --n chunks at full speed; chunks/s from the first send to the last
 *     receipt, and latency (the daemon's send to the client's receipt) p50/p99;
 *  2. unloaded latency: --unloaded chunks one at a time (window 1);
 *  3. Redis memory per stored chunk (used_memory before and after, over the chunks);
 *  4. CPU time per chunk over the throughput rounds, of each process (/proc, Linux): on a
 *     loaded machine a steadier figure than chunks/s; and Redis's by command (INFO
 *     commandstats, wall time inside each command).
 * Usage: npm run bench:output [-- --n 20000 --rounds 3 --window 256 --unloaded 500]
 *        [--profile DIR (each node's CPU profile, written there when the bench ends)]
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { Auth } from '../src/auth.js';
import { RedisServer } from '../test/helpers/redis.js';
import { startBenchNode } from './ready.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '256' },
    unloaded: { type: 'string', default: '500' },
    dist: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const N = Number(values.n);
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const auth = new Auth(SECRET);
const FILLER = 'x'.repeat(1000);
const now = () => performance.timeOrigin + performance.now();

// biome-ignore lint/suspicious/noExplicitAny: frames are read loosely here
type Frame = { type: string; [k: string]: any };

function open(
  url: string,
  path: string,
  token: string,
  onFrame: (f: Frame, ws: WebSocket) => void,
) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.on('message', (data) => onFrame(JSON.parse(data.toString()) as Frame, ws));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Redis INFO commandstats: calls and microseconds by command. */
async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const m of (await redis.info('commandstats')).matchAll(
    /cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g,
  )) {
    stats.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

/** A process's CPU time [user, system] in microseconds, from /proc (Linux). */
function cpuMicros(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second).
  return [Number(fields[11]) * 10_000, Number(fields[12]) * 10_000];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

interface StreamRun {
  chunksPerSec: number;
  p50: number;
  p99: number;
  bytesPerChunk: number;
}

/** One request streamed from B to a reader on C; resolves when the reader has all. */
async function streamOnce(
  nodes: { url: string }[],
  redis: Redis,
  count: number,
  window: number,
): Promise<StreamRun> {
  const [a, b, c] = nodes as [{ url: string }, { url: string }, { url: string }];
  const runtime = `bench-${Math.random().toString(36).slice(2, 8)}`;
  const client = await auth.sign({ sub: 'bench', ws: 'bench', role: 'client' }, '1h');
  const daemonToken = await auth.sign(
    { sub: 'bench-d', ws: 'bench', role: 'daemon', rt: runtime },
    '1h',
  );
  let push: (f: Frame) => void = () => {};
  const pushed = new Promise<Frame>((resolve) => {
    push = resolve;
  });
  let onAck: (f: Frame) => void = () => {};
  // `hello` can come before open() resolves: answered through the handler's own socket.
  const daemon = await open(b.url, '/v1/daemon/ws', daemonToken, (f, ws) => {
    if (f.type === 'hello') ws.send(JSON.stringify({ type: 'ready', capacity: 1 }));
    else if (f.type === 'request') push(f);
    else if (f.type === 'output_ack' || f.type === 'nack') onAck(f);
  });
  const res = await fetch(`${a.url}/v1/runtimes/${runtime}/requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${client}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'stream' }),
  });
  const { id, epoch } = (await pushed).request as { id: string; epoch: number };
  if (res.status !== 201) throw new Error(`create answered ${res.status}`);

  const latencies: number[] = [];
  let received = 0;
  let lastAt = 0;
  let finished: () => void = () => {};
  const allIn = new Promise<void>((resolve) => {
    finished = resolve;
  });
  let subscribed: () => void = () => {};
  const snapshot = new Promise<void>((resolve) => {
    subscribed = resolve;
  });
  const reader = await open(c.url, '/v1/ws', client, (f) => {
    if (f.type === 'snapshot') subscribed();
    else if (f.type === 'output') {
      lastAt = now();
      latencies.push(lastAt - (f.data.t as number));
      received += 1;
      if (received === count) finished();
    }
  });
  reader.send(JSON.stringify({ type: 'subscribe', runtime, requests: [id], output: true }));
  await snapshot;
  const memBefore = Number((await redis.info('memory')).match(/used_memory:(\d+)/)?.[1]);

  let sent = 0;
  let acked = 0;
  const firstAt = now();
  // The frames of one fill leave in one write, as the daemon SDK sends them (output.ts).
  const tcp = (daemon as unknown as { _socket: Socket })._socket;
  const fill = () => {
    tcp.cork();
    while (sent < count && sent - acked < window) {
      sent += 1;
      daemon.send(
        JSON.stringify({ type: 'output', id, epoch, seq: sent, data: { t: now(), s: FILLER } }),
      );
    }
    tcp.uncork();
  };
  onAck = (f) => {
    if (f.type === 'nack') {
      if (!f.retry) throw new Error(`output refused: ${JSON.stringify(f)}`);
      sent = acked;
    } else acked = Math.max(acked, f.seq as number);
    fill();
  };
  fill();
  await allIn;
  const memAfter = Number((await redis.info('memory')).match(/used_memory:(\d+)/)?.[1]);
  daemon.send(JSON.stringify({ type: 'result', id, epoch, status: 'completed', result: null }));
  daemon.close();
  reader.close();
  const sorted = latencies.sort((x, y) => x - y);
  return {
    chunksPerSec: count / ((lastAt - firstAt) / 1000),
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    bytesPerChunk: (memAfter - memBefore) / count,
  };
}

const redisServer = await RedisServer.start();
const children: ChildProcess[] = [];
// A throw in a socket handler ends the process past the `finally`: the nodes go with it.
process.on('exit', () => {
  for (const child of children) child.kill('SIGTERM');
});
try {
  const nodes = await Promise.all(
    ['out-a', 'out-b', 'out-c'].map((id) =>
      startBenchNode(redisServer.url, id, SECRET, { dist: values.dist, profile: values.profile }),
    ),
  );
  children.push(...nodes.map((n) => n.child));
  const redis = new Redis(redisServer.url);
  // Warm-up: JIT and connections.
  await streamOnce(nodes, redis, 2_000, Number(values.window));
  const runs: StreamRun[] = [];
  const statsBefore = await commandStats(redis);
  const redisPid = Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1]);
  const pids = [...nodes.map((n) => n.child.pid as number), redisPid, process.pid];
  const cpuBefore = pids.map(cpuMicros);
  for (let r = 0; r < Number(values.rounds); r++) {
    const run = await streamOnce(nodes, redis, N, Number(values.window));
    runs.push(run);
    console.log(
      `round ${r + 1}: ${run.chunksPerSec.toFixed(0)} chunks/s, latency p50 ${run.p50.toFixed(2)} ms p99 ${run.p99.toFixed(2)} ms, Redis ${run.bytesPerChunk.toFixed(0)} B/chunk`,
    );
  }
  const statsAfter = await commandStats(redis);
  const cpu = pids.map((pid, i) => {
    const [user, sys] = cpuMicros(pid);
    const [user0, sys0] = cpuBefore[i] as [number, number];
    const per = (us: number) => (us / (N * runs.length)).toFixed(1);
    return `${per(user + sys - user0 - sys0)} us (sys ${per(sys - sys0)})`;
  });
  const unloaded = await streamOnce(nodes, redis, Number(values.unloaded), 1);
  console.log(
    `\n1 KB chunks, one stream, B -> C, window ${values.window}: median of ${runs.length} rounds of ${N}:`,
  );
  console.log(
    `  throughput           ${median(runs.map((r) => r.chunksPerSec)).toFixed(0)} chunks/s`,
  );
  console.log(
    `  latency under load   p50 ${median(runs.map((r) => r.p50)).toFixed(2)} ms  p99 ${median(runs.map((r) => r.p99)).toFixed(2)} ms`,
  );
  console.log(
    `  latency unloaded     p50 ${unloaded.p50.toFixed(2)} ms  p99 ${unloaded.p99.toFixed(2)} ms (${values.unloaded} chunks, one at a time)`,
  );
  console.log(
    `  Redis memory         ${median(runs.map((r) => r.bytesPerChunk)).toFixed(0)} bytes per stored 1 KB chunk`,
  );
  const chunks = N * runs.length;
  const cost = [...statsAfter]
    .map(([cmd, a]) => {
      const b = statsBefore.get(cmd) ?? { calls: 0, usec: 0 };
      return { cmd, calls: a.calls - b.calls, usec: a.usec - b.usec };
    })
    .filter((c) => c.calls > 0)
    .sort((x, y) => y.usec - x.usec);
  const usec = cost.reduce((sum, c) => sum + c.usec, 0);
  console.log(
    `  Redis CPU            ${(usec / chunks).toFixed(1)} us per chunk: ${cost
      .slice(0, 5)
      .map(
        (c) =>
          `${c.cmd} ${(c.usec / chunks).toFixed(1)} us (${(c.calls / chunks).toFixed(3)} calls)`,
      )
      .join(', ')}`,
  );
  const [cpuA, cpuB, cpuC, cpuRedis, cpuBench] = cpu;
  console.log(
    `  CPU per chunk        node A ${cpuA}, B ${cpuB}, C ${cpuC}, redis-server ${cpuRedis}, bench ${cpuBench}`,
  );
  redis.disconnect();
} finally {
  for (const child of children) child.kill('SIGTERM');
  await redisServer.close();
}
