/**
 * The RequestStore contract: every transition of the request state machine
 * (DESIGN.md section 2), each one atomic. MemoryStore and RedisStore implement it and
 * one contract suite (test/stores/contract.test.ts) holds both to it.
 *
 * Semantics both implementations share:
 * - Lazy expiry: every call that reads or writes a record first applies any timeout
 *   that is due for it (pending deadline -> timeout `pending_timeout`; lease expired ->
 *   requeue at the front when attempt < max_attempts, else timeout `lease_expired`).
 * - Pending order: priority 9 first; within a priority, requeued requests first (in id
 *   order), then by creation (ids are ULIDs, so id order is creation order).
 * - epoch +1 at every claim, release and lease-expiry requeue. attempt +1 at every
 *   claim; release gives the attempt back (the request never reached a daemon).
 * - A requeue resets the pending deadline to now + pending_timeout_ms.
 * - Terminal records are kept for `retentionMs` after finished_at, then removed.
 * - Ordering keys: a keyed request joins its key's line (per runtime, creation order);
 *   only the line's head is claimable, the rest are pending but held (they count as
 *   pending and may time out). A head that becomes terminal leaves the line and the next
 *   one becomes claimable in the same step (with a wake-up); a requeued head stays the
 *   head. Priority orders the heads; it never reorders a line.
 * - Every transition publishes an update hint (hints.ts) on the runtime's `updates` channel;
 *   create, release and requeue also publish on its `wake` channel.
 */

import type {
  CreateRequestBody,
  ErrorInfo,
  RuntimeInfo,
  Status,
  TraceContext,
} from '../protocol/index.js';
import type { ConnectionInfo, RequestRecord, RuntimeRef } from './domain.js';
import type { StoreError } from './errors.js';
import type { CreateRate } from './rate.js';
import type { StatsBucket, StatsWrite } from './stats.js';

export interface StoreSettings {
  /** Key and channel prefix (HUB_PREFIX). */
  prefix: string;
  pendingTimeoutMs: number;
  leaseMs: number;
  retentionMs: number;
  /** How long an idempotency key maps to its request. */
  idempotencyTtlMs: number;
  /** Most output chunks one request may store (MAX_OUTPUT_CHUNKS). */
  maxOutputChunks: number;
  /** Most output bytes (serialised JSON of each chunk's data) per request (MAX_OUTPUT_BYTES). */
  maxOutputBytes: number;
  /** Most pending requests per runtime (MAX_PENDING_PER_RUNTIME); a create past it is refused whole. */
  maxPendingPerRuntime: number;
  /** Creates per second per workspace (CREATE_RATE_PER_WORKSPACE); null: no limit. */
  createRate: CreateRate | null;
  /**
   * Clock override in epoch ms, for tests that step time. Unset: MemoryStore uses
   * Date.now(); RedisStore uses Redis TIME inside its scripts (one clock for all nodes).
   */
  clock?: () => number;
}

export const DEFAULT_STORE_SETTINGS: StoreSettings = {
  prefix: 'sb',
  pendingTimeoutMs: 60_000,
  leaseMs: 30_000,
  retentionMs: 3_600_000,
  idempotencyTtlMs: 86_400_000,
  maxOutputChunks: 10_000,
  maxOutputBytes: 16 * 1024 * 1024,
  maxPendingPerRuntime: 100_000,
  createRate: null,
};

export interface CreateOptions {
  createdBy: string;
  /** Same key + same body: the existing request (created=false); other body: conflict. */
  idempotencyKey?: string;
  /** The create's trace context, kept on the record (nothing is stored without one). */
  trace?: TraceContext;
}

export interface CreateResult {
  request: RequestRecord;
  created: boolean;
}

export interface ClaimOptions {
  connectionId: string;
  nodeId: string;
  /** Claim at most this many (0 claims nothing). */
  max: number;
}

export interface ListOptions {
  status?: Status;
  /** 1..500 */
  limit: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string;
  /**
   * List this key's line instead: its live requests in line order (head first); the
   * cursor is then a position in the line (the digits of a previous `next_cursor`).
   */
  ordering_key?: string;
}

