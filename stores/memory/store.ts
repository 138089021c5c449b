/**
 * MemoryStore: the embedded, single-process RequestStore (no REDIS_URL). It owns every
 * runtime's records, queues and presence, the workspace runtime lists, the sweep buckets
 * and their locks, all in this process. Each call is one synchronous critical section
 * (nothing is awaited between a check and its write), so a call is as atomic as a Lua
 * script; hints go out on the bus once the call's state change is complete.
 */

import {
  type CreateRequestBody,
  RETRYABLE,
  type RuntimeInfo,
  TERMINAL,
  type TraceContext,
} from '../../protocol/index.js';
import { type Bus, MemoryBus } from '../bus.js';
import type { ConnectionInfo, RequestRecord, RuntimeRef } from '../domain.js';
import { pendingLimitError, rateLimitError, StoreError } from '../errors.js';
import { bodyFingerprint } from '../ids.js';
import { type Bucket, bucketTtlMs, oneTokenWait, takeTokens } from '../rate.js';
import type { StatsBucket, StatsWrite } from '../stats.js';
import {
  type ClaimOptions,
  type CreateOptions,
  type CreateResult,
  DEFAULT_STORE_SETTINGS,
  type ExpireResult,
  type ListOptions,
  type ListResult,
  type Outcome,
  type OutputRead,
  type OutputResult,
  type OutputWrite,
  type ReportResult,
  type RequestStore,
  type StoreSettings,
} from '../store.js';
import { validateBodies } from '../validate.js';
import * as presence from './presence.js';
import {
  beginTxn,
  copyRecord,
  newRecord,
  type RuntimeState,
  type Txn,
  templateFromBody,
} from './state.js';
import { MemoryStats } from './stats.js';
import { RuntimeTable } from './table.js';
import * as step from './transitions.js';

/** A runtime untouched this long, with no records left, leaves its sweep bucket. */
const IDLE_FORGET_MS = 10 * 60_000;

export type MemoryStoreOptions = Partial<StoreSettings> & { bus?: Bus };

export class MemoryStore implements RequestStore {
  readonly kind = 'memory' as const;
  readonly settings: Readonly<StoreSettings>;
  readonly bus: Bus;
  readonly #table: RuntimeTable;
  /** CREATE_RATE_PER_WORKSPACE buckets, by workspace (workspaces come from signed tokens). */
  readonly #rates = new Map<string, Bucket>();
  readonly #stats: MemoryStats;

  constructor(options: MemoryStoreOptions = {}) {
    const { bus, ...overrides } = options;
    // An explicit `undefined` must not erase a default.
    const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
    this.settings = Object.freeze({ ...DEFAULT_STORE_SETTINGS, ...given });
    this.bus = bus ?? new MemoryBus();
    this.#table = new RuntimeTable(this.settings.prefix);
    this.#stats = new MemoryStats(this.settings.prefix);
  }

