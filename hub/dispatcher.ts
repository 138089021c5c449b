/**
 * The dispatcher owns this node's daemon connections, grouped by runtime, and moves
 * pending work onto them. Claims happen only here, on the node holding the socket, for
 * one connection at a time and never beyond its free capacity. Every way work is found
 * funnels into `pump(runtime, path)`: a wake-up hint (push), a daemon becoming ready
 * (connect), a result freeing capacity (result), the periodic re-check (sweep) and the
 * relay coming back (reconnect). Pumps of one runtime never overlap; a pump requested
 * while one runs makes it go round once more.
 *
 * An id is held by at most one epoch that is current; every local holder of an older
 * epoch (another socket, or the same one before a re-claim) is told `lease_lost` and
 * gets its slot back, when the newer claim is pushed here or its hint arrives.
 */
import type { Logger } from 'pino';
import { type RequestRecord, type RuntimeRef, toDaemonRequest } from '../stores/domain.js';
import { parseHint, type UpdateHint } from '../stores/hints.js';
import { type RuntimeKeys, runtimeKeys } from '../stores/keys.js';
import type { RequestStore } from '../stores/store.js';
import { DAEMON_MODES, type DaemonConnection, SEND } from './daemon-conn.js';
import type { ClaimPath, HubMetrics } from './metrics.js';
import type { Relay } from './relay.js';
import { claimSpan, endSpan, wireTrace } from './tracing.js';

/** Runtimes pumped at once by the periodic and reconnect re-checks. */
export const PUMP_ALL_CHUNK = 32;

interface LocalRuntime {
  rt: RuntimeRef;
  keys: RuntimeKeys;
  conns: Set<DaemonConnection>;
  unsubscribe: (() => void)[];
  pumping: Promise<void> | null;
  again: ClaimPath | null;
  /** Wake-ups heard so far: a report that claimed sees whether one came meanwhile. */
  wakes: number;
  /**
   * A claim may have run in Redis without its reply reaching us (the connection dropped
   * mid-call): the next pump first looks for such orphans.
   */
  suspect: boolean;
}

/** What a socket's report may claim, and the runtime's wake count before it ran. */
export interface ReportTicket {
  max: number;
  wakes: number;
}

export interface DispatcherDeps {
  store: RequestStore;
  relay: Relay;
  nodeId: string;
  metrics: HubMetrics;
  logger: Logger;
}

export class Dispatcher {
  readonly #runtimes = new Map<string, LocalRuntime>();
  constructor(private readonly deps: DispatcherDeps) {}

