/**
 * The BullMQ producer of bench/vs-bullmq.ts, one process holding the Queue and the
 * QueueEvents: Queue.add (job options removeOnComplete: true, removeOnFail: true) on one
 * shared ioredis connection, as BullMQ's docs show for producers; QueueEvents gets the
 * same instance and, as documented, duplicates it for its blocking XREAD. A job is done
 * when QueueEvents emits 'completed' (or 'failed') for it; the returned data carries the
 * send time and a sequence number, which is how an event is matched to its waiting lane.
 * QueueEvents reads the events stream from its start (a fresh private Redis), so no
 * event is missed while it connects.
 * Driven over IPC: `pass {n, inFlight}` runs n jobs with inFlight lanes (PassResult).
 * Env: BENCH_REDIS_URL, BENCH_QUEUE.
 */
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { type Payload, runLanes, serve } from './vs-bullmq-common.js';

const redisUrl = process.env.BENCH_REDIS_URL;
const name = process.env.BENCH_QUEUE;
if (!redisUrl || !name) throw new Error('BENCH_REDIS_URL and BENCH_QUEUE are required');

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue<Payload, Payload>(name, { connection });
const events = new QueueEvents(name, { connection, lastEventId: '0' });
queue.on('error', (err) => console.error('bq-producer queue:', err));
events.on('error', (err) => console.error('bq-producer events:', err));

/** Lanes waiting for their job, by the data's sequence number (and by job id on failure). */
const waiting = new Map<number, (ok: boolean) => void>();
const byJobId = new Map<string, number>();
events.on('completed', ({ jobId, returnvalue }) => {
  const i = (returnvalue as unknown as Payload | null)?.i;
  const done = i === undefined ? undefined : waiting.get(i);
  byJobId.delete(jobId);
  if (done) {
    waiting.delete(i as number);
    done(true);
  }
});
events.on('failed', ({ jobId, failedReason }) => {
  console.error(`bq-producer: job ${jobId} failed: ${failedReason}`);
  const i = byJobId.get(jobId);
  const done = i === undefined ? undefined : waiting.get(i);
  if (done) {
    waiting.delete(i as number);
    done(false);
  }
});
await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

let seq = 0;
serve({
  pass: ({ n, inFlight }) =>
    runLanes(
      n as number,
      inFlight as number,
      () => ++seq,
      async (i, t) => {
        const done = new Promise<boolean>((resolve) => waiting.set(i, resolve));
        const job = await queue.add(
          'bench',
          { t, i },
          { removeOnComplete: true, removeOnFail: true },
        );
        // Only while it still waits: the event may have come before the add's answer.
        if (job.id !== undefined && waiting.has(i)) byJobId.set(job.id, i);
        return done;
      },
    ),
});
