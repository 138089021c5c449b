/**
 * Presence rules both stores share: a runtime is online while it has a connection
 * whose presence has not lapsed, or an HTTP heartbeat within its TTL.
 */

import type { RuntimeInfo } from '../protocol/index.js';
import type { ConnectionPresence } from './store.js';

export interface PresenceState {
  id: string;
  now: number;
  connections: Iterable<ConnectionPresence>;
  httpExpiresAt: number | null;
  lastSeenAt: number | null;
  pending: number;
  running: number;
}

export function runtimeInfo(s: PresenceState): RuntimeInfo {
  const live = [...s.connections]
    .filter((c) => c.expires_at > s.now)
    .sort((a, b) => a.connected_at - b.connected_at);
  return {
    id: s.id,
    online: live.length > 0 || (s.httpExpiresAt !== null && s.httpExpiresAt > s.now),
    last_seen_at: s.lastSeenAt === null ? null : new Date(s.lastSeenAt).toISOString(),
    connections: live.map((c) => ({
      connection_id: c.connection_id,
      node_id: c.node_id,
      capacity: c.capacity,
      in_flight: c.in_flight,
      connected_at: new Date(c.connected_at).toISOString(),
    })),
    pending: s.pending,
    running: s.running,
  };
}
