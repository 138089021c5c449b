/**
 * The hub: this node's realtime engine. It owns the dispatcher (daemon sockets and
 * pushes), the client sockets, the sweeper, presence refreshes and the drain on
 * shutdown, on top of a store (the truth) and a relay (the hints). The HTTP layer and
 * the socket handlers call into it; it never imports from src/.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { CLOSE, type HeartbeatBody, type HeartbeatResponse } from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import { toDaemonRequest } from '../stores/domain.js';
import { isStoreError } from '../stores/errors.js';
import { newRequestId } from '../stores/ids.js';
import { workspacePresenceChannel } from '../stores/keys.js';
import type { Outcome, RequestStore } from '../stores/store.js';
import { attachClientSocket } from './client-socket.js';
import { DAEMON_MODES, type DaemonConnection } from './daemon-conn.js';
import { attachDaemonSocket } from './daemon-socket.js';
import { Dispatcher } from './dispatcher.js';
import type { SocketHost } from './host.js';
import { HubMetrics } from './metrics.js';
import { type Relay, withTimeout } from './relay.js';
import { type HubSettings, presenceTtl } from './settings.js';
import { shed } from './socket-limits.js';
import { StoreHealth } from './store-health.js';
import { Sweeper } from './sweeper.js';
import { waitForTerminal } from './waiters.js';

/**
 * Pings and presence refreshes are spread over the heartbeat interval in slices, one
 * per timer tick of about HEARTBEAT_TICK_MS (at least MIN_HEARTBEAT_SLICES a round), so
 * no tick issues more than a small share of the sockets' presence scripts on the
 * connection claims ride on.
 */
export const MIN_HEARTBEAT_SLICES = 20;
const HEARTBEAT_TICK_MS = 25;
/** /readyz answers within this even when the store does not. */
const READY_PING_MS = 1_000;
/** A daemon told to go elsewhere (store lost) gets this long to reconnect before 1012. */
const STORE_LOST_CLOSE_MS = 1_000;

export interface HubOptions {
  store: RequestStore;
  relay: Relay;
  settings: HubSettings;
  logger: Logger;
}

export class Hub implements SocketHost {
  readonly store: RequestStore;
  readonly relay: Relay;
  readonly settings: HubSettings;
  readonly logger: Logger;
  readonly metrics: HubMetrics;
  readonly dispatcher: Dispatcher;
  readonly sweeper: Sweeper;
  /** Store reachability; while lost, daemons are sent elsewhere (not the shutdown drain). */
  readonly storeHealth: StoreHealth;
  #draining = false;
  #timer: NodeJS.Timeout | null = null;
  /** The heartbeat round: the sockets as of its start, and the slice due next. */
  #round: DaemonConnection[] = [];
  #slice = 0;
  readonly #slices: number;
  /** Long-polls under way; aborted on shutdown so they answer at once. */
  readonly #waits = new AbortController();

