/**
 * The sweeper: every interval, this node takes the sweep buckets it can lock and runs
 * the expire transition for each runtime in them (deadlines, leases, retention, stale
 * connections of dead nodes), and every RECHECK_EVERY_PASSES passes re-checks its own
 * runtimes with free capacity for pending work (the timer fallback for lost wake-ups: a
 * pending count, then a claim only where something waits). No leader: a bucket's lock lapses when its node dies and
 * another node takes it.
 */
import type { Logger } from 'pino';
import type { RuntimeRef } from '../stores/domain.js';
import { SWEEP_BUCKETS, workspacePresenceChannel } from '../stores/keys.js';
import type { RequestStore } from '../stores/store.js';
import type { Dispatcher } from './dispatcher.js';
import type { HubMetrics } from './metrics.js';
import type { Relay } from './relay.js';

/** Passes between two re-checks of this node's idle runtimes for lost wake-ups. */
export const RECHECK_EVERY_PASSES = 5;

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
    if (out.timedOut.length) metrics.sweeps.inc({ change: 'timeout' }, out.timedOut.length);
    if (out.requeued.length) metrics.sweeps.inc({ change: 'requeue' }, out.requeued.length);
    if (out.staleConnections > 0) {
      await this.deps.relay.publish(
        workspacePresenceChannel(store.settings.prefix, rt.workspace),
        rt.runtime,
      );
    }
    if (out.live === 0 && out.retained === 0) await store.forgetIfIdle(rt);
  }

  async #pass(): Promise<void> {
    const { store, logger } = this.deps;
    try {
      for (let bucket = 0; bucket < SWEEP_BUCKETS; bucket++) {
        // Hold the lock a little under two intervals: this node keeps the bucket while it
        // lives; a dead node's buckets pass on within two intervals.
        if (!(await store.lockBucket(bucket, this.deps.nodeId, this.deps.intervalMs * 2))) continue;
        for (const rt of await store.sweepCandidates(bucket)) {
          try {
            await this.#sweepRuntime(rt);
          } catch (err) {
            // One runtime failing must not skip the rest of the pass.
            logger.warn({ err, runtime: rt }, 'sweep of a runtime failed; the next pass retries');
          }
        }
      }
    } catch (err) {
      logger.warn({ err }, 'sweep pass failed; the next one retries');
    }
    // The re-check is for wake-ups lost on a live subscriber link, which is rare (a
    // dropped link is a reconnect, and that re-checks at once): every few passes.
    this.#passes = (this.#passes + 1) % RECHECK_EVERY_PASSES;
    if (this.#passes === 0) await this.deps.dispatcher.pumpAll('sweep');
  }
}
