/**
 * The create-rate token bucket (CREATE_RATE_PER_WORKSPACE), one per workspace. The
 * memory store keeps buckets in process; the Redis store runs the same arithmetic in
 * lua/rate.lua on one key per workspace, so the limit holds across nodes.
 *
 * A bucket holds up to `burst` tokens and gains `rate` per second. A create of n
 * requests passes when the bucket holds min(n, burst) tokens and takes n: a batch larger
 * than the burst is let through from a full bucket and leaves it in debt, so the long-
 * run rate never passes `rate` and no batch size is refused for ever.
 */
export interface CreateRate {
  /** Tokens (requests) per second. */
  rate: number;
  /** Most tokens held; a burst of this many passes at once. */
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (epoch ms). */
  at: number;
}

/** The tokens `bucket` holds at `now` (it refills at the rate, up to the burst). */
function tokensAt(bucket: Bucket, limit: CreateRate, now: number): number {
  const elapsed = Math.max(0, now - bucket.at);
  return Math.min(limit.burst, bucket.tokens + (elapsed * limit.rate) / 1000);
}

/** Ms until `need` tokens are there, holding `tokens` now (0: they are). */
function waitFor(tokens: number, need: number, limit: CreateRate): number {
  return tokens >= need ? 0 : Math.max(1, Math.ceil(((need - tokens) * 1000) / limit.rate));
}

/** Takes n tokens if they are there: 0 when taken, else ms until they will be. */
export function takeTokens(bucket: Bucket, limit: CreateRate, n: number, now: number): number {
  bucket.tokens = tokensAt(bucket, limit, now);
  bucket.at = now;
  const wait = waitFor(bucket.tokens, Math.min(n, limit.burst), limit);
  if (wait === 0) bucket.tokens -= n;
  return wait;
}

/** Ms until one token is in `bucket`, without taking any (0: one is there). */
export function oneTokenWait(bucket: Bucket, limit: CreateRate, now: number): number {
  return waitFor(tokensAt(bucket, limit, now), 1, limit);
}

/** How long an untouched bucket is worth keeping: after that it would be full anyway. */
export function bucketTtlMs(limit: CreateRate): number {
  return Math.ceil((limit.burst * 1000) / limit.rate) + 1_000;
}

/** `RATE[/BURST]`, e.g. `50` or `50/100`; the burst defaults to the rate. */
export function parseCreateRate(text: string): CreateRate | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(\d+))?\s*$/.exec(text);
  if (!m) return null;
  const rate = Number(m[1]);
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(rate)) : Number(m[2]);
  if (!(rate > 0) || !(burst >= 1)) return null;
  return { rate, burst };
}
