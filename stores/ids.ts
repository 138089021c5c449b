/**
 * Request ids and body fingerprints, shared by both stores.
 * Ids are monotonic ULIDs: sortable by creation, so id order is FIFO order.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * ulid's default PRNG asks the OS for one byte per character (16 calls an id); this one
 * draws from a pooled buffer of crypto-random bytes, refilled 4 KiB at a time.
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function pooledRandom(): number {
  if (poolAt >= pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  return (pool[poolAt++] as number) / 256;
}

const ulid = monotonicFactory(pooledRandom);

export function newRequestId(now: number = Date.now()): string {
  return ulid(now);
}

/** JSON with object keys sorted, so equal bodies serialise equally. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Fingerprint of a create body, for idempotency comparisons. */
export function bodyFingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('base64url');
}
