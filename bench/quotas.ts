/**
 * Quota benchmark (issue 13), three node processes on one redis-server:
 *  1. isolation: workspace `quiet` creates at --quiet-rate/s (round robin over the
 *     nodes, from this process) while workspace `loud`, limited by
 *     CREATE_RATE_PER_WORKSPACE=50/50, is driven at --loud-rate/s from a process of its
 *     own (so its HTTP client does not share the event loop that times `quiet`); the
 *     same with `loud` silent, alternating (A B A B) for --rounds rounds of --seconds each. Reported:
 *     quiet's create p50/p99 in both, their ratio, and loud's accepted count against its
 *     due (burst + rate x seconds).
 *  2. sizing: Redis used_memory per pending request (--pending requests of a ~100-byte
 *     payload created in batches of 500, in a fresh prefix) and per stored 1 KB output
 *     chunk (--chunks chunks of one running request), for docs/OPERATIONS.md.
 * Usage: npm run bench:quotas [-- --rounds 4 --seconds 5 --loud-rate 500 --quiet-rate 50]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Auth } from '../src/auth.js';
import { RedisStore } from '../stores/redis/store.js';
import { RedisServer } from '../test/helpers/redis.js';
import { startBenchNode } from './ready.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
    'loud-rate': { type: 'string', default: '500' },
    'quiet-rate': { type: 'string', default: '50' },
    pending: { type: 'string', default: '20000' },
    chunks: { type: 'string', default: '5000' },
    // Internal: run as the loud driver (a child process of the bench).
    drive: { type: 'string' },
  },
});
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const auth = new Auth(SECRET);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );

async function create(url: string, token: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/runtimes/laptop/requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'job', payload: { n: 1 } }),
  });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

/** Creates at `rate`/s for `seconds`, 10 ms ticks, round robin over `urls`, not awaiting. */
async function drive(urls: string[], token: string, rate: number, seconds: number) {
  const answers: Promise<{ status: number; ms: number }>[] = [];
  const tickMs = 10;
  const started = Date.now();
  let due = 0;
  for (let tick = 0; tick < (seconds * 1000) / tickMs; tick++) {
    due += (rate * tickMs) / 1000;
    for (; due >= 1; due--)
      answers.push(create(urls[answers.length % urls.length] as string, token));
    await sleep(Math.max(0, started + (tick + 1) * tickMs - Date.now()));
  }
  const span = (Date.now() - started) / 1000;
  return { answers: await Promise.all(answers), span };
}

/** The loud workspace's driver, in its own process: prints its counts as JSON. */
function driveLoud(urls: string[], token: string, rate: number, seconds: number) {
  return new Promise<{ accepted: number; refused: number; span: number }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--drive',
        JSON.stringify({ urls, token, rate, seconds }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`driver exit ${code}`)),
    );
  });
}

/** One round: quiet at its rate, loud at its rate (or not at all), for `seconds`. */
async function round(
  urls: string[],
  loud: boolean,
  seconds: number,
  loudRate: number,
  quietRate: number,
) {
  const quietToken = await auth.sign({ sub: 'q', ws: `quiet-${Date.now()}`, role: 'client' }, '1h');
  const loudToken = await auth.sign({ sub: 'l', ws: `loud-${Date.now()}`, role: 'client' }, '1h');
  const [q, l] = await Promise.all([
    drive(urls, quietToken, quietRate, seconds),
    loud ? driveLoud(urls, loudToken, loudRate, seconds) : Promise.resolve(null),
  ]);
  const lat = q.answers.map((a) => a.ms).sort((a, b) => a - b);
  return {
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    quietFailed: q.answers.filter((a) => a.status !== 201).length,
    loudAccepted: l?.accepted ?? 0,
    loudRefused: l?.refused ?? 0,
    loudDue: 50 + 50 * (l?.span ?? 0),
  };
}