  constructor(opts: HubOptions) {
    this.store = opts.store;
    this.relay = opts.relay;
    this.settings = opts.settings;
    this.#slices = Math.max(
      MIN_HEARTBEAT_SLICES,
      Math.round(opts.settings.heartbeatIntervalMs / HEARTBEAT_TICK_MS),
    );
    this.logger = opts.logger;
    this.metrics = new HubMetrics(opts.settings.nodeId);
    const deps = {
      store: this.store,
      relay: this.relay,
      nodeId: this.settings.nodeId,
      metrics: this.metrics,
      logger: this.logger,
    };
    // Every long-poll listens on this signal: many at once is normal, not a leak.
    setMaxListeners(0, this.#waits.signal);
    this.dispatcher = new Dispatcher(deps);
    this.sweeper = new Sweeper({
      ...deps,
      dispatcher: this.dispatcher,
      intervalMs: this.settings.sweepIntervalMs,
    });
    this.storeHealth = new StoreHealth({
      ping: () => this.store.ping(),
      lostAfterMs: this.settings.storeLostDrainMs,
      onLost: () => this.#sendDaemonsElsewhere(),
      onBack: () => {},
      logger: this.logger,
    });
    this.relay.onReconnect(() => {
      this.metrics.relayReconnects.inc();
      this.logger.info('relay reconnected; draining every local runtime');
      void this.dispatcher.pumpAll('reconnect');
      void this.dispatcher.recheckInFlight();
    });
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The store has been unreachable for STORE_LOST_DRAIN_MS: daemon sockets are refused. */
  get storeLost(): boolean {
    return this.storeHealth.lost;
  }

  start(): void {
    this.storeHealth.start();
    this.sweeper.start();
    const every = Math.max(1, Math.floor(this.settings.heartbeatIntervalMs / this.#slices));
    this.#timer = setInterval(() => this.#heartbeatTick(), every);
    this.#timer.unref();
  }

  // ---- daemon websockets -------------------------------------------------------------

  attachDaemon(
    ws: WebSocket,
    principal: { workspace: string; runtime: string; sub: string },
  ): void {
    attachDaemonSocket(this, ws, principal, newRequestId());
  }

  daemonOpened(conn: DaemonConnection): void {
    this.metrics.sockets.inc({ kind: 'daemon' });
    this.dispatcher.add(conn);
  }

  daemonReady(conn: DaemonConnection): void {
    void this.#refreshPresence(conn, true);
    void this.dispatcher.pump(conn.rt, 'connect');
  }

  daemonClosed(conn: DaemonConnection): void {
    this.metrics.sockets.dec({ kind: 'daemon' });
    this.dispatcher.remove(conn);
    // Requests pushed to this socket stay running: their leases survive a reconnect, and
    // the daemon may report them on another connection with the same epoch.
    void this.store
      .removeConnection(conn.rt, conn.id)
      .then(() => this.#announce(conn.rt))
      .catch((err) => this.logger.warn({ err }, 'could not remove connection presence'));
  }

  // ---- client websockets -------------------------------------------------------------

  attachClient(ws: WebSocket, principal: { workspace: string }): void {
    attachClientSocket(this, ws, principal.workspace);
  }

  clientOpened(): void {
    this.metrics.sockets.inc({ kind: 'client' });
  }

  clientClosed(): void {
    this.metrics.sockets.dec({ kind: 'client' });
  }

  // ---- what HTTP and sockets share ---------------------------------------------------

  noteStoreError(): void {
    this.metrics.storeErrors.inc();
    this.storeHealth.failed();
  }

  /** Counts transitions the HTTP layer made (create, batch, cancel, retry) by new status. */
  noteTransitions(records: RequestRecord[]): void {
    for (const r of records) this.metrics.transitions.inc({ status: r.status });
  }

  waitForTerminal(rt: RuntimeRef, id: string, waitMs: number): Promise<RequestRecord | null> {
    return waitForTerminal(this.store, this.relay, rt, id, waitMs, this.#waits.signal);
  }

  /**
   * Stores a daemon's result. Slots on this node's sockets are freed by the socket
   * handler after its ack (`settled`), or by the update hint when the report came
   * over HTTP or from another node.
   */
  async report(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
  ): Promise<RequestRecord> {
    try {
      const record = await this.store.report(rt, id, epoch, outcome);
      this.metrics.transitions.inc({ status: record.status });
      return record;
    } catch (err) {
      if (isStoreError(err, 'store_unavailable')) this.noteStoreError();
      throw err;
    }
  }

  settled(conn: DaemonConnection, id: string, epoch: number): void {
    this.dispatcher.settled(conn, id, epoch);
  }

  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.store.renew(rt, id, epoch);
  }

  /** The HTTP heartbeat: liveness first (never waits on work), then leases, then claims. */
  async heartbeat(
    rt: RuntimeRef,
    daemonSub: string,
    body: HeartbeatBody,
  ): Promise<HeartbeatResponse> {
    await this.store.recordHeartbeat(rt, presenceTtl(this.settings));
    const leases = await Promise.all(
      body.leases.map(async ({ id, epoch }) => {
        try {
          const r = await this.store.renew(rt, id, epoch);
          const at =
            r.lease_expires_at === null ? null : new Date(r.lease_expires_at).toISOString();
          return { id, epoch, ok: true, lease_expires_at: at };
        } catch (err) {
          if (isStoreError(err, 'store_unavailable')) throw err;
          return { id, epoch, ok: false, lease_expires_at: null };
        }
      }),
    );
    const claimed =
      body.max > 0 && !this.#draining
        ? await this.store.claim(rt, {
            connectionId: `http:${daemonSub}`,
            nodeId: this.settings.nodeId,
            max: body.max,
          })
        : [];
    if (claimed.length) {
      this.metrics.claims.inc({ path: 'heartbeat' }, claimed.length);
      this.metrics.transitions.inc({ status: 'running' }, claimed.length);
    }
    return {
      requests: claimed.map(toDaemonRequest),
      leases,
      heartbeat_interval_ms: this.settings.heartbeatIntervalMs,
    };
  }

  async ready(): Promise<{ ok: boolean; checks: Record<string, boolean | string> }> {
    let store: boolean | string = true;
    try {
      await withTimeout(this.store.ping(), READY_PING_MS, 'store ping');
    } catch (err) {
      store = err instanceof Error ? err.message : 'unreachable';
    }
    const lost = this.storeHealth.lost;
    const checks = {
      store,
      relay: this.relay.connected,
      draining: this.#draining,
      store_lost: lost,
    };
    return { ok: store === true && this.relay.connected && !this.#draining && !lost, checks };
  }

  /**
   * The store is lost: this node cannot serve its daemons, other nodes may. Each is told
   * `drain` (store_unavailable) and closed (1012) shortly after, so it reconnects
   * elsewhere. Temporary, unlike the shutdown drain: new daemons are taken again once
   * the store is back.
   */
  #sendDaemonsElsewhere(): void {
    const conns = this.dispatcher.connections.filter(
      (c) => c.mode === DAEMON_MODES.connecting || c.mode === DAEMON_MODES.ready,
    );
    for (const conn of conns) {
      conn.setMode(DAEMON_MODES.draining);
      void conn.send({ type: 'drain', reason: 'store_unavailable' });
    }
    const timer = setTimeout(
      () => {
        for (const c of conns) if (c.open) c.ws.close(CLOSE.serviceRestart, 'store unavailable');
      },
      Math.min(STORE_LOST_CLOSE_MS, this.settings.shutdownGraceMs),
    );
    timer.unref();
  }

  // ---- shutdown -----------------------------------------------------------------------

  /**
   * The graceful path: stop pushing, tell daemons to reconnect elsewhere, answer
   * long-polls, and close daemon sockets (1012) when they leave or the grace ends.
   */
  async drain(reason = 'node shutting down'): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.storeHealth.stop();
    await this.sweeper.stop();
    if (this.#timer) clearInterval(this.#timer);
    this.#waits.abort();
    const conns = this.dispatcher.connections;
    for (const conn of conns) {
      if (conn.mode !== DAEMON_MODES.closed) conn.setMode(DAEMON_MODES.draining);
      void conn.send({ type: 'drain', reason });
    }
    const closed = conns.map(
      (c) =>
        new Promise<void>((resolve) =>
          c.mode === 'closed' ? resolve() : c.ws.once('close', () => resolve()),
        ),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closed),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.settings.shutdownGraceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const c of conns) if (c.open) c.ws.close(CLOSE.serviceRestart, 'node shutting down');
  }

  async close(): Promise<void> {
    this.storeHealth.stop();
    await this.sweeper.stop();
    if (this.#timer) clearInterval(this.#timer);
    this.#waits.abort();
  }

  // ---- presence -----------------------------------------------------------------------

  /**
   * One slice of the heartbeat round: each daemon socket is visited once per interval,
   * at its own phase. A visit terminates a socket that has left a ping unanswered for
   * two intervals (it has no free capacity from then on), sheds one whose peer stopped reading, pings the rest
   * and refreshes presence (liveness never waits on work).
   */
  #heartbeatTick(): void {
    if (this.#slice === 0) this.#round = this.dispatcher.connections;
    const n = this.#round.length;
    const from = Math.floor((this.#slice * n) / this.#slices);
    const to = Math.floor(((this.#slice + 1) * n) / this.#slices);
    this.#slice = (this.#slice + 1) % this.#slices;
    const now = Date.now();
    // A visit's timing drifts by up to a tick between rounds.
    const slack = this.settings.heartbeatIntervalMs / this.#slices;
    for (let i = from; i < to; i++) {
      const conn = this.#round[i] as DaemonConnection;
      if (conn.mode === DAEMON_MODES.closed) continue;
      // Counted from a ping, never from the daemon's last frame: a socket the node has
      // not pinged yet (a stall, a late first visit) is not silent, only unasked.
      if (conn.pingedAt <= conn.lastHeard) conn.unansweredSince = now;
      else if (now - conn.unansweredSince >= 2 * this.settings.heartbeatIntervalMs - slack) {
        // After this turn's socket reads, so a pong that waited behind a stall counts.
        setImmediate(terminateIfSilent, conn);
        continue;
      }
      if (!conn.open) continue;
      // Backed up past half the cap with no progress over a whole interval: its peer
      // does not read (pushes stopped at half the cap, so a reader always drains).
      const buffered = conn.ws.bufferedAmount;
      const stuck =
        buffered > this.settings.maxSocketBufferBytes / 2 && buffered >= conn.lastBuffered;
      conn.lastBuffered = buffered;
      if (stuck) {
        shed(conn.ws);
        continue;
      }
      conn.ws.ping();
      conn.pingedAt = now;
      if (conn.mode === DAEMON_MODES.ready) void this.#refreshPresence(conn, false);
    }
  }

  async #refreshPresence(conn: DaemonConnection, announce: boolean): Promise<void> {
    try {
      await this.store.upsertConnection(
        conn.rt,
        {
          connection_id: conn.id,
          node_id: this.settings.nodeId,
          capacity: conn.capacity,
          in_flight: conn.inFlight.size,
          connected_at: conn.connectedAt,
        },
        presenceTtl(this.settings),
      );
      if (announce) await this.#announce(conn.rt);
    } catch (err) {
      this.logger.warn({ err }, 'could not refresh connection presence');
    }
  }

  #announce(rt: RuntimeRef): Promise<void> {
    return this.relay.publish(
      workspacePresenceChannel(this.store.settings.prefix, rt.workspace),
      rt.runtime,
    );
  }
}

/** The watchdog's verdict, after pending socket reads: no pong since the last ping. */
function terminateIfSilent(conn: DaemonConnection): void {
  if (conn.pingedAt > conn.lastHeard && conn.mode !== DAEMON_MODES.closed) conn.ws.terminate();
}
