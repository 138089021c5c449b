/**
 * The store contract, part four: workspace stats buckets (stores/stats.ts, GET /v1/stats).
 * Counts flushed by two nodes add up, gauges take the last write, buckets of another
 * workspace or minute stay apart, every bucket written carries its TTL, and the 15
 * minutes a node reads are the 15 it asked for. Run by memory.test.ts and redis.test.ts
 * on every backend, with the harness of contract.ts.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StatsRecorder, WINDOW_MINUTES } from '../../hub/stats.js';
import type { RequestRecord } from '../../stores/domain.js';
import { latencyBucket, minuteOf, STATS_MINUTE_MS, STATS_TTL_MS } from '../../stores/stats.js';
import type { RequestStore } from '../../stores/store.js';
import { Clock, type StoreHarness } from './contract.js';

export interface StatsHarness extends StoreHarness {
  /**
   * The backend's own view of a bucket's expiry: the key's PTTL as Redis answers it (-2
   * no such key, -1 no TTL). Absent for the memory store, whose buckets expire on its
   * clock (checked by stepping it instead).
   */
  statsKeyTtl?(store: RequestStore, workspace: string, minute: number): Promise<number>;
}

const WS = 'acme';
const log = pino({ level: 'silent' });

function finished(status: 'completed' | 'failed', latencyMs: number, at: number): RequestRecord {
  return {
    id: '01J00000000000000000000000',
    workspace: WS,
    runtime: 'laptop',
    kind: 'job.run',
    payload: '{}',
    status,
    priority: 0,
    attempt: 1,
    max_attempts: 1,
    epoch: 1,
    created_at: at - latencyMs,
    claimed_at: at - latencyMs,
    finished_at: at,
    pending_deadline: null,
    lease_expires_at: null,
    lease_ms: 30_000,
    pending_timeout_ms: 60_000,
    result: status === 'completed' ? '{}' : null,
    error: status === 'failed' ? { code: 'x', message: 'x' } : null,
    created_by: 'user-1',
    connection_id: null,
    node_id: null,
    retry_of: null,
    ordering_key: null,
    trace: null,
  };
}

export function storeStatsContract(h: StatsHarness): void {
  describe('stats buckets', () => {
    const open = async () => {
      const clock = new Clock(minuteOf(1_800_000_000_000) + 5_000);
      const store = await h.open({ clock: clock.now });
      const peer = await h.peer(store);
      return { clock, store, peer };
    };

    it('adds counts from two nodes, takes the last gauge, and keeps minutes and workspaces apart', async () => {
      const { clock, store, peer } = await open();
      const m = minuteOf(clock.t);
      await store.recordStats([
        { workspace: WS, minute: m, counts: { created: 3, l10: 2 }, gauges: { 'p:laptop': 7 } },
        { workspace: 'other', minute: m, counts: { created: 100 }, gauges: {} },
      ]);
      await peer.recordStats([
        { workspace: WS, minute: m, counts: { created: 2, completed: 4, l10: 1 }, gauges: {} },
        { workspace: WS, minute: m + STATS_MINUTE_MS, counts: { created: 1 }, gauges: {} },
      ]);
      await peer.recordStats([
        { workspace: WS, minute: m, counts: {}, gauges: { 'p:laptop': 5, 'p:desk': 0 } },
      ]);
      const [before, now, next] = await store.readStats(WS, [
        m - STATS_MINUTE_MS,
        m,
        m + STATS_MINUTE_MS,
      ]);
      expect(before).toEqual({});
      expect(now).toEqual({ created: 5, completed: 4, l10: 3, 'p:laptop': 5, 'p:desk': 0 });
      expect(next).toEqual({ created: 1 });
      expect(await peer.readStats('other', [m])).toEqual([{ created: 100 }]);
      expect(await store.readStats(WS, [])).toEqual([]);
    });

    it('gives every bucket it writes a TTL of STATS_TTL_MS', async () => {
      const { clock, store } = await open();
      const m = minuteOf(clock.t);
      await store.recordStats([{ workspace: WS, minute: m, counts: { created: 1 }, gauges: {} }]);
      if (h.statsKeyTtl) {
        const ttl = await h.statsKeyTtl(store, WS, m);
        expect(ttl).toBeGreaterThan(STATS_TTL_MS - 60_000);
        expect(ttl).toBeLessThanOrEqual(STATS_TTL_MS);
      } else {
        clock.advance(STATS_TTL_MS - 1);
        expect(await store.readStats(WS, [m])).toEqual([{ created: 1 }]);
        clock.advance(1);
        expect(await store.readStats(WS, [m])).toEqual([{}]);
      }
    });

    it('reads the last 15 minutes merged from two nodes recorders, with percentiles from the merged histogram', async () => {
      const { clock, store, peer } = await open();
      const a = new StatsRecorder({ store, logger: log, clock: clock.now });
      const b = new StatsRecorder({ store: peer, logger: log, clock: clock.now });
      const first = minuteOf(clock.t);
      // A minute that falls out of the window by the time it is read.
      a.created(WS, 9);
      await a.flush();
      clock.advance(STATS_MINUTE_MS);
      // Node a: 98 fast ones; node b: 2 slow ones and a failure. p50 is fast; p99 slow.
      a.created(WS, 98);
      for (let i = 0; i < 98; i++) a.finished(finished('completed', 20, clock.t));
      b.created(WS, 3);
      b.finished(finished('completed', 5_000, clock.t));
      b.finished(finished('failed', 5_000, clock.t));
      b.timedOut(WS, 1);
      b.pending({ workspace: WS, runtime: 'laptop' }, 4);
      a.pending({ workspace: WS, runtime: 'laptop' }, 6);
      await Promise.all([a.flush(), b.flush()]);
      // 14 more minutes: the first one leaves the window, the busy one is the oldest.
      clock.advance((WINDOW_MINUTES - 1) * STATS_MINUTE_MS);
      const stats = await a.read(WS);
      expect(stats.minutes).toHaveLength(WINDOW_MINUTES);
      const busy = stats.minutes[0]!;
      expect(Date.parse(busy.t)).toBe(first + STATS_MINUTE_MS);
      expect(Date.parse(stats.minutes.at(-1)!.t)).toBe(minuteOf(clock.t));
      expect(busy).toMatchObject({ created: 101, completed: 99, failed: 1, timeout: 1 });
      expect(latencyBucket(busy.p50_ms!)).toBe(latencyBucket(20));
      expect(latencyBucket(busy.p99_ms!)).toBe(latencyBucket(5_000));
      expect(stats.minutes.slice(1).every((m) => m.created === 0 && m.p50_ms === null)).toBe(true);
      // Both sampled the gauge in the same minute: one of the two, whichever wrote last.
      expect([4, 6]).toContain(stats.pending.laptop?.[0]);
      expect(stats.pending.laptop?.slice(1)).toEqual(new Array(WINDOW_MINUTES - 1).fill(null));
    });
  });
}