async function sizing(redisUrl: string, pending: number, chunks: number) {
  const redis = new Redis(redisUrl);
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
  const store = await RedisStore.connect({ url: redisUrl }, { prefix: `size${Date.now()}` });
  const rt = { workspace: 'size', runtime: 'laptop' };
  const body = { kind: 'job.run', payload: { text: 'x'.repeat(80), n: 1 } };
  const before = await used();
  for (let i = 0; i < pending; i += 500) {
    await store.createBatch(
      rt,
      Array.from({ length: Math.min(500, pending - i) }, () => body),
      {
        createdBy: 'bench',
      },
    );
  }
  const perRequest = ((await used()) - before) / pending;
  const rt2 = { workspace: 'size', runtime: 'desktop' };
  await store.create(rt2, { kind: 'job.run', payload: null }, { createdBy: 'bench' });
  const [running] = await store.claim(rt2, { connectionId: 'c', nodeId: 'n', max: 1 });
  const chunk = JSON.stringify('y'.repeat(1000));
  const mid = await used();
  for (let seq = 1; seq <= chunks; seq += 100) {
    const writes = Array.from({ length: Math.min(100, chunks - seq + 1) }, (_, k) => ({
      seq: seq + k,
      data: chunk,
    }));
    await store.appendOutput(rt2, running?.id as string, running?.epoch as number, writes);
  }
  const perChunk = ((await used()) - mid) / chunks;
  await store.close();
  redis.disconnect();
  return { perRequest, perChunk };
}

async function main() {
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const loudRate = Number(values['loud-rate']);
  const quietRate = Number(values['quiet-rate']);
  const server = await RedisServer.start();
  const children: ChildProcess[] = [];
  try {
    const urls: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      const n = await startBenchNode(server.url, `node-${id}`, SECRET, {
        env: { CREATE_RATE_PER_WORKSPACE: '50/50', MAX_PENDING_PER_RUNTIME: '1000000' },
      });
      children.push(n.child);
      urls.push(n.url);
    }
    await round(urls, false, 1, loudRate, quietRate); // warm-up
    const results: { loud: boolean; r: Awaited<ReturnType<typeof round>> }[] = [];
    for (let i = 0; i < rounds * 2; i++) {
      const loud = i % 2 === 1;
      const r = await round(urls, loud, seconds, loudRate, quietRate);
      results.push({ loud, r });
      console.log(
        `round ${i + 1} ${loud ? 'loud ' : 'quiet'}: quiet p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms` +
          (loud
            ? `; loud accepted ${r.loudAccepted} (due ${r.loudDue.toFixed(0)}), refused ${r.loudRefused}`
            : '') +
          (r.quietFailed ? `; quiet failed ${r.quietFailed}` : ''),
      );
    }
    const of = (loud: boolean, k: 'p50' | 'p99') =>
      median(results.filter((x) => x.loud === loud).map((x) => x.r[k]));
    console.log(
      `\nquiet workspace's create latency, medians of ${rounds} rounds: ` +
        `alone p50 ${of(false, 'p50').toFixed(2)} p99 ${of(false, 'p99').toFixed(2)} ms; ` +
        `beside a limited workspace at ${loudRate}/s p50 ${of(true, 'p50').toFixed(2)} p99 ${of(true, 'p99').toFixed(2)} ms; ` +
        `p99 ratio ${(of(true, 'p99') / of(false, 'p99')).toFixed(2)}x`,
    );
    const s = await sizing(server.url, Number(values.pending), Number(values.chunks));
    console.log(
      `Redis memory: ${s.perRequest.toFixed(0)} B per pending request (~100-byte payload), ` +
        `${s.perChunk.toFixed(0)} B per stored 1 KB output chunk`,
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await server.close();
  }
}

if (values.drive) {
  const { urls, token, rate, seconds } = JSON.parse(values.drive);
  const { answers, span } = await drive(urls, token, rate, seconds);
  const accepted = answers.filter((a) => a.status === 201).length;
  const refused = answers.filter((a) => a.status === 429).length;
  process.stdout.write(JSON.stringify({ accepted, refused, span }));
} else {
  await main();
}
