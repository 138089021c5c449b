/**
 * What the instrumented store tells the stats recorder (hub/instrumented-store.ts ->
 * hub/stats.ts): every new request once (create, batch, retry; not a replay, not a
 * release back to pending), every terminal transition with its record, the sweep's
 * timeouts and the pending count it finds; and how the recorder turns buckets into
 * figures (latency buckets, percentiles, the top runtimes by pending).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { InstrumentedStore } from '../../hub/instrumented-store.js';
import {
  percentile,
  StatsRecorder,
  type StatsSink,
  summarise,
  TOP_RUNTIMES,
  WINDOW_MINUTES,
} from '../../hub/stats.js';
import type { RequestRecord, RuntimeRef } from '../../stores/domain.js';
import { MemoryStore } from '../../stores/memory/store.js';
import {
  LATENCY_BUCKETS,
  latencyBucket,
  latencyBucketBound,
  minuteOf,
  STATS_MINUTE_MS,
} from '../../stores/stats.js';
import { Clock } from '../stores/contract.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };

function recordingSink() {
  const seen: string[] = [];
  const sink: StatsSink = {
    created: (ws, n) => seen.push(`created ${ws} ${n}`),
    finished: (r: RequestRecord) => seen.push(`${r.status} ${r.finished_at! - r.created_at}`),
    timedOut: (ws, n) => seen.push(`timeout ${ws} ${n}`),
    pending: (rt, n) => seen.push(`pending ${rt.runtime} ${n}`),
  };
  return { seen, sink };
}

describe('the instrumented store feeds the stats sink', () => {
  it('once per new request, per terminal transition with its latency, and per sweep', async () => {
    const clock = new Clock();
    const memory = new MemoryStore({ clock: clock.now, pendingTimeoutMs: 60_000 });
    const { seen, sink } = recordingSink();
    const store = new InstrumentedStore(memory, { transition() {}, unavailable() {} }, sink);
    const by = { createdBy: 'u' };
    const conn = { connectionId: 'c1', nodeId: 'n1', max: 1 };

    const one = await store.create(RT, { kind: 'a' }, { ...by, idempotencyKey: 'k' });
    await store.create(RT, { kind: 'a' }, { ...by, idempotencyKey: 'k' }); // replay
    await store.createBatch(RT, [{ kind: 'b' }, { kind: 'c' }], by);
    expect(seen.splice(0)).toEqual(['created acme 1', 'created acme 2']);

    const [claimed] = await store.claim(RT, conn);
    await store.release(RT, claimed!.id, claimed!.epoch); // back to pending: not new
    const [again] = await store.claim(RT, conn);
    clock.advance(250);
    await store.report(RT, again!.id, again!.epoch, { status: 'completed', result: '1' });
    expect(again!.id).toBe(one.request.id);
    expect(seen.splice(0)).toEqual(['completed 250']);

    const [second] = await store.claim(RT, conn);
    clock.advance(50);
    await store.reportAndClaim(RT, second!.id, second!.epoch, {
      status: 'failed',
      error: { code: 'x', message: 'x' },
    });
    expect(seen.splice(0)).toEqual(['failed 300']);
    await store.retry(RT, second!.id, by);
    expect(seen.splice(0)).toEqual(['created acme 1']);

    // Two pending left (c and the retry): the sweep samples them, then times them out.
    await store.expire(RT);
    expect(seen.splice(0)).toEqual(['pending laptop 2']);
    clock.advance(60_000);
    await store.expire(RT);
    expect(seen.splice(0)).toEqual(['timeout acme 2', 'pending laptop 0']);

    const live = await store.create(RT, { kind: 'd' }, by);
    clock.advance(10);
    await store.cancel(RT, live.request.id);
    expect(seen.splice(0)).toEqual(['created acme 1', 'cancelled 10']);
  });

  it('a recorder flushes into the minute the figures were recorded in', async () => {
    const clock = new Clock(minuteOf(1_800_000_000_000) + 59_000);
    const memory = new MemoryStore({ clock: clock.now });
    const stats = new StatsRecorder({
      store: memory,
      logger: pino({ level: 'silent' }),
      clock: clock.now,
    });
    stats.created('acme', 2);
    clock.advance(2_000); // the next minute, before any flush
    stats.created('acme', 5);
    await stats.flush();
    const { minutes } = await stats.read('acme');
    expect(minutes.slice(-2).map((m) => m.created)).toEqual([2, 5]);
  });
});

describe('stats figures', () => {
  it('puts latencies in log buckets whose bound is at or above them, within 19%', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(1)).toBe(0);
    expect(latencyBucket(-5)).toBe(0);
    expect(latencyBucket(Number.NaN)).toBe(0);
    for (const ms of [1.01, 2, 7, 20, 99, 1000, 12_345, 3_600_000]) {
      const i = latencyBucket(ms);
      expect(latencyBucketBound(i)).toBeGreaterThanOrEqual(ms * (1 - 1e-9));
      expect(latencyBucketBound(i - 1)).toBeLessThan(ms);
      expect(latencyBucketBound(i) / ms).toBeLessThan(1.19);
    }
    expect(latencyBucket(1e15)).toBe(LATENCY_BUCKETS - 1);
  });

  it('reads percentiles from merged bucket counts', () => {
    const h = new Array(LATENCY_BUCKETS).fill(0);
    expect(percentile(h, 0.5)).toBeNull();
    h[latencyBucket(10)] = 98;
    h[latencyBucket(900)] = 2;
    expect(percentile(h, 0.5)).toBe(Math.round(latencyBucketBound(latencyBucket(10)) * 10) / 10);
    expect(percentile(h, 0.98)).toBe(percentile(h, 0.5));
    expect(percentile(h, 0.99)).toBe(Math.round(latencyBucketBound(latencyBucket(900)) * 10) / 10);
  });

  it('keeps the TOP_RUNTIMES runtimes with the most pending over the window', () => {
    const minutes = Array.from({ length: WINDOW_MINUTES }, (_, i) => i * STATS_MINUTE_MS);
    const buckets = minutes.map(() => ({}) as Record<string, number>);
    for (let r = 0; r < 25; r++)
      (buckets[r % WINDOW_MINUTES] as Record<string, number>)[`p:rt${r}`] = r;
    const { pending, minutes: rows } = summarise(buckets, minutes, minutes.at(-1)!);
    expect(Object.keys(pending).sort()).toEqual(
      Array.from({ length: TOP_RUNTIMES }, (_, i) => `rt${24 - i}`).sort(),
    );
    expect(pending.rt24?.[24 % WINDOW_MINUTES]).toBe(24);
    expect(pending.rt24?.filter((v) => v === null)).toHaveLength(WINDOW_MINUTES - 1);
    expect(rows.every((m) => m.created === 0 && m.p99_ms === null)).toBe(true);
  });
});