export interface ListResult {
  /** Newest first (by ordering key: line order). */
  requests: RequestRecord[];
  next_cursor: string | null;
}

export interface ExpireResult {
  /** Ids moved to `timeout` by this call. */
  timedOut: string[];
  /** Ids whose lease expired and went back to pending. */
  requeued: string[];
  /** Terminal records removed after retention. */
  purged: number;
  /** Stale connections removed (their node stopped refreshing them). */
  staleConnections: number;
  /** Pending + running after the call. */
  live: number;
  /** Terminal records still retained after the call. */
  retained: number;
  /** Pending requests after the call (held ones of ordering keys included). */
  pending: number;
  /** Of them, the claimable ones: all but the held ones of ordering keys. */
  claimable: number;
  /**
   * When the oldest of them was created (epoch ms; a requeued request counts from its
   * creation), null when none is pending: the backlog age of the runtime.
   */
  oldestPendingAt: number | null;
  /** Daemon connections (websockets) present after the call. */
  connections: number;
}

export interface ConnectionPresence extends ConnectionInfo {
  /** Presence lapses unless refreshed before this (epoch ms). */
  expires_at: number;
}

export interface ReportResult {
  record: RequestRecord;
  claimed: RequestRecord[];
}

/** One chunk a daemon writes: its number within the attempt and its data as JSON text. */
export interface OutputWrite {
  seq: number;
  /** JSON text (validated by the caller); its UTF-8 length counts toward the byte limit. */
  data: string;
}

/** One stored chunk. */
export interface StoredChunk {
  offset: number;
  epoch: number;
  /** JSON text. */
  data: string;
}

export interface OutputResult {
  epoch: number;
  /** Every seq of this attempt up to this one is stored. */
  acked_seq: number;
  /** The chunks this call stored (not the ones it found already stored). */
  stored: StoredChunk[];
  /**
   * Set when a chunk was refused; the ones before it were stored. `output_limit`: it
   * would cross MAX_OUTPUT_CHUNKS or MAX_OUTPUT_BYTES; `seq_gap`: its seq skips one.
   */
  refused?: 'output_limit' | 'seq_gap';
}

export interface OutputRead {
  chunks: StoredChunk[];
  /** The offset to read after next time (the last chunk's, or `after` when none). */
  next_after: number;
  /** The request is terminal and no chunk past next_after exists. */
  done: boolean;
}

export type Outcome =
  | { status: 'completed'; result: unknown }
  | { status: 'failed'; error: ErrorInfo };

export interface RequestStore {
  readonly kind: 'memory' | 'redis';
  readonly settings: Readonly<StoreSettings>;

  /** Create one request (pending). Rejects `idempotency_conflict`. */
  create(rt: RuntimeRef, body: CreateRequestBody, opts: CreateOptions): Promise<CreateResult>;
  /** Create up to 500 requests, all or none. Bodies must already be valid. */
  createBatch(
    rt: RuntimeRef,
    bodies: CreateRequestBody[],
    opts: { createdBy: string; trace?: TraceContext },
  ): Promise<RequestRecord[]>;
  /** Read one record (after lazy expiry); null when it does not exist in this runtime. */
  get(rt: RuntimeRef, id: string): Promise<RequestRecord | null>;
  list(rt: RuntimeRef, opts: ListOptions): Promise<ListResult>;

