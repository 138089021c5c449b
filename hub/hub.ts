/**
 * The hub: this node's realtime engine, wired here. It fronts the store (through the
 * instrumented wrapper, which does the node's counting) and the relay for everything
 * the routes and sockets do, and owns the parts: the dispatcher (daemon sockets and
 * pushes), the client sockets, the sweeper, the presence loop, the HTTP heartbeat, the
 * store health check; and the two drains (shutdown, and store lost). It never imports
 * from src/.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import {
  CLOSE,
  type HeartbeatBody,
  type HeartbeatResponse,
  type TraceContext,
  type WorkspaceStats,
} from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import { isStoreError } from '../stores/errors.js';
import { newRequestId } from '../stores/ids.js';
import type { Outcome, RequestStore } from '../stores/store.js';
import { attachClientSocket } from './client-socket.js';
import { DAEMON_MODES, type DaemonConnection } from './daemon-conn.js';
import { attachDaemonSocket } from './daemon-socket.js';
import { Dispatcher } from './dispatcher.js';
import { type HeartbeatDeps, httpHeartbeat } from './heartbeat.js';
import type { SocketHost } from './host.js';
import { InstrumentedStore } from './instrumented-store.js';
import { HubMetrics } from './metrics.js';
import { PresenceLoop } from './presence-loop.js';
import { type Relay, withTimeout } from './relay.js';
import { RequestFollow } from './request-follow.js';
import type { HubSettings } from './settings.js';
import { StatsRecorder } from './stats.js';
import { StoreHealth } from './store-health.js';
import { Sweeper } from './sweeper.js';
import { traceReport } from './tracing.js';
import { waitForTerminal } from './waiters.js';

export { MIN_HEARTBEAT_SLICES } from './presence-loop.js';

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
  /** The store, counted: every transition and store_unavailable once (instrumented-store.ts). */
  readonly store: InstrumentedStore;
  readonly relay: Relay;
  readonly settings: HubSettings;
  readonly logger: Logger;
  readonly metrics: HubMetrics;
  readonly dispatcher: Dispatcher;
  readonly sweeper: Sweeper;
  /** Store reachability; while lost, daemons are sent elsewhere (not the shutdown drain). */
  readonly storeHealth: StoreHealth;
  readonly presence: PresenceLoop;
  /** This node's share of the workspace statistics (GET /v1/stats). */
  readonly stats: StatsRecorder;
  #draining = false;
  readonly #heartbeatDeps: HeartbeatDeps;
  /** Long-polls under way; aborted on shutdown so they answer at once. */
  readonly #waits = new AbortController();

  constructor(opts: HubOptions) {
    this.relay = opts.relay;
    this.settings = opts.settings;
    this.logger = opts.logger;
    this.metrics = new HubMetrics(opts.settings.nodeId);
    this.storeHealth = new StoreHealth({
      ping: () => opts.store.ping(),
      lostAfterMs: this.settings.storeLostDrainMs,
      onLost: () => this.#sendDaemonsElsewhere(),
      onBack: () => {},
      logger: this.logger,
    });
    this.stats = new StatsRecorder({
      store: opts.store,
      logger: this.logger,
      clock: opts.store.settings.clock,
    });
    this.store = new InstrumentedStore(
      opts.store,
      {
        transition: (status, n) => this.metrics.transitions.inc({ status }, n),
        unavailable: () => {
          this.metrics.storeErrors.inc();
          this.storeHealth.failed();
        },
      },
      this.stats,
    );
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
    this.presence = new PresenceLoop({
      ...deps,
      settings: this.settings,
      connections: () => this.dispatcher.connections,
    });
    this.#heartbeatDeps = {
      store: this.store,
      metrics: this.metrics,
      settings: this.settings,
      draining: () => this.#draining,
    };
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
    this.stats.start();
    this.sweeper.start();
    this.presence.start();
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
    void this.presence.opened(conn);
    void this.dispatcher.pump(conn.rt, 'connect');
  }

  daemonClosed(conn: DaemonConnection): void {
    this.metrics.sockets.dec({ kind: 'daemon' });
    this.dispatcher.remove(conn);
    // Requests pushed to this socket stay running: their leases survive a reconnect, and
    // the daemon may report them on another connection with the same epoch.
    void this.presence.closed(conn);
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

  waitForTerminal(rt: RuntimeRef, id: string, waitMs: number): Promise<RequestRecord | null> {
    return waitForTerminal(this.store, this.relay, rt, id, waitMs, this.#waits.signal);
  }

  /** Follows a request's states and output from `after` (the SSE route); null: no such request. */
  followRequest(rt: RuntimeRef, id: string, after: number): Promise<RequestFollow | null> {
    const max = this.settings.maxSocketBufferBytes;
    return RequestFollow.open(this.store, this.relay, rt, id, after, max, this.#waits.signal);
  }

  /**
   * Stores a daemon's HTTP result. Slots on this node's sockets are freed by the update
   * hint (the report came over HTTP or from another node).
   */
  async report(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    trace?: TraceContext,
  ): Promise<RequestRecord> {
    const report = async () => ({ record: await this.store.report(rt, id, epoch, outcome) });
    return (await traceReport(this.settings.nodeId, id, epoch, trace, report)).record;
  }

  async reportFromSocket(
    conn: DaemonConnection,
    id: string,
    epoch: number,
    outcome: Outcome,
    trace?: TraceContext,
  ): Promise<() => void> {
    const ticket = this.dispatcher.beforeReport(conn, id, epoch);
    const next = { connectionId: conn.id, nodeId: this.settings.nodeId, max: ticket.max };
    let claimed: RequestRecord[];
    try {
      ({ claimed } = await traceReport(this.settings.nodeId, id, epoch, trace, () =>
        this.store.reportAndClaim(conn.rt, id, epoch, outcome, next),
      ));
    } catch (err) {
      if (ticket.max > 0 && isStoreError(err, 'store_unavailable'))
        this.dispatcher.reportLost(conn);
      throw err;
    }
    return () => this.dispatcher.reported(conn, id, epoch, ticket, claimed);
  }

  settled(conn: DaemonConnection, id: string, epoch: number): void {
    this.dispatcher.settled(conn, id, epoch);
  }

  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.store.renew(rt, id, epoch);
  }

  /** GET /v1/stats: the workspace's last 15 minutes, merged from every node's flushes. */
  workspaceStats(workspace: string): Promise<WorkspaceStats> {
    return this.stats.read(workspace);
  }

  /** The HTTP heartbeat: liveness, leases, then claims (heartbeat.ts). */
  heartbeat(rt: RuntimeRef, daemonSub: string, body: HeartbeatBody): Promise<HeartbeatResponse> {
    return httpHeartbeat(this.#heartbeatDeps, rt, daemonSub, body);
  }

  async ready(): Promise<{ ok: boolean; checks: Record<string, boolean | string> }> {
    let store: boolean | string = true;
    try {
      await withTimeout(this.store.inner.ping(), READY_PING_MS, 'store ping');
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
    this.presence.stop();
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
    this.presence.stop();
    this.#waits.abort();
    await this.stats.stop();
  }
}
