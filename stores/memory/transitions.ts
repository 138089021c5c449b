/**
 * The steps of the request state machine in the memory store, each one a synchronous
 * write to one runtime's state on behalf of a `Txn` (which collects the update and wake
 * hints to publish afterwards). MemoryStore builds every transition from these, so the
 * lazy expiry and the queue bookkeeping live in one place.
 */

import { type ErrorInfo, TERMINAL } from '../../protocol/index.js';
import type { RequestRecord } from '../domain.js';
import { StoreError } from '../errors.js';
import { encodeHint, encodeOutputHint } from '../hints.js';
import type {
  ClaimOptions,
  ListOptions,
  ListResult,
  Outcome,
  OutputRead,
  OutputResult,
  OutputWrite,
  StoredChunk,
} from '../store.js';
import { copyRecord, type RuntimeState, type Txn } from './state.js';

/** Higher priority sorts first; within one, requeued requests before created ones. */
function pendingScore(priority: number, requeued: boolean): number {
  return -2 * priority + (requeued ? 0 : 1);
}

function noteUpdate(tx: Txn, r: RequestRecord): void {
  tx.hints.push(encodeHint(r));
}

/** Put a keyed request at the back of its line; true when it is the head. */
function lineJoin(state: RuntimeState, r: RequestRecord, key: string): boolean {
  let line = state.lines.get(key);
  if (!line) {
    line = { next: 1, members: [] };
    state.lines.set(key, line);
  }
  line.members.push({ id: r.id, pos: line.next });
  line.next += 1;
  return line.members.length === 1;
}

/**
 * Take id out of its key's line (an empty line is dropped). Returns the id of the new
 * head when id was the head and others follow, else undefined.
 */
function lineRemove(state: RuntimeState, id: string, key: string): string | undefined {
  const line = state.lines.get(key);
  const at = line ? line.members.findIndex((m) => m.id === id) : -1;
  if (!line || at < 0) return undefined;
  line.members.splice(at, 1);
  if (line.members.length === 0) state.lines.delete(key);
  return at === 0 ? line.members[0]?.id : undefined;
}

/**
 * A keyed request is terminal: it leaves its line; when it was the head, the next one
 * becomes claimable now (as a created entry of its priority), with a wake-up.
 */
function lineLeave(tx: Txn, r: RequestRecord, key: string): void {
  const nextId = lineRemove(tx.state, r.id, key);
  const next = nextId === undefined ? undefined : tx.state.records.get(nextId);
  if (next?.status === 'pending') {
    tx.state.pending.add(next.id, pendingScore(next.priority, false));
    tx.wake = true;
  }
}

/** Store a new pending record (built by the caller, already complete). */
export function insertPending(tx: Txn, r: RequestRecord): void {
  const { state } = tx;
  state.records.set(r.id, r);
  state.ids.add(r.id, 0);
  // A keyed request behind its line's head is held: pending, not claimable yet.
  const claimable = r.ordering_key === null || lineJoin(state, r, r.ordering_key);
  if (claimable) state.pending.add(r.id, pendingScore(r.priority, false));
  state.deadlines.add(r.id, r.pending_deadline ?? tx.now);
  noteUpdate(tx, r);
  tx.wake = true;
}

/** Pending -> running for one connection. */
export function claimOne(tx: Txn, r: RequestRecord, connectionId: string, nodeId: string): void {
  const { state, now } = tx;
  r.status = 'running';
  r.epoch += 1;
  r.attempt += 1;
  r.claimed_at = now;
  r.lease_expires_at = now + r.lease_ms;
  r.pending_deadline = null;
  r.connection_id = connectionId;
  r.node_id = nodeId;
  state.pending.delete(r.id);
  state.deadlines.delete(r.id);
  state.leases.add(r.id, r.lease_expires_at);
  noteUpdate(tx, r);
}

/** Claim up to `opts.max` requests in pending order; ones past their deadline time out. */
export function claimUpTo(tx: Txn, opts: ClaimOptions): RequestRecord[] {
  const { state } = tx;
  const claimed: RequestRecord[] = [];
  while (claimed.length < opts.max) {
    const id = state.pending.first();
    if (id === undefined) break;
    const r = state.records.get(id);
    if (!r) {
      state.pending.delete(id);
      continue;
    }
    if (expireOne(tx, r)?.status !== 'pending') continue;
    claimOne(tx, r, opts.connectionId, opts.nodeId);
    claimed.push(copyRecord(r));
  }
  return claimed;
}

