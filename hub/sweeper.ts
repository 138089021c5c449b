/**
 * The sweeper: every interval, this node takes the sweep buckets it can lock and runs
 * the expire transition for each runtime in them (deadlines, leases, retention, stale
 * connections of dead nodes). A runtime whose queue still holds work a pass later while
 * daemons are connected gets its wake-up published again (the fallback for a lost
 * one: the nodes holding its daemons claim). Every RECHECK_EVERY_PASSES passes the node
 * also re-checks its own runtimes with free capacity (a pending count, then a claim
 * only where something waits), for a subscriber link that loses messages. No leader: a bucket's lock lapses when its node dies and
 * another node takes it.
 */
import type { Logger } from 'pino';
import type { RuntimeRef } from '../stores/domain.js';
import {
  runtimeKeys,
  SWEEP_BUCKETS,
  sweepBucketOf,
  workspacePresenceChannel,
} from '../stores/keys.js';
import type { RequestStore } from '../stores/store.js';
import type { Dispatcher } from './dispatcher.js';
import type { HubMetrics } from './metrics.js';
import type { Relay } from './relay.js';

/** Passes between two re-checks of this node's idle runtimes for lost wake-ups. */
export const RECHECK_EVERY_PASSES = 15;

export interface SweeperDeps {
  store: RequestStore;
  relay: Relay;
  dispatcher: Dispatcher;
  metrics: HubMetrics;
  logger: Logger;
  nodeId: string;
  intervalMs: number;
}

export class Sweeper {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #passes = 0;
  /** Runtimes of this node's buckets whose queue had work at the last pass, and this one. */
  #waiting = new Set<string>();
  #waitingNow = new Set<string>();
  /** This pass's backlog by workspace, for the metrics (HubMetrics.setBacklog). */
  #backlog = new Map<string, { pending: number; oldestAt: number | null }>();
  constructor(private readonly deps: SweeperDeps) {}

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** One pass; overlapping calls share the pass under way. */
  tick(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#pass().finally(() => {
        this.#running = null;
      });
    }
    return this.#running;
  }

  async #sweepRuntime(rt: RuntimeRef): Promise<void> {
    const { store, metrics } = this.deps;
    const out = await store.expire(rt);
    this.#noteBacklog(rt.workspace, out.pending, out.oldestPendingAt);
    if (out.timedOut.length) metrics.sweeps.inc({ change: 'timeout' }, out.timedOut.length);
    if (out.requeued.length) metrics.sweeps.inc({ change: 'requeue' }, out.requeued.length);
    if (out.staleConnections > 0) {
      await this.deps.relay.publish(
        workspacePresenceChannel(store.settings.prefix, rt.workspace),
        rt.runtime,
      );
    }
    // Work that waited through a whole pass while daemons are connected: its wake-up
    // may have been lost, so it is announced again (the nodes holding them claim). Held
    // requests of ordering keys wait for their line, not for a wake-up: not counted.
    if (out.claimable > 0 && out.connections > 0) {
      const tag = runtimeKeys(store.settings.prefix, rt).tag;
      this.#waitingNow.add(tag);
      if (this.#waiting.has(tag)) {
        metrics.rewakes.inc();
        // This node's own daemons of it are pumped here, not through pub/sub: so for
        // the runtimes of its buckets the node needs no re-check of its own (below).
        void this.deps.dispatcher.pump(rt, 'sweep');
        await this.deps.relay.publish(runtimeKeys(store.settings.prefix, rt).wake, '1');
      }
    }
    if (out.live === 0 && out.retained === 0) await store.forgetIfIdle(rt);
  }

  #noteBacklog(workspace: string, pending: number, oldestAt: number | null): void {
    const b = this.#backlog.get(workspace);
    if (!b) this.#backlog.set(workspace, { pending, oldestAt });
    else {
      b.pending += pending;
      if (oldestAt !== null && (b.oldestAt === null || oldestAt < b.oldestAt))
        b.oldestAt = oldestAt;
    }
  }

  async #pass(): Promise<void> {
    const { store, logger } = this.deps;
    this.#waitingNow = new Set();
    this.#backlog = new Map();
    let swept = false;
    const held = new Set<number>();
    try {
      for (let bucket = 0; bucket < SWEEP_BUCKETS; bucket++) {
        // Hold the lock a little under two intervals: this node keeps the bucket while it
        // lives; a dead node's buckets pass on within two intervals.
        if (!(await store.lockBucket(bucket, this.deps.nodeId, this.deps.intervalMs * 2))) continue;
        held.add(bucket);
        for (const rt of await store.sweepCandidates(bucket)) {
          try {
            await this.#sweepRuntime(rt);
          } catch (err) {
            // One runtime failing must not skip the rest of the pass.
            logger.warn({ err, runtime: rt }, 'sweep of a runtime failed; the next pass retries');
          }
        }
      }
      swept = true;
    } catch (err) {
      logger.warn({ err }, 'sweep pass failed; the next one retries');
    }
    // A pass cut short keeps the last whole pass's figures rather than a part of them.
    if (swept) this.deps.metrics.setBacklog(this.#backlog);
    this.#waiting = this.#waitingNow;
    // The last resort, for a subscriber link that drops messages while it stays up
    // (a dropped link is a reconnect, and that re-checks at once): every few passes.
    // A runtime of a bucket swept here is covered: any work it has was seen by this pass
    // (creates put a runtime in its bucket first), and the re-wake pumps locally.
    this.#passes = (this.#passes + 1) % RECHECK_EVERY_PASSES;
    if (this.#passes === 0) {
      await this.deps.dispatcher.pumpAll('sweep', (rt) => held.has(sweepBucketOf(rt)));
    }
  }
}
