/**
 * Idle-socket benchmark: what N idle daemon websockets cost ONE node process on Redis.
 * One node and one private redis-server; N sockets (default 5000, up to 50000) over many
 * runtimes, held by separate holder processes (bench/socket-holder.ts) from several
 * loopback source addresses (127.0.0.2, ...), so the ephemeral port range is no limit.
 * Measured with none open and with N open:
 *  - the node's RSS (/proc/<pid>/status), and per socket;
 *  - the node's CPU while idle (ms per second, /proc/<pid>/stat) over >= 2 heartbeats;
 *  - Redis commands per second while idle (INFO commandstats deltas), and per socket;
 *  - dispatch latency (POST create on the node -> frame at a measuring daemon on its own
 *    runtime), sampled without pause across >= 2 presence-refresh intervals, so every
 *    refresh burst of the N sockets falls inside the sample.
 * HEARTBEAT_INTERVAL_MS is 2000 here (the default is 15000) so a window holds several
 * refreshes. Prints a markdown table and one JSON line. Stops by itself; kills only the
 * processes it started, by PID; talks only to 127.0.0.x.
 * Usage: npm run bench:sockets [-- --sockets 5000 --runtimes 1000 --heartbeat 2000
 *        --concurrency 100 --handshake-ms 20000]   (the last two: per holder process)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Auth } from '../src/auth.js';
import { freePort, RedisServer } from '../test/helpers/redis.js';
import { Probe, stats } from './probe.js';
import {
  commandCalls,
  commandRates,
  cpuMs,
  openFilesLimit,
  round,
  rssBytes,
} from './proc-stats.js';
import { untilReady } from './ready.js';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '5000' },
    runtimes: { type: 'string', default: '1000' },
    heartbeat: { type: 'string', default: '2000' },
    'per-holder': { type: 'string', default: '8000' },
    'per-address': { type: 'string', default: '10000' },
    /** Handshakes in flight per holder, and how long one may take. */
    concurrency: { type: 'string', default: '100' },
    'handshake-ms': { type: 'string', default: '20000' },
    'deadline-s': { type: 'string', default: '600' },
  },
});
const N = Number(values.sockets);
const HEARTBEAT_MS = Number(values.heartbeat);
const RUNTIMES = Math.max(1, Math.min(Number(values.runtimes), N));
if (!Number.isInteger(N) || N < 1 || N > 50_000) {
  console.error('--sockets must be an integer from 1 to 50000');
  process.exit(2);
}
/** Idle windows span three heartbeats, latency windows four: each >= two refreshes. */
const IDLE_MS = 3 * HEARTBEAT_MS;
const LATENCY_MS = 4 * HEARTBEAT_MS;
/** Files the node needs besides its sockets: Redis connections, stdio, the loader. */
const FD_HEADROOM = 256;
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const WORKSPACE = 'bench';
const auth = new Auth(SECRET);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Node raises its own soft open-files limit to the hard one at start, so the hard limit
// of this shell is what the node (a child of this process) will get.
const limit = openFilesLimit('self');
if (N + FD_HEADROOM > limit.hard) {
  console.error(
    `open-files limit too low: ${N} sockets need about ${N + FD_HEADROOM} descriptors in the ` +
      `node process, but the hard limit (ulimit -Hn) is ${limit.hard}. Raise it (as root: ` +
      `ulimit -Hn ${N + 4096}; or LimitNOFILE= / docker --ulimit nofile=) or use ` +
      `--sockets ${Math.max(1, limit.hard - FD_HEADROOM)}.`,
  );
  process.exit(2);
}
if (Number(values['per-holder']) + FD_HEADROOM > limit.hard) {
  console.error(`--per-holder must leave ${FD_HEADROOM} of the ${limit.hard} open files free`);
  process.exit(2);
}

const started: ChildProcess[] = [];
const killAll = () => {
  for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
};
process.on('exit', killAll);

function spawnTs(script: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.push(child);
  return child;
}

