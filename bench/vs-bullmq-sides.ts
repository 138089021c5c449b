/**
 * The processes of bench/vs-bullmq.ts, per side: Switchboard's three nodes (`node --import
 * tsx src/cli.ts serve`, so the working tree is measured), its daemon and its client;
 * BullMQ's worker and its producer (with QueueEvents). Each child is started with an IPC
 * channel (vs-bullmq-common.ts) except the nodes, which are reached over HTTP. Every
 * process started here is remembered, and `killAll` ends them by their PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Auth } from '../src/auth.js';
import { freePort } from '../test/helpers/redis.js';
import { untilReady } from './ready.js';
import { Rpc } from './vs-bullmq-common.js';
import type { Side } from './vs-bullmq-report.js';

const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const RUNTIME = 'vs';
const QUEUE = 'vs';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SideProcs {
  side: Side;
  /** The process that sends requests and waits for them (`pass`). */
  client: Rpc;
  /** The process whose handler runs them (`samples`). */
  handler: Rpc;
  /** PIDs of the process groups: system (nodes + daemon, resp. worker) and clients. */
  system: number[];
  clients: number[];
}

const started: ChildProcess[] = [];
export const killAll = (): void => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
};

/** Where --profile writes each process's CPU profile (node --cpu-prof), if it was given. */
let profileDir: string | undefined;
export function profileInto(dir: string): void {
  profileDir = dir;
}

/** Ends every process so that a profiled one writes its profile; SIGKILL after 10 s. */
export async function stopAll(): Promise<void> {
  const running = started.filter((c) => c.exitCode === null && c.signalCode === null);
  const exits = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  // A child on IPC exits by itself once disconnected (vs-bullmq-common.ts); the nodes on SIGTERM.
  for (const child of running) {
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  }
  await Promise.race([Promise.all(exits), sleep(10_000)]);
  killAll();
}

function spawnTs(script: string, args: string[], env: Record<string, string>, ipc: boolean) {
  // Node's own file names (pid and thread id in each): tsx's loader thread writes one too.
  const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', ipc ? 'inherit' : 'ignore', 'inherit', ...(ipc ? ['ipc' as const] : [])],
  });
  started.push(child);
  return child;
}

async function startNode(redisUrl: string, nodeId: string) {
  const port = await freePort();
  const child = spawnTs(
    'src/cli.ts',
    ['serve'],
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ID: nodeId,
      REDIS_URL: redisUrl,
      HUB_SECRET: SECRET,
      LOG_LEVEL: 'warn',
    },
    false,
  );
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, child, `node ${nodeId}`);
  return { url, pid: child.pid as number };
}

export async function startSwitchboard(redisUrl: string, inFlight: number): Promise<SideProcs> {
  const auth = new Auth(SECRET);
  const [a, b, c] = await Promise.all(
    ['vs-a', 'vs-b', 'vs-c'].map((id) => startNode(redisUrl, id)),
  );
  const daemonToken = await auth.sign({ sub: 'd', ws: 'bench', role: 'daemon', rt: RUNTIME }, '4h');
  const clientToken = await auth.sign({ sub: 'c', ws: 'bench', role: 'client' }, '4h');
  const daemon = new Rpc(
    'sb-daemon',
    spawnTs(
      'bench/vs-bullmq-sb-daemon.ts',
      ['--capacity', String(inFlight)],
      { BENCH_URL: b!.url, BENCH_TOKEN: daemonToken },
      true,
    ),
  );
  const client = new Rpc(
    'sb-client',
    spawnTs(
      'bench/vs-bullmq-sb-client.ts',
      ['--in-flight', String(inFlight)],
      {
        BENCH_CREATE_URL: a!.url,
        BENCH_WATCH_URL: c!.url,
        BENCH_TOKEN: clientToken,
        BENCH_RUNTIME: RUNTIME,
      },
      true,
    ),
  );
  await Promise.all([daemon.ready, client.ready]);
  return {
    side: 'switchboard',
    client,
    handler: daemon,
    system: [a!.pid, b!.pid, c!.pid, daemon.pid],
    clients: [client.pid],
  };
}

export async function startBullmq(redisUrl: string, inFlight: number): Promise<SideProcs> {
  const env = { BENCH_REDIS_URL: redisUrl, BENCH_QUEUE: QUEUE };
  const worker = new Rpc(
    'bq-worker',
    spawnTs('bench/vs-bullmq-bq-worker.ts', ['--concurrency', String(inFlight)], env, true),
  );
  const producer = new Rpc('bq-producer', spawnTs('bench/vs-bullmq-bq-producer.ts', [], env, true));
  await Promise.all([worker.ready, producer.ready]);
  return {
    side: 'bullmq',
    client: producer,
    handler: worker,
    system: [worker.pid],
    clients: [producer.pid],
  };
}
