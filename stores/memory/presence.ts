/**
 * Presence in the memory store: a runtime's daemon connections and HTTP heartbeats, and
 * the RuntimeInfo view built from them and the runtime's queue sizes.
 */

import type { RuntimeInfo } from '../../protocol/index.js';
import type { ConnectionInfo } from '../domain.js';
import type { RuntimeState } from './state.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export function upsertConnection(
  state: RuntimeState,
  conn: ConnectionInfo,
  ttlMs: number,
  now: number,
): void {
  state.connections.set(conn.connection_id, {
    connection_id: conn.connection_id,
    node_id: conn.node_id,
    capacity: conn.capacity,
    in_flight: conn.in_flight,
    connected_at: conn.connected_at,
    expires_at: now + ttlMs,
  });
  state.lastSeen = now;
}

export function recordHeartbeat(state: RuntimeState, ttlMs: number, now: number): void {
  state.httpExpiresAt = now + ttlMs;
  state.lastSeen = now;
}

/** Remove connections whose node stopped refreshing them; returns how many. */
export function removeStaleConnections(state: RuntimeState, now: number): number {
  let removed = 0;
  for (const [id, conn] of state.connections) {
    if (conn.expires_at <= now) {
      state.connections.delete(id);
      removed += 1;
    }
  }
  return removed;
}

/** Counts are read as they stand: the caller applies due timeouts first. */
export function runtimeInfo(state: RuntimeState, now: number): RuntimeInfo {
  const connections = [...state.connections.values()]
    .filter((c) => c.expires_at > now)
    .sort((a, b) => a.connected_at - b.connected_at)
    .map((c) => ({
      connection_id: c.connection_id,
      node_id: c.node_id,
      capacity: c.capacity,
      in_flight: c.in_flight,
      connected_at: iso(c.connected_at),
    }));
  const httpOnline = state.httpExpiresAt !== null && state.httpExpiresAt > now;
  return {
    id: state.ref.runtime,
    online: connections.length > 0 || httpOnline,
    last_seen_at: state.lastSeen === null ? null : iso(state.lastSeen),
    connections,
    // Held requests of ordering keys are pending too: every pending one has a deadline.
    pending: state.deadlines.size,
    running: state.leases.size,
  };
}
