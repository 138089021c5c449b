/**
 * The one key builder. Every Redis key and channel name is made here; nothing else
 * concatenates key strings. All keys of one runtime share the hash tag `{W/R}`, so a
 * script that touches one runtime touches one Redis Cluster slot.
 */
import type { RuntimeRef } from './domain.js';

export const SWEEP_BUCKETS = 16;

export interface RuntimeKeys {
  /** The hash tag content, `W/R`: also the runtime's identity in sweep buckets. */
  readonly tag: string;
  /** Prefix of record keys; the record of request `id` is `recordPrefix + id`. */
  readonly recordPrefix: string;
  readonly pending: string;
  readonly deadlines: string;
  readonly leases: string;
  readonly done: string;
  /** Every live or retained id of the runtime, lexicographically (ULIDs: by creation). */
  readonly ids: string;
  readonly conns: string;
  /** Channel: a wake-up hint, published when work becomes pending. */
  readonly wake: string;
  /** Channel: a state-change hint `{id, status, epoch}` for every transition. */
  readonly updates: string;
  record(id: string): string;
  /** The output stream of request `id` (lua/includes/common.lua derives the same). */
  output(id: string): string;
  /**
   * The line of ordering key `key`: ZSET of its live ids in creation order (score: the
   * position in the line). lua/includes/common.lua derives the same name.
   */
  line(key: string): string;
  idem(key: string): string;
}

export function runtimeTag(rt: RuntimeRef): string {
  return `${rt.workspace}/${rt.runtime}`;
}

export function parseRuntimeTag(tag: string): RuntimeRef {
  const slash = tag.indexOf('/');
  return { workspace: tag.slice(0, slash), runtime: tag.slice(slash + 1) };
}

export function runtimeKeys(prefix: string, rt: RuntimeRef): RuntimeKeys {
  const tag = runtimeTag(rt);
  const base = `${prefix}:{${tag}}:`;
  return {
    tag,
    recordPrefix: `${base}req:`,
    pending: `${base}pending`,
    deadlines: `${base}deadlines`,
    leases: `${base}leases`,
    done: `${base}done`,
    ids: `${base}ids`,
    conns: `${base}conns`,
    wake: `${base}wake`,
    updates: `${base}updates`,
    record: (id) => `${base}req:${id}`,
    output: (id) => `${base}out:${id}`,
    line: (key) => `${base}line:${key}`,
    idem: (key) => `${base}idem:${key}`,
  };
}

export function workspaceRuntimesKey(prefix: string, workspace: string): string {
  return `${prefix}:ws:{${workspace}}:runtimes`;
}

/** The workspace's create-rate token bucket (CREATE_RATE_PER_WORKSPACE). */
export function workspaceRateKey(prefix: string, workspace: string): string {
  return `${prefix}:ws:{${workspace}}:rate`;
}

/** Channel on which presence changes of a workspace's runtimes are announced. */
export function workspacePresenceChannel(prefix: string, workspace: string): string {
  return `${prefix}:ws:{${workspace}}:presence`;
}

export function sweepBucketKey(prefix: string, bucket: number): string {
  return `${prefix}:sweep:${bucket}`;
}

export function sweepLockKey(prefix: string, bucket: number): string {
  return `${prefix}:sweep:${bucket}:lock`;
}

/** Which sweep bucket a runtime belongs to: FNV-1a of its tag, mod SWEEP_BUCKETS. */
export function sweepBucketOf(rt: RuntimeRef): number {
  let h = 0x811c9dc5;
  for (const ch of runtimeTag(rt)) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % SWEEP_BUCKETS;
}
