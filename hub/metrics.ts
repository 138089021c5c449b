/**
 * The node's Prometheus metrics, on a registry of its own (several nodes can share one
 * process in tests). Names are stable: dashboards and alerts depend on them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
}
