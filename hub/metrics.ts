/**
 * The node's Prometheus metrics, on a registry of its own (several nodes can share one
 * process in tests). Names are stable: dashboards and alerts depend on them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestRecord } from '../stores/domain.js';

export type ClaimPath = 'push' | 'connect' | 'result' | 'sweep' | 'reconnect' | 'heartbeat';

export class HubMetrics {
  readonly registry = new Registry();
  readonly transitions = new Counter({
    name: 'switchboard_request_transitions_total',
    help: 'Requests moved into each state by this node',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly claims = new Counter({
    name: 'switchboard_claims_total',
    help: 'Requests claimed by this node, by the path that claimed them',
    labelNames: ['path'] as const,
    registers: [this.registry],
  });
  readonly scheduleToStart = new Histogram({
    name: 'switchboard_schedule_to_start_seconds',
    help: 'From a request being created to its claim, by the path that claimed it',
    labelNames: ['path'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900],
    registers: [this.registry],
  });
  /**
   * The backlog of the runtimes in this node's sweep buckets, by workspace, as of its
   * last sweep pass (every runtime is in exactly one node's buckets: sum the pending
   * count over nodes, take the max of the age).
   */
  #backlog = new Map<string, { pending: number; oldestAt: number | null }>();
  readonly backlogPending = new Gauge({
    name: 'switchboard_backlog_pending',
    help: 'Pending requests of the runtimes this node sweeps, by workspace (sum over nodes)',
    labelNames: ['workspace'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [workspace, b] of this.#backlog) this.backlogPending.set({ workspace }, b.pending);
    },
  });
  readonly backlogOldestAge = new Gauge({
    name: 'switchboard_backlog_oldest_age_seconds',
    help: 'Age of the oldest pending request of the runtimes this node sweeps, by workspace (max over nodes)',
    labelNames: ['workspace'] as const,
    registers: [this.registry],
    // Ages are computed at scrape time from the pass's creation times.
    collect: () => {
      const now = Date.now();
      for (const [workspace, { oldestAt }] of this.#backlog) {
        const age = oldestAt === null ? 0 : Math.max(0, now - oldestAt) / 1000;
        this.backlogOldestAge.set({ workspace }, age);
      }
    },
  });
  readonly dispatchLatency = new Histogram({
    name: 'switchboard_dispatch_latency_seconds',
    help: 'From a request becoming pending to its push to a daemon socket',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly sockets = new Gauge({
    name: 'switchboard_sockets',
    help: 'Open websockets on this node',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly relayReconnects = new Counter({
    name: 'switchboard_relay_reconnects_total',
    help: 'Times the pub/sub connection came back after a loss',
    registers: [this.registry],
  });
  readonly released = new Counter({
    name: 'switchboard_released_total',
    help: 'Claimed requests released because they could not be handed to a socket',
    registers: [this.registry],
  });
  readonly sweeps = new Counter({
    name: 'switchboard_sweeper_expired_total',
    help: 'Requests the sweeper timed out or requeued',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });
  readonly rewakes = new Counter({
    name: 'switchboard_sweeper_rewakes_total',
    help: 'Wake-ups published again by the sweeper for work still waiting a pass later',
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'switchboard_store_errors_total',
    help: 'Store calls that failed with store_unavailable',
    registers: [this.registry],
  });

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Requests claimed by `path`: counted, and their wait since creation observed. */
  claimed(path: ClaimPath, records: readonly RequestRecord[], now = Date.now()): void {
    if (records.length === 0) return;
    this.claims.inc({ path }, records.length);
    const waited = this.scheduleToStart.labels({ path });
    for (const r of records) waited.observe(Math.max(0, now - r.created_at) / 1000);
  }

  /**
   * A sweep pass's backlog, per workspace: replaces the last pass's. A workspace seen
   * before and empty now reads 0 (not absent), so an alert on it resolves.
   */
  setBacklog(byWorkspace: Map<string, { pending: number; oldestAt: number | null }>): void {
    for (const workspace of this.#backlog.keys()) {
      if (!byWorkspace.has(workspace)) byWorkspace.set(workspace, { pending: 0, oldestAt: null });
    }
    this.#backlog = byWorkspace;
  }
}