/** Running -> pending at the front of its priority, with a fresh pending deadline. */
export function toFront(tx: Txn, r: RequestRecord): void {
  const { state, now } = tx;
  r.status = 'pending';
  r.epoch += 1;
  r.pending_deadline = now + r.pending_timeout_ms;
  r.lease_expires_at = null;
  r.connection_id = null;
  r.node_id = null;
  state.leases.delete(r.id);
  state.pending.add(r.id, pendingScore(r.priority, true));
  state.deadlines.add(r.id, r.pending_deadline);
  noteUpdate(tx, r);
  tx.wake = true;
}

/** Running at the same epoch: extend the lease from now (no hint: state is unchanged). */
export function renewLease(tx: Txn, r: RequestRecord): void {
  r.lease_expires_at = tx.now + r.lease_ms;
  tx.state.leases.add(r.id, r.lease_expires_at);
}

export type Finish =
  | { status: 'completed'; result: string }
  | { status: 'failed' | 'timeout' | 'cancelled'; error: ErrorInfo };

export function outcomeToFinish(outcome: Outcome): Finish {
  return outcome.status === 'completed'
    ? { status: 'completed', result: JSON.stringify(outcome.result ?? null) }
    : { status: 'failed', error: outcome.error };
}

/** Pending or running -> a terminal status, kept for retention from now. */
export function finish(tx: Txn, r: RequestRecord, how: Finish): void {
  const { state, now } = tx;
  r.status = how.status;
  r.finished_at = now;
  r.result = how.status === 'completed' ? how.result : null;
  r.error = how.status === 'completed' ? null : { ...how.error };
  // The claim is over: a terminal record holds no lease (as in the Redis store).
  r.lease_expires_at = null;
  r.connection_id = null;
  r.node_id = null;
  state.pending.delete(r.id);
  state.deadlines.delete(r.id);
  state.leases.delete(r.id);
  state.done.add(r.id, now);
  noteUpdate(tx, r);
  if (r.ordering_key !== null) lineLeave(tx, r, r.ordering_key);
  if (how.status === 'timeout') tx.timedOut.push(r.id);
}

function forget(state: RuntimeState, id: string): void {
  // Terminal records have left their line already; a live one forgotten must not stay.
  const key = state.records.get(id)?.ordering_key;
  if (key) lineRemove(state, id, key);
  state.records.delete(id);
  state.outputs.delete(id);
  state.pending.delete(id);
  state.deadlines.delete(id);
  state.leases.delete(id);
  state.done.delete(id);
  state.ids.delete(id);
}

function isRetained(tx: Txn, r: RequestRecord): boolean {
  return r.finished_at === null || r.finished_at + tx.retentionMs > tx.now;
}

/**
 * Apply whatever timeout is due for one record. Returns the record afterwards, or null
 * when it is past retention (it is then removed).
 */
export function expireOne(tx: Txn, r: RequestRecord): RequestRecord | null {
  const { now } = tx;
  if (r.status === 'pending') {
    if (r.pending_deadline !== null && now >= r.pending_deadline) {
      finish(tx, r, {
        status: 'timeout',
        error: {
          code: 'pending_timeout',
          message: 'no daemon claimed the request before its pending deadline',
        },
      });
    }
  } else if (r.status === 'running') {
    if (r.lease_expires_at !== null && now >= r.lease_expires_at) {
      if (r.attempt < r.max_attempts) {
        toFront(tx, r);
        tx.requeued.push(r.id);
      } else {
        finish(tx, r, {
          status: 'timeout',
          error: { code: 'lease_expired', message: 'the lease expired and no attempts are left' },
        });
      }
    }
  } else if (!isRetained(tx, r)) {
    forget(tx.state, r.id);
    return null;
  }
  return r;
}

/**
 * Append output chunks to a running record at its epoch (RequestStore.appendOutput):
 * skip seqs already stored in this attempt, stop at a gap or a limit.
 */