async function startNode(redisUrl: string): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawnTs('src/cli.ts', ['serve'], {
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ID: 'bench-sockets',
    REDIS_URL: redisUrl,
    HUB_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
  });
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, child, 'the node');
  return { url, pid: child.pid as number };
}

/** Daemon sockets the node counts as open (its switchboard_sockets gauge). */
async function nodeDaemonSockets(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(
    /^switchboard_sockets\{[^}]*kind="daemon"[^}]*\} (\d+)/m.exec(text)?.[1] ?? Number.NaN,
  );
}

/** Start the holders, resolve when all N sockets said ready; fail fast if any cannot. */
async function openHolders(url: string): Promise<ChildProcess[]> {
  const holders = Math.max(2, Math.ceil(N / Number(values['per-holder'])));
  const addressCount = Math.min(250, Math.max(4, Math.ceil(N / Number(values['per-address']))));
  const addresses = Array.from({ length: addressCount }, (_, i) => `127.0.0.${i + 2}`).join(',');
  const base = Math.floor(N / holders);
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (let h = 0, from = 0; h < holders; h++) {
    const count = h === holders - 1 ? N - from : base;
    const child = spawnTs(
      'bench/socket-holder.ts',
      [
        ...['--url', url, '--from', String(from), '--count', String(count)],
        ...['--runtimes', String(RUNTIMES), '--workspace', WORKSPACE, '--addresses', addresses],
        ...['--concurrency', values.concurrency, '--handshake-ms', values['handshake-ms']],
      ],
      { BENCH_SECRET: SECRET },
    );
    from += count;
    children.push(child);
    ready.push(
      new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! });
        lines.on('line', (line) => {
          const msg = JSON.parse(line) as { type: string; open?: number; message?: string };
          if (msg.type === 'ready') resolve();
          else if (msg.type === 'failed') reject(new Error(`holder ${h}: ${msg.message}`));
          else if (msg.type === 'lost') console.error(`holder ${h} lost a socket: ${line}`);
        });
        child.once('exit', (code) => reject(new Error(`holder ${h} exited with ${code}`)));
      }),
    );
  }
  await Promise.all(ready);
  return children;
}

/**
 * The node's CPU and Redis's command rate over one idle window, and its RSS: the median
 * of readings every 200 ms across the window, so one GC or heap step does not decide it.
 */
