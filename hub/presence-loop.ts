/**
 * The daemon sockets' heartbeat round on this node: each socket is visited once per
 * HEARTBEAT_INTERVAL_MS, at its own phase, in slices of one timer tick each (about
 * HEARTBEAT_TICK_MS, at least MIN_HEARTBEAT_SLICES a round), so no tick issues more
 * than a small share of the presence scripts on the connection claims ride on. A visit
 * terminates a socket that left a ping unanswered for two intervals, sheds one whose
 * peer stopped reading, and pings and refreshes the presence of the rest: one store
 * call per runtime for all of a slice's sockets of that runtime (sockets of a runtime
 * are adjacent in the round and slices end between runtimes where they can, so a small
 * runtime's sockets cost one call a round). It also owns
 * the presence writes outside the round: a socket's first (announced) one, and its
 * removal when it closes.
 */
import type { Logger } from 'pino';
import type { RuntimeRef } from '../stores/domain.js';
import { workspacePresenceChannel } from '../stores/keys.js';
import type { RequestStore } from '../stores/store.js';
import { DAEMON_MODES, type DaemonConnection } from './daemon-conn.js';
import type { Relay } from './relay.js';
import { type HubSettings, presenceTtl } from './settings.js';
import { shed } from './socket-limits.js';

export const MIN_HEARTBEAT_SLICES = 20;
const HEARTBEAT_TICK_MS = 25;

export interface PresenceDeps {
  store: RequestStore;
  relay: Relay;
  settings: HubSettings;
  logger: Logger;
  /** The daemon sockets on this node, as of now. */
  connections: () => DaemonConnection[];
}

export class PresenceLoop {
  #timer: NodeJS.Timeout | null = null;
  /** The round: the sockets as of its start, and the slice due next. */
  #round: DaemonConnection[] = [];
  #slice = 0;
  /** Where each slice of the round ends (sliceCuts). */
  #cuts: number[] = [];
  readonly #slices: number;

  constructor(private readonly deps: PresenceDeps) {
    this.#slices = Math.max(
      MIN_HEARTBEAT_SLICES,
      Math.round(deps.settings.heartbeatIntervalMs / HEARTBEAT_TICK_MS),
    );
  }

  start(): void {
    if (this.#timer) return;
    const every = Math.max(1, Math.floor(this.deps.settings.heartbeatIntervalMs / this.#slices));
    this.#timer = setInterval(() => this.#tick(), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** A socket became ready: its presence, announced to the workspace's watchers. */
  opened(conn: DaemonConnection): Promise<void> {
    return this.#refresh([conn], true);
  }

  /** A socket closed: its presence goes, and the workspace hears of it. */
  closed(conn: DaemonConnection): Promise<void> {
    return this.deps.store
      .removeConnection(conn.rt, conn.id)
      .then(() => this.announce(conn.rt))
      .catch((err) => this.deps.logger.warn({ err }, 'could not remove connection presence'));
  }

  announce(rt: RuntimeRef): Promise<void> {
    return this.deps.relay.publish(
      workspacePresenceChannel(this.deps.store.settings.prefix, rt.workspace),
      rt.runtime,
    );
  }

  #tick(): void {
    const { settings } = this.deps;
    if (this.#slice === 0) {
      this.#round = this.deps.connections();
      this.#cuts = sliceCuts(this.#round, this.#slices);
    }
    const from = this.#slice === 0 ? 0 : (this.#cuts[this.#slice - 1] as number);
    const to = this.#cuts[this.#slice] as number;
    this.#slice = (this.#slice + 1) % this.#slices;
    const now = Date.now();
    // A visit's timing drifts by up to a tick between rounds.
    const slack = settings.heartbeatIntervalMs / this.#slices;
    /** The slice's ready sockets by runtime, refreshed together after the loop. */
    const due = new Map<string, DaemonConnection[]>();
    for (let i = from; i < to; i++) {
      const conn = this.#round[i] as DaemonConnection;
      if (conn.mode === DAEMON_MODES.closed) continue;
      // Counted from a ping, never from the daemon's last frame: a socket the node has
      // not pinged yet (a stall, a late first visit) is not silent, only unasked.
      if (conn.pingedAt <= conn.lastHeard) conn.unansweredSince = now;
      else if (now - conn.unansweredSince >= 2 * settings.heartbeatIntervalMs - slack) {
        // After this turn's socket reads, so a pong that waited behind a stall counts.
        setImmediate(terminateIfSilent, conn);
        continue;
      }
      if (!conn.open) continue;
      // Backed up past half the cap with no progress over a whole interval: its peer
      // does not read (pushes stopped at half the cap, so a reader always drains).
      const buffered = conn.ws.bufferedAmount;
      const stuck = buffered > settings.maxSocketBufferBytes / 2 && buffered >= conn.lastBuffered;
      conn.lastBuffered = buffered;
      if (stuck) {
        shed(conn.ws);
        continue;
      }
      conn.ws.ping();
      conn.pingedAt = now;
      if (conn.mode !== DAEMON_MODES.ready) continue;
      const group = due.get(conn.tag);
      if (group) group.push(conn);
      else due.set(conn.tag, [conn]);
    }
    for (const group of due.values()) void this.#refresh(group, false);
  }

  /** Presence for sockets of one runtime, in one store call. */
  async #refresh(conns: DaemonConnection[], announce: boolean): Promise<void> {
    const rt = (conns[0] as DaemonConnection).rt;
    const nodeId = this.deps.settings.nodeId;
    try {
      await this.deps.store.upsertConnections(
        rt,
        conns.map((conn) => ({
          connection_id: conn.id,
          node_id: nodeId,
          capacity: conn.capacity,
          in_flight: conn.inFlight.size,
          connected_at: conn.connectedAt,
        })),
        presenceTtl(this.deps.settings),
      );
      if (announce) await this.announce(rt);
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not refresh connection presence');
    }
  }
}

/**
 * Slice ends over a round whose sockets come grouped by runtime: even shares, each end
 * moved on to its runtime's last socket when that is at most one share further, so a
 * small runtime's sockets share a slice (and a presence call) and no slice holds more
 * than about two shares.
 */
export function sliceCuts(round: readonly DaemonConnection[], slices: number): number[] {
  const n = round.length;
  const share = Math.ceil(n / slices);
  const cuts: number[] = [];
  let prev = 0;
  for (let s = 0; s < slices; s++) {
    let cut = Math.max(prev, Math.floor(((s + 1) * n) / slices));
    let end = cut;
    const limit = Math.min(n, cut + share);
    while (end > 0 && end < limit && round[end]?.tag === round[end - 1]?.tag) end++;
    // Moved only onto a runtime boundary: a bigger runtime is cut at even shares.
    if (end === n || round[end]?.tag !== round[end - 1]?.tag) cut = end;
    cuts.push(cut);
    prev = cut;
  }
  cuts[slices - 1] = n;
  return cuts;
}

/** The watchdog's verdict, after pending socket reads: no pong since the last ping. */
function terminateIfSilent(conn: DaemonConnection): void {
  if (conn.pingedAt > conn.lastHeard && conn.mode !== DAEMON_MODES.closed) conn.ws.terminate();
}