export function appendOutput(
  tx: Txn,
  r: RequestRecord,
  writes: readonly OutputWrite[],
  limits: { maxOutputChunks: number; maxOutputBytes: number },
): OutputResult {
  const { state } = tx;
  let log = state.outputs.get(r.id);
  if (!log) {
    log = { chunks: [], bytes: 0, epoch: r.epoch, seq: 0 };
    state.outputs.set(r.id, log);
  }
  if (log.epoch !== r.epoch) {
    log.epoch = r.epoch;
    log.seq = 0;
  }
  const stored: StoredChunk[] = [];
  let refused: OutputResult['refused'];
  for (const w of writes) {
    if (w.seq <= log.seq) continue;
    if (w.seq !== log.seq + 1) {
      refused = 'seq_gap';
      break;
    }
    const size = Buffer.byteLength(w.data);
    if (
      log.chunks.length + 1 > limits.maxOutputChunks ||
      log.bytes + size > limits.maxOutputBytes
    ) {
      refused = 'output_limit';
      break;
    }
    const chunk = { offset: log.chunks.length + 1, epoch: r.epoch, data: w.data };
    log.chunks.push(chunk);
    log.bytes += size;
    log.seq = w.seq;
    stored.push(chunk);
  }
  if (stored.length > 0) tx.hints.push(encodeOutputHint(r.id, r.epoch, stored));
  const result: OutputResult = { epoch: r.epoch, acked_seq: log.seq, stored: [...stored] };
  if (refused) result.refused = refused;
  return result;
}

/** Up to `limit` stored chunks after offset `after`. */
export function readOutput(tx: Txn, r: RequestRecord, after: number, limit: number): OutputRead {
  const all = tx.state.outputs.get(r.id)?.chunks ?? [];
  const chunks = all.slice(after, after + limit);
  const next_after = chunks.at(-1)?.offset ?? after;
  return { chunks, next_after, done: TERMINAL.has(r.status) && next_after >= all.length };
}

/** Read one record after lazy expiry; null when missing or past retention. */
export function loadRecord(tx: Txn, id: string): RequestRecord | null {
  const r = tx.state.records.get(id);
  return r ? expireOne(tx, r) : null;
}

export function requireRecord(tx: Txn, id: string): RequestRecord {
  const r = loadRecord(tx, id);
  if (!r) throw new StoreError('not_found');
  return r;
}

/**
 * When the oldest pending request was created. Within a score (one priority, requeued
 * or not) members sort by id, a ULID, so by creation: only the head of each is a
 * candidate, at most two per priority.
 */
export function oldestPendingAt(state: RuntimeState): number | null {
  let oldest: number | null = null;
  for (const id of state.pending.firstOfEachScore()) {
    const created = state.records.get(id)?.created_at;
    if (created !== undefined && (oldest === null || created < oldest)) oldest = created;
  }
  return oldest;
}

/** Apply every due pending deadline and lease expiry of the runtime. */
export function expireDue(tx: Txn): void {
  const { state, now } = tx;
  for (const set of [state.deadlines, state.leases]) {
    for (const id of set.upTo(now)) {
      const r = state.records.get(id);
      if (r) expireOne(tx, r);
    }
  }
}

/** Remove terminal records past retention; returns how many. */
export function purgeRetained(tx: Txn): number {
  const { state } = tx;
  const due = state.done.upTo(tx.now - tx.retentionMs);
  for (const id of due) forget(state, id);
  return due.length;
}

/** Drop idempotency keys that expired or whose request is gone. */
export function purgeIdempotency(tx: Txn): void {
  const { state, now } = tx;
  for (const [key, entry] of state.idempotency) {
    if (entry.expires_at <= now || !state.records.has(entry.id)) state.idempotency.delete(key);
  }
}

/** One page of records, newest first, below the cursor (the last id of the prior page). */
export function listPage(tx: Txn, opts: ListOptions): ListResult {
  if (opts.ordering_key !== undefined) return linePage(tx, opts, opts.ordering_key);
  const { state } = tx;
  const { cursor, status, limit } = opts;
  const page: RequestRecord[] = [];
  for (const id of state.ids.descendingBelow(cursor === undefined ? undefined : 0, cursor)) {
    const r = state.records.get(id);
    if (!r || (status !== undefined && r.status !== status)) continue;
    // One match past the page says there is a next page.
    if (page.length >= limit) return { requests: page, next_cursor: page.at(-1)?.id ?? null };
    page.push(copyRecord(r));
  }
  return { requests: page, next_cursor: null };
}

/** One page of a key's line, head first, after the cursor (a position in the line). */
function linePage(tx: Txn, opts: ListOptions, key: string): ListResult {
  const { state } = tx;
  const { status, limit } = opts;
  const after = opts.cursor === undefined ? 0 : Number(opts.cursor);
  const page: RequestRecord[] = [];
  let lastPos = 0;
  for (const m of state.lines.get(key)?.members ?? []) {
    if (m.pos <= after) continue;
    const r = state.records.get(m.id);
    if (!r || (status !== undefined && r.status !== status)) continue;
    if (page.length >= limit) return { requests: page, next_cursor: String(lastPos) };
    page.push(copyRecord(r));
    lastPos = m.pos;
  }
  return { requests: page, next_cursor: null };
}