  get connections(): DaemonConnection[] {
    return [...this.#runtimes.values()].flatMap((r) => [...r.conns]);
  }

  /** Starts tracking a connection; subscribes to its runtime's hints on the first one. */
  add(conn: DaemonConnection): void {
    let local = this.#runtimes.get(conn.tag);
    if (!local) {
      const keys = runtimeKeys(this.deps.store.settings.prefix, conn.rt);
      const entry: LocalRuntime = {
        rt: conn.rt,
        keys,
        conns: new Set(),
        unsubscribe: [],
        pumping: null,
        again: null,
        wakes: 0,
        suspect: false,
      };
      entry.unsubscribe.push(
        this.deps.relay.subscribe(keys.wake, () => {
          entry.wakes++;
          void this.pump(conn.rt, 'push');
        }),
        this.deps.relay.subscribe(keys.updates, (m) => this.#onUpdate(entry, m)),
      );
      this.#runtimes.set(conn.tag, entry);
      local = entry;
    }
    local.conns.add(conn);
  }

  /** Stops tracking a closed connection; unsubscribes when it was the runtime's last. */
  remove(conn: DaemonConnection): void {
    const local = this.#runtimes.get(conn.tag);
    if (!local?.conns.delete(conn)) return;
    if (local.conns.size === 0) {
      for (const off of local.unsubscribe) off();
      this.#runtimes.delete(conn.tag);
    }
  }

  /** Claims and pushes work for one runtime until its local capacity or queue runs out. */
  pump(rt: RuntimeRef, path: ClaimPath): Promise<void> {
    const local = this.#runtimes.get(runtimeKeys(this.deps.store.settings.prefix, rt).tag);
    if (!local) return Promise.resolve();
    if (local.pumping) {
      local.again = path;
      return local.pumping;
    }
    local.pumping = (async () => {
      let next: ClaimPath | null = path;
      while (next) {
        local.again = null;
        if (local.suspect) await this.#adoptOrphans(local);
        await this.#fill(local, next);
        next = local.again;
      }
    })()
      .catch((err) => {
        local.suspect = true;
        this.#storeFailure(err, 'pump');
      })
      .finally(() => {
        local.pumping = null;
        // A pump asked for after the loop's last look would otherwise wait for the sweep.
        const again = local.again;
        local.again = null;
        if (again && this.#runtimes.get(local.keys.tag) === local) void this.pump(local.rt, again);
      });
    return local.pumping;
  }

  /**
   * Pumps every local runtime with free capacity (the timer and reconnect fallbacks),
   * but those `covered` otherwise (the sweep pass of their bucket ran here). After a
   * reconnect every runtime is suspect: claims made while the connection broke may
   * have lost their replies.
   */
  async pumpAll(path: ClaimPath, covered?: (rt: RuntimeRef) => boolean): Promise<void> {
    const all = [...this.#runtimes.values()];
    if (path === 'reconnect') for (const r of all) r.suspect = true;
    const due = all.filter(
      (r) => r.suspect || (!covered?.(r.rt) && [...r.conns].some((c) => c.free > 0)),
    );
    // A chunk at a time: a new request's claim never queues behind thousands of these.
    for (let i = 0; i < due.length; i += PUMP_ALL_CHUNK) {
      await Promise.all(
        due.slice(i, i + PUMP_ALL_CHUNK).map(async (r) => {
          // The timer's look: a plain count first, so an idle runtime costs one read
          // rather than a claim script (a suspect one is pumped: it must adopt orphans).
          if (path === 'sweep' && !r.suspect && !(await this.#hasPending(r))) return;
          await this.pump(r.rt, path);
        }),
      );
    }
  }

  async #hasPending(local: LocalRuntime): Promise<boolean> {
    try {
      return (await this.deps.store.pendingCount(local.rt)) > 0;
    } catch (err) {
      this.#storeFailure(err, 'pending count');
      return false;
    }
  }

  /**
   * Running requests claimed for one of this node's sockets that the socket never got:
   * the claim ran but its reply was lost, so nothing was written and they are pushed now.
   * Runs inside the runtime's pump, so no claim of ours is in flight meanwhile.
   */
  async #adoptOrphans(local: LocalRuntime): Promise<void> {
    const conns = new Map([...local.conns].map((c) => [c.id, c]));
    const { requests } = await this.deps.store.list(local.rt, { status: 'running', limit: 500 });
    for (const record of requests) {
      const conn = record.connection_id === null ? undefined : conns.get(record.connection_id);
      if (!conn || conn.inFlight.has(record.id)) continue;
      this.deps.metrics.claimed('reconnect', [record]);
      void this.#deliver(local, conn, record, 'reconnect');
    }
    local.suspect = false;
  }

  /** A socket's result for a request it holds at `epoch`: frees the slot, pulls the next. */
  settled(conn: DaemonConnection, id: string, epoch: number): void {
    if (conn.inFlight.get(id) !== epoch) return;
    conn.inFlight.delete(id);
    void this.pump(conn.rt, 'result');
  }

  /**
   * A socket's result is about to be stored: the report may claim the slot it frees
   * (when the socket could take one more), and `wakes` marks what was heard so far.
   */
  beforeReport(conn: DaemonConnection, id: string, epoch: number): ReportTicket {
    const local = this.#runtimes.get(conn.tag);
    return { max: Math.min(1, conn.freeAfter(id, epoch)), wakes: local?.wakes ?? 0 };
  }

  /**
   * The report is acked: the slot is freed and what the report claimed is pushed. The
   * queue is pumped only when the report did not look at it (it claimed nothing by
   * design), or a wake-up came after it looked: otherwise the queue held nothing more
   * for this slot when the report ran, and a claim now would find nothing either.
   */
  reported(
    conn: DaemonConnection,
    id: string,
    epoch: number,
    ticket: ReportTicket,
    claimed: RequestRecord[],
  ) {
    if (conn.inFlight.get(id) === epoch) conn.inFlight.delete(id);
    const local = this.#runtimes.get(conn.tag);
    if (!local) {
      // The socket closed meanwhile, the runtime's last here: what came is given back.
      for (const record of claimed) void this.#release(conn, record);
      return;
    }
    this.deps.metrics.claimed('result', claimed);
    for (const record of claimed) {
      // An orphan adoption may have pushed it already (it reads running claims).
      if (conn.inFlight.get(record.id) !== record.epoch) {
        void this.#deliver(local, conn, record, 'result');
      }
    }
    if (ticket.max === 0 || local.wakes !== ticket.wakes) void this.pump(conn.rt, 'result');
  }

  /** A report that was to claim failed unanswered: its claim may have run. */
  reportLost(conn: DaemonConnection): void {
    const local = this.#runtimes.get(conn.tag);
    if (local) local.suspect = true;
  }

  /**
   * Claims for the connection with the most free capacity until none is left. A socket
   * that is not open has none (DaemonConnection.free), so a claim released for a
   * closing socket is not claimed for it again.
   */
  async #fill(local: LocalRuntime, path: ClaimPath): Promise<void> {
    for (;;) {
      const conn = [...local.conns].sort((a, b) => b.free - a.free)[0];
      if (!conn || conn.free === 0) return;
      const claimed = await this.deps.store.claim(local.rt, {
        connectionId: conn.id,
        nodeId: this.deps.nodeId,
        max: conn.free,
      });
      if (claimed.length === 0) return;
      this.deps.metrics.claimed(path, claimed);
      for (const record of claimed) void this.#deliver(local, conn, record, path);
    }
  }

  /**
   * Pushes one claimed request. Released only when nothing was written (the socket was
   * already gone, or refused it as over its buffer cap): once bytes may have left, the
   * daemon may be running it, so a failed write leaves the request to its lease (a
   * release could run it twice). Runs synchronously up to the send, so the slot is taken
   * before the pump looks at free capacity again.
   */
  async #deliver(
    local: LocalRuntime,
    conn: DaemonConnection,
    record: RequestRecord,
    path: ClaimPath,
  ) {
    if (conn.mode === DAEMON_MODES.ready && conn.open) {
      this.#supersede(local, record.id, record.epoch);
      conn.inFlight.set(record.id, record.epoch);
      const since = record.created_at;
      const span = claimSpan(record, path, this.deps.nodeId, conn.id);
      const request = toDaemonRequest(record, wireTrace(span));
      const sent = await conn.push({ type: 'request', request });
      endSpan(span, sent === SEND.written ? undefined : `push ${sent}`);
      if (sent === SEND.written) {
        this.deps.metrics.dispatchLatency.observe(Math.max(0, Date.now() - since) / 1000);
        return;
      }
      if (sent === SEND.failed) {
        this.deps.logger.warn({ id: record.id }, 'push failed mid-write; the lease decides');
        return;
      }
      if (conn.inFlight.get(record.id) === record.epoch) conn.inFlight.delete(record.id);
    }
    await this.#release(conn, record);
  }

  async #release(conn: DaemonConnection, record: RequestRecord): Promise<void> {
    this.deps.metrics.released.inc();
    try {
      await this.deps.store.release(conn.rt, record.id, record.epoch);
    } catch (err) {
      // Not released: the lease will expire and the sweeper requeues it.
      this.#storeFailure(err, 'release');
    }
  }

  /**
   * After the relay reconnects, update hints may have been lost: read every in-flight
   * request again, so a daemon still hears of a cancel or a lost lease.
   */
  async recheckInFlight(): Promise<void> {
    const checks = [...this.#runtimes.values()].flatMap((local) =>
      [...new Set([...local.conns].flatMap((conn) => [...conn.inFlight.keys()]))].map(
        async (id) => {
          const r = await this.deps.store.get(local.rt, id);
          this.#reconcile(
            local,
            // A record gone (purged) is no longer anyone's: an epoch above any held one.
            r
              ? { id, status: r.status, epoch: r.epoch }
              : { id, status: 'timeout', epoch: Number.MAX_SAFE_INTEGER },
          );
        },
      ),
    );
    await Promise.all(checks).catch((err) => this.#storeFailure(err, 'recheck'));
  }

  #onUpdate(local: LocalRuntime, message: string): void {
    const hint = parseHint(message, false);
    if (hint) this.#reconcile(local, hint);
  }

