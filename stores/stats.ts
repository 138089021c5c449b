/**
 * Workspace statistics as the store keeps them (GET /v1/stats): one small bucket per
 * workspace per minute, shared by every node. A bucket is a flat map of numbers:
 *
 *   created, completed, failed, timeout, cancelled   counters (each node adds its own)
 *   l<i>                                             latency histogram: how many requests
 *                                                    finished in log bucket i (below)
 *   p:<runtime>                                      gauge: the runtime's pending count as
 *                                                    last sampled by any node
 *
 * Counters are added (Redis HINCRBY), gauges set (HSET, last write wins), so buckets
 * flushed by several nodes merge by themselves, and so do their histograms: percentiles
 * come from the merged bucket counts. A bucket lives STATS_TTL_MS after its last write.
 */

/** One node's additions to one workspace-minute bucket. */
export interface StatsWrite {
  workspace: string;
  /** Start of the minute, epoch ms (a multiple of STATS_MINUTE_MS). */
  minute: number;
  /** Added to the bucket's fields. */
  counts: Record<string, number>;
  /** Set in the bucket, replacing what was there. */
  gauges: Record<string, number>;
}

/** A bucket as read back: every field it holds ({} when it was never written or expired). */
export type StatsBucket = Record<string, number>;

export const STATS_MINUTE_MS = 60_000;
/** Buckets outlive the 15 minutes GET /v1/stats shows by a margin. */
export const STATS_TTL_MS = 20 * STATS_MINUTE_MS;

export const COUNT_FIELDS = ['created', 'completed', 'failed', 'timeout', 'cancelled'] as const;
export type CountField = (typeof COUNT_FIELDS)[number];

export const LATENCY_FIELD_PREFIX = 'l';
export const PENDING_FIELD_PREFIX = 'p:';

/**
 * Latency buckets: bucket i holds latencies in (GROWTH^(i-1), GROWTH^i] ms, bucket 0
 * everything up to 1 ms, the last everything above. GROWTH 2^(1/4): a percentile read
 * from the buckets is within 19% of the true one; 1 ms to ~4.6 days in 110 buckets.
 */
export const LATENCY_GROWTH = 2 ** 0.25;
export const LATENCY_BUCKETS = 110;

/** The bucket a latency in ms falls into. */
export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0;
  const i = Math.ceil(Math.log(ms) / Math.log(LATENCY_GROWTH) - 1e-9);
  return Math.min(i, LATENCY_BUCKETS - 1);
}

/** The upper bound of bucket i in ms (what a percentile falling in it reports). */
export function latencyBucketBound(i: number): number {
  return LATENCY_GROWTH ** i;
}

export function minuteOf(ms: number): number {
  return ms - (ms % STATS_MINUTE_MS);
}