  /** Claim up to `max` pending requests for a connection, in pending order. */
  claim(rt: RuntimeRef, opts: ClaimOptions): Promise<RequestRecord[]>;
  /** Running at `epoch` -> pending at the front. Rejects not_found / lease_lost. */
  release(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord>;
  /** Running at `epoch`: lease_expires_at = now + lease_ms. Rejects not_found / lease_lost. */
  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord>;
  /**
   * Running at `epoch` -> completed/failed. The same report repeated after acceptance
   * (same epoch, same status) returns the record again; another status after
   * acceptance rejects `already_terminal`; another epoch rejects `lease_lost`.
   */
  report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome): Promise<RequestRecord>;
  /**
   * `report`, then, in the same step, `claim` up to `next.max` for the reporting
   * connection (the slot the result frees, filled without another call). A refused
   * report claims nothing.
   */
  reportAndClaim(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    next?: ClaimOptions,
  ): Promise<ReportResult>;
  /** Pending or running -> cancelled. Rejects not_found / already_terminal. */
  cancel(rt: RuntimeRef, id: string, reason?: string): Promise<RequestRecord>;
  /**
   * Append output chunks of a request running at `epoch` (DESIGN.md section 6), in seq
   * order: a seq already stored for this attempt is skipped (acknowledged again), the
   * next one is stored at the next offset, a later one is refused (`seq_gap`), and so is
   * one past a limit (`output_limit`); the call stops at the first refusal. Rejects
   * not_found, and lease_lost when the request is not running at `epoch`. Publishes one
   * update hint carrying the stored chunks (hints.ts).
   */
  appendOutput(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    writes: OutputWrite[],
  ): Promise<OutputResult>;
  /** Up to `limit` chunks after offset `after`, in order; null when there is no such request. */
  readOutput(
    rt: RuntimeRef,
    id: string,
    opts: { after: number; limit: number },
  ): Promise<OutputRead | null>;
  /** A failed, timed-out or cancelled request -> a new pending clone. */
  retry(rt: RuntimeRef, id: string, opts: { createdBy: string }): Promise<RequestRecord>;
  /** The sweeper's transition for one runtime: deadlines, leases, retention, stale conns. */
  expire(rt: RuntimeRef): Promise<ExpireResult>;

  /** Register or refresh a daemon connection; also marks the runtime seen. */
  upsertConnection(rt: RuntimeRef, conn: ConnectionInfo, ttlMs: number): Promise<void>;
  /** The same for several connections of one runtime, in one step. */
  upsertConnections(rt: RuntimeRef, conns: ConnectionInfo[], ttlMs: number): Promise<void>;
  removeConnection(rt: RuntimeRef, connectionId: string): Promise<void>;
  /** An HTTP heartbeat: the runtime counts as online for `ttlMs`. */
  recordHeartbeat(rt: RuntimeRef, ttlMs: number): Promise<void>;
  getRuntime(rt: RuntimeRef): Promise<RuntimeInfo | null>;
  listRuntimes(workspace: string): Promise<RuntimeInfo[]>;

  /**
   * How many requests wait in the runtime's pending queue: one plain read, no expiry
   * applied (the sweep's cheap look for work a lost wake-up left waiting).
   */
  pendingCount(rt: RuntimeRef): Promise<number>;
  /**
   * CREATE_RATE_PER_WORKSPACE: the refusal a create of `workspace` would get, when this
   * node already knows it has no token yet (it was refused for want of one, and the
   * token is not due); null when a create may pass, or only the store can tell. Lets a
   * route refuse a flood before reading its bodies.
   */
  rateRefusal(workspace: string): StoreError | null;
  /** Runtimes in a sweep bucket (ones that may have live or retained requests). */
  sweepCandidates(bucket: number): Promise<RuntimeRef[]>;
  /** Drop a runtime from its sweep bucket if it is idle and was not touched lately. */
  forgetIfIdle(rt: RuntimeRef): Promise<boolean>;
  /** Take sweep bucket `bucket` for `ttlMs` if no node holds it. */
  lockBucket(bucket: number, nodeId: string, ttlMs: number): Promise<boolean>;

  /**
   * Add one node's stats to workspace-minute buckets (stores/stats.ts): counts are added
   * to what other nodes wrote, gauges replace it; each bucket written lives
   * STATS_TTL_MS from this write. Rejects store_unavailable.
   */
  recordStats(writes: StatsWrite[]): Promise<void>;
  /** The workspace's buckets of these minutes, in their order ({} for one never written). */
  readStats(workspace: string, minutes: number[]): Promise<StatsBucket[]>;

  /** Probe the store (readiness). Rejects store_unavailable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