  /**
   * A state change of a local runtime: tell every local socket holding the id about
   * work it no longer holds (several may, at different epochs).
   */
  #reconcile(local: LocalRuntime, hint: UpdateHint): void {
    let freed = false;
    for (const conn of local.conns) {
      const epoch = conn.inFlight.get(hint.id);
      if (epoch === undefined) continue;
      // Older than the claim this socket holds, or that claim itself: nothing changed.
      if (hint.epoch < epoch || (hint.status === 'running' && hint.epoch === epoch)) continue;
      // This socket's own result at its epoch: the socket handler frees the slot after the ack.
      const ownResult = hint.status === 'completed' || hint.status === 'failed';
      if (ownResult && hint.epoch === epoch && conn.reporting.has(hint.id)) continue;
      conn.inFlight.delete(hint.id);
      freed = true;
      if (hint.status === 'cancelled') void conn.send({ type: 'cancel', id: hint.id, epoch });
      else if (hint.status === 'pending' || hint.status === 'timeout' || hint.epoch !== epoch) {
        void conn.send({ type: 'lease_lost', id: hint.id, epoch });
      }
    }
    if (freed) void this.pump(local.rt, 'result');
  }

  /**
   * `id` is about to be pushed here at `epoch`: every local socket holding it at an
   * older epoch (the same socket included) lost that lease, and hears so first. The
   * caller is a pump, which looks at the freed capacity next.
   */
  #supersede(local: LocalRuntime, id: string, epoch: number): void {
    for (const conn of local.conns) {
      const held = conn.inFlight.get(id);
      if (held === undefined || held >= epoch) continue;
      conn.inFlight.delete(id);
      void conn.send({ type: 'lease_lost', id, epoch: held });
    }
  }

  #storeFailure(err: unknown, what: string): void {
    this.deps.logger.warn({ err, what }, 'dispatch step failed; the sweep will retry');
  }
}