async function idle(pid: number, redis: ReturnType<RedisServer['client']>) {
  const cpu0 = cpuMs(pid);
  const calls0 = await commandCalls(redis);
  const t0 = performance.now();
  const rss: number[] = [];
  // The window being measured, not a wait for anything; /proc reads cost the node nothing.
  while (performance.now() - t0 < IDLE_MS) {
    rss.push(rssBytes(pid));
    await sleep(200);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (cpuMs(pid) - cpu0) / seconds;
  const rates = commandRates(calls0, await commandCalls(redis), seconds);
  return {
    cpuMsPerS: round(cpu, 1),
    redisPerS: round(rates.total, 1),
    top: rates.top,
    rss: rss.sort((a, b) => a - b)[Math.floor(rss.length / 2)] as number,
  };
}

// ---- the run --------------------------------------------------------------------------

const deadline = setTimeout(() => {
  console.error(`bench:sockets: gave up after --deadline-s ${values['deadline-s']} s`);
  killAll();
  process.exit(1);
}, Number(values['deadline-s']) * 1000);
deadline.unref();

const redisServer = await RedisServer.start();
let exitCode = 0;
try {
  const redis = redisServer.client();
  const node = await startNode(redisServer.url);
  const nodeLimit = openFilesLimit(node.pid);
  if (N + FD_HEADROOM > nodeLimit.soft)
    throw new Error(`the node's open-files limit is ${nodeLimit.soft}: too low for ${N} sockets`);
  const client = await auth.sign({ sub: 'bench', ws: WORKSPACE, role: 'client' }, '2h');
  const probe = await Probe.open(
    node.url,
    await auth.sign({ sub: 'probe', ws: WORKSPACE, role: 'daemon', rt: 'probe' }, '2h'),
  );
  for (let i = 0; i < 200; i++) await probe.once(node.url, client); // warm-up (JIT, pools)
  console.log(
    `1 node (pid ${node.pid}) + redis-server ${redisServer.url}; node ${process.version}; ` +
      `HEARTBEAT_INTERVAL_MS=${HEARTBEAT_MS}; ${N} sockets over ${RUNTIMES} runtimes`,
  );

  // Latency first, then the idle window: both RSS readings then follow dispatch work, so
  // their difference is the sockets' and not a heap warmed by sampling.
  const lat0 = stats(await probe.sample(node.url, client, LATENCY_MS));
  const idle0 = await idle(node.pid, redis);

  const tOpen = performance.now();
  const holders = await openHolders(node.url);
  const openSeconds = (performance.now() - tOpen) / 1000;
  const deadlineCount = Date.now() + 10_000;
  for (;;) {
    const seen = await nodeDaemonSockets(node.url);
    if (seen === N + 1) break;
    if (Date.now() > deadlineCount)
      throw new Error(`the node counts ${seen} daemon sockets, not ${N + 1}`);
    await sleep(50);
  }
  // Let the connect work (presence upserts, backlog drains) finish before the idle window.
  await sleep(HEARTBEAT_MS);
  const idleN = await idle(node.pid, redis);
  const latN = stats(await probe.sample(node.url, client, LATENCY_MS));
  const stillOpen = await nodeDaemonSockets(node.url);
  for (const h of holders) h.kill('SIGKILL');

  const perSocket = {
    rssBytes: Math.round((idleN.rss - idle0.rss) / N),
    cpuMsPerS: round((idleN.cpuMsPerS - idle0.cpuMsPerS) / N, 5),
    redisPerS: round((idleN.redisPerS - idle0.redisPerS) / N, 4),
  };
  const mib = (b: number) => `${(b / 1_048_576).toFixed(1)} MiB`;
  const lat = (l: ReturnType<typeof stats>) => `${l.p50} / ${l.p99} / ${l.max} ms (n=${l.n})`;
  console.log(
    `\nopened ${N} sockets in ${openSeconds.toFixed(1)} s; ${stillOpen - 1} still open after the run\n`,
  );
  console.log('| measure | 0 sockets | N sockets | per socket |');
  console.log('|---|---|---|---|');
  console.log(`| node RSS | ${mib(idle0.rss)} | ${mib(idleN.rss)} | ${perSocket.rssBytes} B |`);
  console.log(
    `| node CPU idle (ms/s) | ${idle0.cpuMsPerS} | ${idleN.cpuMsPerS} | ${perSocket.cpuMsPerS} |`,
  );
  console.log(
    `| Redis commands/s idle | ${idle0.redisPerS} | ${idleN.redisPerS} | ${perSocket.redisPerS} |`,
  );
  console.log(`| dispatch p50 / p99 / max | ${lat(lat0)} | ${lat(latN)} | |`);
  console.log(`\nRedis commands/s with N sockets, top: ${JSON.stringify(idleN.top)}\n`);
  console.log(
    JSON.stringify({
      bench: 'sockets',
      node: process.version,
      sockets: N,
      runtimes: RUNTIMES,
      heartbeat_interval_ms: HEARTBEAT_MS,
      idle_window_ms: IDLE_MS,
      latency_window_ms: LATENCY_MS,
      open_seconds: round(openSeconds, 2),
      rss_bytes: { none: idle0.rss, n: idleN.rss, per_socket: perSocket.rssBytes },
      cpu_ms_per_s: { none: idle0.cpuMsPerS, n: idleN.cpuMsPerS, per_socket: perSocket.cpuMsPerS },
      redis_cmds_per_s: {
        none: idle0.redisPerS,
        n: idleN.redisPerS,
        per_socket: perSocket.redisPerS,
      },
      redis_top_n: idleN.top,
      latency_ms: { none: lat0, n: latN },
    }),
  );
  probe.ws.close();
} catch (err) {
  console.error('bench:sockets failed:', err);
  exitCode = 1;
} finally {
  killAll();
  await redisServer.close();
  process.exit(exitCode);
}
