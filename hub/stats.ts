/**
 * The workspace statistics behind GET /v1/stats: this node's share, accumulated in
 * memory and flushed to the store every FLUSH_MS (and at close) as additions to the
 * workspace-minute buckets every node adds to (stores/stats.ts); and the read that turns
 * the merged buckets of the last WINDOW_MINUTES into figures.
 *
 * The recorder is fed by the instrumented store, which sees every transition once:
 * creates (and retries), terminal transitions with the record (latency = finished_at -
 * created_at, for the completed and failed ones a daemon reported), timeouts from the
 * sweep (counted, no latency), and the pending count each sweep of a runtime returns
 * (a gauge: last sample wins). Recording is a map lookup and an addition; the flush is
 * one MULTI per active workspace per FLUSH_MS.
 */
import type { Logger } from 'pino';
import type { WorkspaceStats } from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import {
  LATENCY_BUCKETS,
  LATENCY_FIELD_PREFIX,
  latencyBucket,
  latencyBucketBound,
  minuteOf,
  PENDING_FIELD_PREFIX,
  STATS_MINUTE_MS,
  type StatsBucket,
  type StatsWrite,
} from '../stores/stats.js';
import type { RequestStore } from '../stores/store.js';

export const FLUSH_MS = 1_000;
const TERMINAL_COUNTS = new Set<string>(['completed', 'failed', 'timeout', 'cancelled']);
export const WINDOW_MINUTES = 15;
/** Runtimes the pending chart shows at most: the most pending over the window. */
export const TOP_RUNTIMES = 10;

/** What the instrumented store tells the recorder. */
export interface StatsSink {
  created(workspace: string, n: number): void;
  finished(record: RequestRecord): void;
  timedOut(workspace: string, n: number): void;
  pending(rt: RuntimeRef, n: number): void;
}

export interface StatsRecorderOptions {
  store: RequestStore;
  logger: Logger;
  /** Epoch ms; Date.now() unless a test steps time. */
  clock?: () => number;
  flushMs?: number;
}

interface Pending {
  counts: Record<string, number>;
  gauges: Record<string, number>;
}

export class StatsRecorder implements StatsSink {
  /** `workspace \n minute` -> what this node has not flushed yet. */
  #pending = new Map<string, Pending & { workspace: string; minute: number }>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  readonly #now: () => number;

  constructor(private readonly opts: StatsRecorderOptions) {
    this.#now = opts.clock ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush(), this.opts.flushMs ?? FLUSH_MS);
    this.#timer.unref();
  }

  /** Stops the timer and flushes what is left. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.flush();
  }

  #bucket(workspace: string): Pending {
    const minute = minuteOf(this.#now());
    const key = `${workspace}\n${minute}`;
    let b = this.#pending.get(key);
    if (!b) {
      b = { workspace, minute, counts: {}, gauges: {} };
      this.#pending.set(key, b);
    }
    return b;
  }

  #add(workspace: string, field: string, n: number): void {
    const { counts } = this.#bucket(workspace);
    counts[field] = (counts[field] ?? 0) + n;
  }

  created(workspace: string, n: number): void {
    this.#add(workspace, 'created', n);
  }

  finished(record: RequestRecord): void {
    const status = record.status;
    if (!TERMINAL_COUNTS.has(status)) return;
    this.#add(record.workspace, status, 1);
    if ((status === 'completed' || status === 'failed') && record.finished_at !== null) {
      const bucket = latencyBucket(record.finished_at - record.created_at);
      this.#add(record.workspace, `${LATENCY_FIELD_PREFIX}${bucket}`, 1);
    }
  }

  timedOut(workspace: string, n: number): void {
    this.#add(workspace, 'timeout', n);
  }

  pending(rt: RuntimeRef, n: number): void {
    this.#bucket(rt.workspace).gauges[`${PENDING_FIELD_PREFIX}${rt.runtime}`] = n;
  }

  /** Writes what accumulated; overlapping calls share the write under way. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#pending.size === 0) return Promise.resolve();
    const writes: StatsWrite[] = [...this.#pending.values()];
    this.#pending = new Map();
    this.#flushing = this.opts.store
      .recordStats(writes)
      .catch((err) => {
        // Best effort: figures lost with the store are not worth an unbounded backlog.
        this.opts.logger.warn({ err, buckets: writes.length }, 'stats flush failed; dropped');
      })
      .finally(() => {
        this.#flushing = null;
      });
    return this.#flushing;
  }

  /** The workspace's last WINDOW_MINUTES minutes, merged across nodes. */
  async read(workspace: string): Promise<WorkspaceStats> {
    const now = this.#now();
    const last = minuteOf(now);
    const minutes: number[] = [];
    for (let i = WINDOW_MINUTES - 1; i >= 0; i--) minutes.push(last - i * STATS_MINUTE_MS);
    const buckets = await this.opts.store.readStats(workspace, minutes);
    return summarise(buckets, minutes, now);
  }
}

/** Buckets of `minutes` (same order) as GET /v1/stats answers them. */
export function summarise(buckets: StatsBucket[], minutes: number[], now: number): WorkspaceStats {
  const pendingSeries = new Map<string, (number | null)[]>();
  const rows = buckets.map((b, i) => {
    const histogram = new Array<number>(LATENCY_BUCKETS).fill(0);
    for (const [field, n] of Object.entries(b)) {
      if (field.startsWith(PENDING_FIELD_PREFIX)) {
        const runtime = field.slice(PENDING_FIELD_PREFIX.length);
        let series = pendingSeries.get(runtime);
        if (!series) {
          series = new Array<number | null>(minutes.length).fill(null);
          pendingSeries.set(runtime, series);
        }
        series[i] = n;
      } else if (field.startsWith(LATENCY_FIELD_PREFIX)) {
        const at = Number(field.slice(LATENCY_FIELD_PREFIX.length));
        if (Number.isInteger(at) && at >= 0 && at < LATENCY_BUCKETS) histogram[at] = n;
      }
    }
    return {
      t: new Date(minutes[i] as number).toISOString(),
      created: b.created ?? 0,
      completed: b.completed ?? 0,
      failed: b.failed ?? 0,
      timeout: b.timeout ?? 0,
      cancelled: b.cancelled ?? 0,
      p50_ms: percentile(histogram, 0.5),
      p99_ms: percentile(histogram, 0.99),
    };
  });
  const peak = (s: (number | null)[]) => Math.max(0, ...s.map((v) => v ?? 0));
  const top = [...pendingSeries.entries()]
    .sort(([a, sa], [b, sb]) => peak(sb) - peak(sa) || a.localeCompare(b))
    .slice(0, TOP_RUNTIMES);
  return { now: new Date(now).toISOString(), minutes: rows, pending: Object.fromEntries(top) };
}

/**
 * The `q` quantile of a histogram: the upper bound of the bucket holding the rank,
 * rounded to 0.1 ms; null when it is empty.
 */
export function percentile(histogram: number[], q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] as number;
    if (seen >= rank) return Math.round(latencyBucketBound(i) * 10) / 10;
  }
  return null;
}
