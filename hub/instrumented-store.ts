/**
 * The store as the hub's routes, sockets and loops see it: the same RequestStore, with
 * the node's bookkeeping done here once. Each transition is counted by the status it
 * moved a request into (a create that replays an idempotency key moved nothing); each
 * call that fails with store_unavailable is counted once and asks the health check for
 * an early ping. Nobody else counts either, so nobody can forget to or do it twice.
 *
 * The same goes for the workspace statistics (./stats.ts): creates, terminal transitions
 * with their records, timeouts and the pending count every sweep of a runtime returns
 * go to the stats sink from here.
 *
 * Readiness and health pings go to the inner store: a failed probe is what they report,
 * not a failed call.
 */
import type { CreateRequestBody } from '../protocol/index.js';
import type { ConnectionInfo, RequestRecord, RuntimeRef } from '../stores/domain.js';
import { isStoreError, type StoreError } from '../stores/errors.js';
import type { StatsBucket, StatsWrite } from '../stores/stats.js';
import type {
  ClaimOptions,
  CreateOptions,
  CreateResult,
  ExpireResult,
  ListOptions,
  ListResult,
  Outcome,
  OutputWrite,
  ReportResult,
  RequestStore,
} from '../stores/store.js';
import type { StatsSink } from './stats.js';

export interface StoreCounters {
  /** `n` requests moved into `status`. */
  transition(status: string, n: number): void;
  /** A call failed with store_unavailable. */
  unavailable(): void;
}

export class InstrumentedStore implements RequestStore {
  readonly kind: RequestStore['kind'];
  readonly settings: RequestStore['settings'];

  constructor(
    readonly inner: RequestStore,
    private readonly counters: StoreCounters,
    private readonly stats?: StatsSink,
  ) {
    this.kind = inner.kind;
    this.settings = inner.settings;
  }

  /** `work`, with a store_unavailable rejection counted on its way through. */
  async #call<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if (isStoreError(err, 'store_unavailable')) this.counters.unavailable();
      throw err;
    }
  }

  /** `record` moved into its status; `created`: it is a new request (create, retry). */
  #moved<T extends RequestRecord>(record: T, created = false): T {
    this.counters.transition(record.status, 1);
    if (created) this.stats?.created(record.workspace, 1);
    else if (record.finished_at !== null) this.stats?.finished(record);
    return record;
  }

  async create(rt: RuntimeRef, body: CreateRequestBody, opts: CreateOptions) {
    const out: CreateResult = await this.#call(this.inner.create(rt, body, opts));
    if (out.created) this.#moved(out.request, true);
    return out;
  }

  async createBatch(rt: RuntimeRef, bodies: CreateRequestBody[], opts: { createdBy: string }) {
    const records = await this.#call(this.inner.createBatch(rt, bodies, opts));
    if (records.length) {
      this.counters.transition('pending', records.length);
      this.stats?.created(rt.workspace, records.length);
    }
    return records;
  }

  get(rt: RuntimeRef, id: string): Promise<RequestRecord | null> {
    return this.#call(this.inner.get(rt, id));
  }

  list(rt: RuntimeRef, opts: ListOptions): Promise<ListResult> {
    return this.#call(this.inner.list(rt, opts));
  }

  async claim(rt: RuntimeRef, opts: ClaimOptions): Promise<RequestRecord[]> {
    const claimed = await this.#call(this.inner.claim(rt, opts));
    if (claimed.length) this.counters.transition('running', claimed.length);
    return claimed;
  }

  async release(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#moved(await this.#call(this.inner.release(rt, id, epoch)));
  }

  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#call(this.inner.renew(rt, id, epoch));
  }

  async report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome) {
    return this.#moved(await this.#call(this.inner.report(rt, id, epoch, outcome)));
  }

  async reportAndClaim(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    next?: ClaimOptions,
  ): Promise<ReportResult> {
    const out = await this.#call(this.inner.reportAndClaim(rt, id, epoch, outcome, next));
    this.#moved(out.record);
    if (out.claimed.length) this.counters.transition('running', out.claimed.length);
    return out;
  }

  async cancel(rt: RuntimeRef, id: string, reason?: string): Promise<RequestRecord> {
    return this.#moved(await this.#call(this.inner.cancel(rt, id, reason)));
  }

  appendOutput(rt: RuntimeRef, id: string, epoch: number, writes: OutputWrite[]) {
    return this.#call(this.inner.appendOutput(rt, id, epoch, writes));
  }

  readOutput(rt: RuntimeRef, id: string, opts: { after: number; limit: number }) {
    return this.#call(this.inner.readOutput(rt, id, opts));
  }

  async retry(rt: RuntimeRef, id: string, opts: { createdBy: string }): Promise<RequestRecord> {
    return this.#moved(await this.#call(this.inner.retry(rt, id, opts)), true);
  }

  async expire(rt: RuntimeRef): Promise<ExpireResult> {
    const out = await this.#call(this.inner.expire(rt));
    if (out.timedOut.length) {
      this.counters.transition('timeout', out.timedOut.length);
      this.stats?.timedOut(rt.workspace, out.timedOut.length);
    }
    if (out.requeued.length) this.counters.transition('pending', out.requeued.length);
    this.stats?.pending(rt, out.pending);
    return out;
  }

  upsertConnection(rt: RuntimeRef, conn: ConnectionInfo, ttlMs: number): Promise<void> {
    return this.#call(this.inner.upsertConnection(rt, conn, ttlMs));
  }

  upsertConnections(rt: RuntimeRef, conns: ConnectionInfo[], ttlMs: number): Promise<void> {
    return this.#call(this.inner.upsertConnections(rt, conns, ttlMs));
  }

  removeConnection(rt: RuntimeRef, connectionId: string): Promise<void> {
    return this.#call(this.inner.removeConnection(rt, connectionId));
  }

  recordHeartbeat(rt: RuntimeRef, ttlMs: number): Promise<void> {
    return this.#call(this.inner.recordHeartbeat(rt, ttlMs));
  }

  getRuntime(rt: RuntimeRef) {
    return this.#call(this.inner.getRuntime(rt));
  }

  listRuntimes(workspace: string) {
    return this.#call(this.inner.listRuntimes(workspace));
  }

  rateRefusal(workspace: string): StoreError | null {
    return this.inner.rateRefusal(workspace);
  }

  pendingCount(rt: RuntimeRef): Promise<number> {
    return this.#call(this.inner.pendingCount(rt));
  }

  sweepCandidates(bucket: number): Promise<RuntimeRef[]> {
    return this.#call(this.inner.sweepCandidates(bucket));
  }

  forgetIfIdle(rt: RuntimeRef): Promise<boolean> {
    return this.#call(this.inner.forgetIfIdle(rt));
  }

  lockBucket(bucket: number, nodeId: string, ttlMs: number): Promise<boolean> {
    return this.#call(this.inner.lockBucket(bucket, nodeId, ttlMs));
  }

  recordStats(writes: StatsWrite[]): Promise<void> {
    return this.#call(this.inner.recordStats(writes));
  }

  readStats(workspace: string, minutes: number[]): Promise<StatsBucket[]> {
    return this.#call(this.inner.readStats(workspace, minutes));
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
