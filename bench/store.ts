/**
 * Store benchmark: creates/s, claims/s with 20 concurrent claimers, and what one
 * request's whole life (create, claim, complete, read) costs in Redis commands, from
 * Redis's own INFO commandstats. Runs MemoryStore and RedisStore (a private
 * redis-server started here). Usage: npm run bench:store [-- --n 20000]
 */
import { parseArgs } from 'node:util';
import type { RuntimeRef } from '../stores/domain.js';
import { MemoryStore } from '../stores/memory/store.js';
import { RedisStore } from '../stores/redis/store.js';
import type { RequestStore } from '../stores/store.js';
import { RedisServer, uniquePrefix } from '../test/helpers/redis.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' } } });
const N = Number(values.n);
const CLAIMERS = 20;
const CONCURRENCY = 32;
const RT: RuntimeRef = { workspace: 'bench', runtime: 'rt' };

async function pool(total: number, concurrency: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++);
    }),
  );
}

async function measure(label: string, stores: RequestStore[]) {
  const [main] = stores as [RequestStore];
  let t = performance.now();
  await pool(N, CONCURRENCY, async (i) => {
    await main.create(RT, { kind: 'bench', payload: { i } }, { createdBy: 'bench' });
  });
  const createRate = N / ((performance.now() - t) / 1000);

  t = performance.now();
  let claimed = 0;
  await Promise.all(
    stores.map(async (s, i) => {
      for (;;) {
        const got = await s.claim(RT, { connectionId: `c${i}`, nodeId: `n${i}`, max: 1 });
        if (got.length === 0) return;
        claimed += got.length;
      }
    }),
  );
  const claimRate = claimed / ((performance.now() - t) / 1000);
  if (claimed !== N) throw new Error(`claimed ${claimed} of ${N}`);
  console.log(
    `${label.padEnd(6)} creates/s ${createRate.toFixed(0).padStart(8)}   claims/s (${stores.length} claimers) ${claimRate.toFixed(0).padStart(8)}`,
  );
}

async function lifeCost(server: RedisServer) {
  const store = await RedisStore.connect({ url: server.url }, { prefix: uniquePrefix() });
  const admin = server.client();
  const lives = 1000;
  // Warm up (script load, sweep-bucket touch), then count only steady-state lives.
  await life(store);
  await admin.config('RESETSTAT');
  for (let i = 0; i < lives; i++) await life(store);
  const stats = parseCommandStats(await admin.info('commandstats'));
  const sent = (stats.evalsha ?? 0) + (stats.zadd_client ?? 0);
  const total = Object.entries(stats)
    .filter(([k]) => !k.endsWith('_client') && k !== 'info' && k !== 'config')
    .reduce((n, [, v]) => n + v, 0);
  const top = Object.entries(stats)
    .filter(([k]) => !k.endsWith('_client') && k !== 'info' && k !== 'config' && k !== 'evalsha')
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v / lives).toFixed(1)}`)
    .join(', ');
  console.log(
    `redis  one request's life (create, claim, complete, read): ${(sent / lives).toFixed(1)} round trips, ` +
      `${(total / lives).toFixed(1)} commands counted by Redis incl. inside scripts`,
  );
  console.log(`       per life: ${top}`);
  await store.close();
}

async function life(store: RequestStore) {
  const { request } = await store.create(
    RT,
    { kind: 'life', payload: { x: 1 } },
    { createdBy: 'b' },
  );
  const [c] = await store.claim(RT, { connectionId: 'c', nodeId: 'n', max: 1 });
  if (!c || c.id !== request.id) throw new Error('claim did not return the created request');
  await store.report(RT, c.id, c.epoch, { status: 'completed', result: { ok: true } });
  await store.get(RT, c.id);
}

function parseCommandStats(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    out[m[1] as string] = Number(m[2]);
  }
  // Commands sent by the client itself (not from inside a script): only EVALSHA and the
  // sweep-bucket ZADD can be, and the ZADD is cached after the first create.
  out.zadd_client = 0;
  return out;
}

const memory = new MemoryStore({ prefix: 'bench' });
await measure('memory', Array(CLAIMERS).fill(memory));

const server = await RedisServer.start();
try {
  const settings = { prefix: uniquePrefix() };
  const stores = await Promise.all(
    Array.from({ length: CLAIMERS }, () => RedisStore.connect({ url: server.url }, settings)),
  );
  await measure('redis', stores);
  await Promise.all(stores.map((s) => s.close()));
  await lifeCost(server);
} finally {
  await server.close();
}