  async create(
    rt: RuntimeRef,
    body: CreateRequestBody,
    opts: CreateOptions,
  ): Promise<CreateResult> {
    return this.#transact(rt, true, (tx) => {
      this.#takeRate(tx, 1);
      const key = opts.idempotencyKey;
      const fingerprint = key === undefined ? '' : bodyFingerprint(body);
      if (key !== undefined) {
        const existing = this.#idempotent(tx, key, fingerprint);
        if (existing) return { request: copyRecord(existing), created: false };
      }
      const [valid] = validateBodies([body]) as [CreateRequestBody];
      this.#checkPending(tx, 1);
      const template = templateFromBody(valid, this.settings);
      const record = newRecord(tx, template, opts.createdBy, null, opts.trace ?? null);
      step.insertPending(tx, record);
      if (key !== undefined) {
        const expires_at = tx.now + this.settings.idempotencyTtlMs;
        tx.state.idempotency.set(key, { id: record.id, fingerprint, expires_at });
      }
      this.#touch(tx);
      return { request: copyRecord(record), created: true };
    });
  }

  async createBatch(
    rt: RuntimeRef,
    bodies: CreateRequestBody[],
    opts: { createdBy: string; trace?: TraceContext },
  ): Promise<RequestRecord[]> {
    return this.#transact(rt, true, (tx) => {
      // Validate and build every record before storing any: nothing is half inserted.
      const valid = validateBodies(bodies);
      this.#takeRate(tx, valid.length);
      this.#checkPending(tx, valid.length);
      const trace = opts.trace ?? null;
      const records = valid.map((b) =>
        newRecord(tx, templateFromBody(b, this.settings), opts.createdBy, null, trace),
      );
      for (const r of records) step.insertPending(tx, r);
      if (records.length > 0) this.#touch(tx);
      return records.map(copyRecord);
    });
  }

  async get(rt: RuntimeRef, id: string): Promise<RequestRecord | null> {
    return this.#transact(rt, false, (tx) => {
      const r = step.loadRecord(tx, id);
      return r ? copyRecord(r) : null;
    });
  }

  async list(rt: RuntimeRef, opts: ListOptions): Promise<ListResult> {
    return this.#transact(rt, false, (tx) => {
      step.expireDue(tx);
      step.purgeRetained(tx);
      return step.listPage(tx, opts);
    });
  }

  async claim(rt: RuntimeRef, opts: ClaimOptions): Promise<RequestRecord[]> {
    return this.#transact(rt, false, (tx) => {
      // Expired leases go back to the front first, so this claim can take them.
      step.expireDue(tx);
      return step.claimUpTo(tx, opts);
    });
  }

  async release(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#transact(rt, false, (tx) => {
      const r = step.requireRecord(tx, id);
      if (r.status !== 'running' || r.epoch !== epoch) throw new StoreError('lease_lost');
      // The request never reached a daemon: the attempt is given back.
      r.attempt -= 1;
      step.toFront(tx, r);
      return copyRecord(r);
    });
  }

  async renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#transact(rt, false, (tx) => {
      const r = step.requireRecord(tx, id);
      if (r.status !== 'running' || r.epoch !== epoch) throw new StoreError('lease_lost');
      step.renewLease(tx, r);
      return copyRecord(r);
    });
  }

  async report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome) {
    return (await this.reportAndClaim(rt, id, epoch, outcome)).record;
  }

  async reportAndClaim(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    next?: ClaimOptions,
  ): Promise<ReportResult> {
    return this.#transact(rt, false, (tx) => {
      const r = step.requireRecord(tx, id);
      if (r.epoch !== epoch || r.status === 'pending') throw new StoreError('lease_lost');
      if (r.status === 'running') {
        step.finish(tx, r, step.outcomeToFinish(outcome));
      } else if (r.status !== outcome.status) {
        // Terminal at this epoch: only a repeat of the accepted report succeeds again.
        throw new StoreError('already_terminal');
      }
      const record = copyRecord(r);
      if (!next || next.max <= 0) return { record, claimed: [] };
      step.expireDue(tx);
      return { record, claimed: step.claimUpTo(tx, next) };
    });
  }

  async cancel(rt: RuntimeRef, id: string, reason?: string): Promise<RequestRecord> {
    return this.#transact(rt, false, (tx) => {
      const r = step.requireRecord(tx, id);
      if (TERMINAL.has(r.status)) throw new StoreError('already_terminal');
      const message = reason ?? 'cancelled by client';
      step.finish(tx, r, { status: 'cancelled', error: { code: 'cancelled', message } });
      return copyRecord(r);
    });
  }

  async appendOutput(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    writes: OutputWrite[],
  ): Promise<OutputResult> {
    return this.#transact(rt, false, (tx) => {
      const r = step.requireRecord(tx, id);
      if (r.status !== 'running' || r.epoch !== epoch) throw new StoreError('lease_lost');
      return step.appendOutput(tx, r, writes, this.settings);
    });
  }

  async readOutput(
    rt: RuntimeRef,
    id: string,
    opts: { after: number; limit: number },
  ): Promise<OutputRead | null> {
    return this.#transact(rt, false, (tx) => {
      const r = step.loadRecord(tx, id);
      return r ? step.readOutput(tx, r, opts.after, opts.limit) : null;
    });
  }

  async retry(rt: RuntimeRef, id: string, opts: { createdBy: string }): Promise<RequestRecord> {
    return this.#transact(rt, false, (tx) => {
      const original = step.requireRecord(tx, id);
      if (!RETRYABLE.has(original.status)) throw new StoreError('not_retryable');
      this.#takeRate(tx, 1);
      this.#checkPending(tx, 1);
      const record = newRecord(tx, original, opts.createdBy, original.id);
      step.insertPending(tx, record);
      this.#touch(tx);
      return copyRecord(record);
    });
  }

  async expire(rt: RuntimeRef): Promise<ExpireResult> {
    return this.#transact(rt, false, (tx) => {
      const { state } = tx;
      step.expireDue(tx);
      const purged = step.purgeRetained(tx);
      step.purgeIdempotency(tx);
      const staleConnections = presence.removeStaleConnections(state, tx.now);
      return {
        timedOut: [...tx.timedOut],
        requeued: [...tx.requeued],
        purged,
        staleConnections,
        // Pending counts held requests of ordering keys: every pending one has a deadline.
        live: state.deadlines.size + state.leases.size,
        retained: state.done.size,
        pending: state.deadlines.size,
        claimable: state.pending.size,
        oldestPendingAt: step.oldestPendingAt(state),
        connections: state.connections.size,
      };
    });
  }

  upsertConnection(rt: RuntimeRef, conn: ConnectionInfo, ttlMs: number): Promise<void> {
    return this.upsertConnections(rt, [conn], ttlMs);
  }

  async upsertConnections(rt: RuntimeRef, conns: ConnectionInfo[], ttlMs: number) {
    if (conns.length === 0) return;
    this.#transact(rt, true, (tx) => {
      for (const conn of conns) presence.upsertConnection(tx.state, conn, ttlMs, tx.now);
    });
  }

  async removeConnection(rt: RuntimeRef, connectionId: string): Promise<void> {
    this.#transact(rt, false, (tx) => tx.state.connections.delete(connectionId));
  }

  async recordHeartbeat(rt: RuntimeRef, ttlMs: number): Promise<void> {
    this.#transact(rt, true, (tx) => presence.recordHeartbeat(tx.state, ttlMs, tx.now));
  }

  async getRuntime(rt: RuntimeRef): Promise<RuntimeInfo | null> {
    const state = this.#table.find(rt);
    return state ? this.#runtimeInfo(state, this.#now()) : null;
  }

  async listRuntimes(workspace: string): Promise<RuntimeInfo[]> {
    const now = this.#now();
    return this.#table.inWorkspace(workspace).map((s) => this.#runtimeInfo(s, now));
  }

  async sweepCandidates(bucket: number): Promise<RuntimeRef[]> {
    return this.#table.candidates(bucket);
  }

  async pendingCount(rt: RuntimeRef): Promise<number> {
    return this.#table.find(rt)?.pending.size ?? 0;
  }

  async forgetIfIdle(rt: RuntimeRef): Promise<boolean> {
    const now = this.#now();
    const touched = this.#table.lastTouched(rt);
    if (touched === undefined || now - touched < IDLE_FORGET_MS) return false;
    const state = this.#table.find(rt);
    if (state) {
      const busy = this.#transactAt(state, now, (tx) => {
        step.purgeRetained(tx);
        return state.records.size > 0;
      });
      if (busy) return false;
      // No request is left, so no idempotency key can still resolve.
      state.idempotency.clear();
    }
    this.#table.dropFromBucket(rt);
    return true;
  }

  async lockBucket(bucket: number, nodeId: string, ttlMs: number): Promise<boolean> {
    return this.#table.lock(bucket, nodeId, ttlMs, this.#now());
  }

  async recordStats(writes: StatsWrite[]): Promise<void> {
    this.#stats.record(writes, this.#now());
  }

  async readStats(workspace: string, minutes: number[]): Promise<StatsBucket[]> {
    return this.#stats.read(workspace, minutes, this.#now());
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  #now(): number {
    return this.settings.clock?.() ?? Date.now();
  }

  /**
   * One call on one runtime, with the clock read once at its start. `keep`: a call that
   * makes the runtime known (create, presence); only once it succeeded, so a refused
   * create leaves no runtime behind.
   */
  #transact<T>(rt: RuntimeRef, keep: boolean, fn: (tx: Txn) => T): T {
    const state = this.#table.state(rt);
    const out = this.#transactAt(state, this.#now(), fn);
    if (keep) this.#table.keep(state);
    return out;
  }

  /** Hints are published even when `fn` throws: lazy timeouts it applied still happened. */
  #transactAt<T>(state: RuntimeState, now: number, fn: (tx: Txn) => T): T {
    const tx = beginTxn(state, now, this.settings.retentionMs);
    try {
      return fn(tx);
    } finally {
      const { keys } = state;
      for (const hint of tx.hints) this.bus.publish(keys.updates, hint);
      if (tx.wake) this.bus.publish(keys.wake, '1');
    }
  }

  #runtimeInfo(state: RuntimeState, now: number): RuntimeInfo {
    return this.#transactAt(state, now, (tx) => {
      step.expireDue(tx);
      return presence.runtimeInfo(state, now);
    });
  }

  /** The live request an idempotency key maps to, if any; conflicts on another body. */
  #idempotent(tx: Txn, key: string, fingerprint: string): RequestRecord | null {
    const entry = tx.state.idempotency.get(key);
    if (!entry || entry.expires_at <= tx.now) return null;
    const existing = step.loadRecord(tx, entry.id);
    if (!existing) return null;
    if (entry.fingerprint !== fingerprint) throw new StoreError('idempotency_conflict');
    return existing;
  }

  /** Mark the runtime as having work, for the sweeper. */
  #touch(tx: Txn): void {
    this.#table.touch(tx.state.ref, tx.now);
  }

  rateRefusal(workspace: string): StoreError | null {
    const limit = this.settings.createRate;
    const bucket = this.#rates.get(workspace);
    if (!limit || !bucket) return null;
    const wait = oneTokenWait(bucket, limit, this.settings.clock?.() ?? Date.now());
    return wait === 0 ? null : rateLimitError(limit, wait);
  }

  /** CREATE_RATE_PER_WORKSPACE: takes n tokens (stores/rate.ts) or refuses. */
  #takeRate(tx: Txn, n: number): void {
    const limit = this.settings.createRate;
    if (!limit || n === 0) return;
    const workspace = tx.state.ref.workspace;
    let bucket = this.#rates.get(workspace);
    if (!bucket || tx.now - bucket.at > bucketTtlMs(limit)) {
      bucket = { tokens: limit.burst, at: tx.now };
      this.#rates.set(workspace, bucket);
    }
    const wait = takeTokens(bucket, limit, n, tx.now);
    if (wait > 0) throw rateLimitError(limit, wait);
  }

  /** MAX_PENDING_PER_RUNTIME: every pending request has a pending deadline. */
  #checkPending(tx: Txn, n: number): void {
    const limit = this.settings.maxPendingPerRuntime;
    if (tx.state.deadlines.size + n > limit) throw pendingLimitError(limit);
  }
}
