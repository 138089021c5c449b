/**
 * The memory store's index of runtimes: each runtime's state by tag, the runtimes each
 * workspace knows, the sweep buckets (runtime -> last touched) and the bucket locks.
 * It holds no request logic; MemoryStore decides when a runtime is touched or forgotten.
 */
import type { RuntimeRef } from '../domain.js';
import { parseRuntimeTag, runtimeTag, sweepBucketOf } from '../keys.js';
import { newRuntimeState, type RuntimeState } from './state.js';

const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class RuntimeTable {
  readonly #prefix: string;
  readonly #states = new Map<string, RuntimeState>();
  /** workspace -> tags of its known runtimes */
  readonly #workspaces = new Map<string, Set<string>>();
  /** sweep bucket -> runtime tag -> last touched (ms) */
  readonly #buckets = new Map<number, Map<string, number>>();
  readonly #locks = new Map<number, { nodeId: string; expiresAt: number }>();

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  find(rt: RuntimeRef): RuntimeState | undefined {
    return this.#states.get(runtimeTag(rt));
  }

  /**
   * The runtime's state. A runtime never seen gets a detached empty state, which only
   * `keep` makes known: reads, and writes that were refused, leave no runtime behind.
   */
  state(rt: RuntimeRef): RuntimeState {
    return this.find(rt) ?? newRuntimeState(this.#prefix, rt);
  }

  /** Make a (possibly detached) state known in its workspace; a no-op when it is. */
  keep(state: RuntimeState): void {
    if (this.#states.has(state.keys.tag)) return;
    this.#states.set(state.keys.tag, state);
    let tags = this.#workspaces.get(state.ref.workspace);
    if (!tags) {
      tags = new Set();
      this.#workspaces.set(state.ref.workspace, tags);
    }
    tags.add(state.keys.tag);
  }

  /** The workspace's known runtimes, by runtime id. */
  inWorkspace(workspace: string): RuntimeState[] {
    const states: RuntimeState[] = [];
    for (const tag of this.#workspaces.get(workspace) ?? []) {
      const state = this.#states.get(tag);
      if (state) states.push(state);
    }
    return states.sort((a, b) => compareIds(a.ref.runtime, b.ref.runtime));
  }

  /** Put the runtime on the sweeper's work list, touched now. */
  touch(rt: RuntimeRef, now: number): void {
    const bucketNo = sweepBucketOf(rt);
    let bucket = this.#buckets.get(bucketNo);
    if (!bucket) {
      bucket = new Map();
      this.#buckets.set(bucketNo, bucket);
    }
    bucket.set(runtimeTag(rt), now);
  }

  lastTouched(rt: RuntimeRef): number | undefined {
    return this.#buckets.get(sweepBucketOf(rt))?.get(runtimeTag(rt));
  }

  candidates(bucket: number): RuntimeRef[] {
    return [...(this.#buckets.get(bucket)?.keys() ?? [])].map(parseRuntimeTag);
  }

  dropFromBucket(rt: RuntimeRef): void {
    const bucketNo = sweepBucketOf(rt);
    const bucket = this.#buckets.get(bucketNo);
    bucket?.delete(runtimeTag(rt));
    if (bucket?.size === 0) this.#buckets.delete(bucketNo);
  }

  /** Take the bucket unless another node holds an unexpired lock on it. */
  lock(bucket: number, nodeId: string, ttlMs: number, now: number): boolean {
    const held = this.#locks.get(bucket);
    if (held && held.expiresAt > now && held.nodeId !== nodeId) return false;
    this.#locks.set(bucket, { nodeId, expiresAt: now + ttlMs });
    return true;
  }
}
