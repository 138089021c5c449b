/** What the hub needs to know of the node's configuration. */
export interface HubSettings {
  nodeId: string;
  heartbeatIntervalMs: number;
  leaseMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  maxPayloadBytes: number;
  /** A socket whose unsent buffer passes this is closed with 1013 (a peer that does not read). */
  maxSocketBufferBytes: number;
  /** A daemon socket without a valid `ready` by then is closed with 1008. */
  readyTimeoutMs: number;
  /** Store unreachable this long: /readyz 503 and daemons drained (store_unavailable). */
  storeLostDrainMs: number;
  /** Invalid frames in a row that close either socket with 1008. */
  maxBadFrames: number;
  /** Per client socket: runtimes subscribed, and explicit request ids. */
  maxSubscribedRuntimes: number;
  maxSubscribedIds: number;
}

/** Presence of a connection or HTTP heartbeat lapses after three missed intervals. */
export const presenceTtl = (s: HubSettings): number => 3 * s.heartbeatIntervalMs;

/** Longest a long-poll may wait (`wait_ms`). */
export const MAX_WAIT_MS = 60_000;
