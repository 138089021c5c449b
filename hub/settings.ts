/** What the hub needs to know of the node's configuration. */
export interface HubSettings {
  nodeId: string;
  heartbeatIntervalMs: number;
  leaseMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  maxPayloadBytes: number;
}

/** Presence of a connection or HTTP heartbeat lapses after three missed intervals. */
export const presenceTtl = (s: HubSettings): number => 3 * s.heartbeatIntervalMs;

/** Longest a long-poll may wait (`wait_ms`). */
export const MAX_WAIT_MS = 60_000;
