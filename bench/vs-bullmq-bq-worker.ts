/**
 * The BullMQ worker of bench/vs-bullmq.ts: one Worker, concurrency 64 (--concurrency),
 * on one ioredis connection made for it (`maxRetriesPerRequest: null`, as BullMQ's docs
 * require for workers; the Worker duplicates it for its blocking connection). The
 * processor returns the job's data at once and notes the dispatch time (processor start
 * on the machine's monotonic clock minus the send time in the data). Driven over IPC:
 * `samples` answers and clears the dispatch times seen so far.
 * Env: BENCH_REDIS_URL, BENCH_QUEUE.
 */

import { parseArgs } from 'node:util';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { monoMs, type Payload, type Samples, serve } from './vs-bullmq-common.js';

const { values } = parseArgs({ options: { concurrency: { type: 'string', default: '64' } } });
const redisUrl = process.env.BENCH_REDIS_URL;
const queue = process.env.BENCH_QUEUE;
if (!redisUrl || !queue) throw new Error('BENCH_REDIS_URL and BENCH_QUEUE are required');

let dispatch: number[] = [];
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker<Payload, Payload>(
  queue,
  async (job) => {
    dispatch.push(monoMs() - job.data.t);
    return job.data;
  },
  { connection, concurrency: Number(values.concurrency) },
);
worker.on('error', (err) => console.error('bq-worker:', err));
await worker.waitUntilReady();

serve({
  samples: (): Samples => {
    const out = dispatch;
    dispatch = [];
    return { dispatch: out };
  },
});
