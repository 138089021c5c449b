/**
 * The state of one runtime in the memory store, laid out like its Redis keys (records,
 * pending / deadlines / leases / done / ids sorted sets, idempotency keys, presence);
 * the `Txn` that one store call works through; and how new records are built.
 */

import type { CreateRequestBody, TraceContext } from '../../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../domain.js';
import { newRequestId } from '../ids.js';
import { type RuntimeKeys, runtimeKeys } from '../keys.js';
import type { ConnectionPresence, StoredChunk, StoreSettings } from '../store.js';
import { ZSet } from './zset.js';

export interface IdempotencyEntry {
  id: string;
  fingerprint: string;
  expires_at: number;
}

export interface RuntimeState {
  readonly ref: RuntimeRef;
  readonly keys: RuntimeKeys;
  readonly records: Map<string, RequestRecord>;
  /** Pending ids in claim order (score: `pendingScore` in transitions.ts; ties by id). */
  readonly pending: ZSet;
  /** Pending ids by pending deadline. */
  readonly deadlines: ZSet;
  /** Running ids by lease expiry. */
  readonly leases: ZSet;
  /** Terminal ids by finished_at. */
  readonly done: ZSet;
  /** Every live or retained id, all scores 0: id order (newest last). */
  readonly ids: ZSet;
  /** Ordering key -> its line (the key's live ids in creation order); no empty lines. */
  readonly lines: Map<string, Line>;
  readonly idempotency: Map<string, IdempotencyEntry>;
  /** Output of the requests that have any, by id (removed with the record). */
  readonly outputs: Map<string, OutputLog>;
  readonly connections: Map<string, ConnectionPresence>;
  httpExpiresAt: number | null;
  lastSeen: number | null;
}

/**
 * One ordering key's line: its live requests in creation order, each at a position that
 * only grows (`next` is the one the next joiner gets). The first is the head: the only
 * one claimable (or running); the others are pending but held.
 */
export interface Line {
  next: number;
  readonly members: { id: string; pos: number }[];
}

/** A request's stored output and where its writer's numbering stands. */
export interface OutputLog {
  /** chunks[i] has offset i + 1. */
  readonly chunks: StoredChunk[];
  bytes: number;
  /** The epoch of the last stored chunk, and its seq in that attempt. */
  epoch: number;
  seq: number;
}

/** One store call on one runtime: its clock reading and what it has to publish. */
export interface Txn {
  readonly state: RuntimeState;
  readonly now: number;
  readonly retentionMs: number;
  /** Encoded update hints (hints.ts), each taken at its transition. */
  readonly hints: string[];
  wake: boolean;
  readonly timedOut: string[];
  readonly requeued: string[];
}

export function newRuntimeState(prefix: string, ref: RuntimeRef): RuntimeState {
  return {
    ref: { workspace: ref.workspace, runtime: ref.runtime },
    keys: runtimeKeys(prefix, ref),
    records: new Map(),
    pending: new ZSet(),
    deadlines: new ZSet(),
    leases: new ZSet(),
    done: new ZSet(),
    ids: new ZSet(),
    lines: new Map(),
    idempotency: new Map(),
    outputs: new Map(),
    connections: new Map(),
    httpExpiresAt: null,
    lastSeen: null,
  };
}

export function beginTxn(state: RuntimeState, now: number, retentionMs: number): Txn {
  return { state, now, retentionMs, hints: [], wake: false, timedOut: [], requeued: [] };
}

export function copyRecord(r: RequestRecord): RequestRecord {
  return { ...r, error: r.error ? { ...r.error } : null };
}

/** What a new request copies from its create body, or from the request it retries. */
export interface RequestTemplate {
  kind: string;
  payload: string;
  priority: number;
  max_attempts: number;
  lease_ms: number;
  pending_timeout_ms: number;
  ordering_key: string | null;
}

export function templateFromBody(
  body: CreateRequestBody,
  settings: StoreSettings,
): RequestTemplate {
  return {
    kind: body.kind,
    // Kept as JSON text, as the Redis store keeps it.
    payload: JSON.stringify(body.payload ?? null),
    priority: body.priority ?? 0,
    max_attempts: body.max_attempts ?? 1,
    lease_ms: body.lease_ms ?? settings.leaseMs,
    pending_timeout_ms: body.pending_timeout_ms ?? settings.pendingTimeoutMs,
    ordering_key: body.ordering_key ?? null,
  };
}

/** A new pending record (not stored yet). */
export function newRecord(
  tx: Txn,
  t: RequestTemplate,
  createdBy: string,
  retryOf: string | null,
  trace: TraceContext | null = null,
): RequestRecord {
  const { now, state } = tx;
  return {
    id: newRequestId(now),
    workspace: state.ref.workspace,
    runtime: state.ref.runtime,
    kind: t.kind,
    payload: t.payload,
    status: 'pending',
    priority: t.priority,
    attempt: 0,
    max_attempts: t.max_attempts,
    epoch: 0,
    created_at: now,
    claimed_at: null,
    finished_at: null,
    pending_deadline: now + t.pending_timeout_ms,
    lease_expires_at: null,
    lease_ms: t.lease_ms,
    pending_timeout_ms: t.pending_timeout_ms,
    result: null,
    error: null,
    created_by: createdBy,
    connection_id: null,
    node_id: null,
    retry_of: retryOf,
    ordering_key: t.ordering_key,
    trace,
  };
}
