/**
 * Turns script replies (HGETALL lists) into RequestRecords. Only the store's own
 * scripts write these hashes, so decoding trusts the field set.
 */

import type { ErrorInfo, Status } from '../../protocol/index.js';
import type { RequestRecord } from '../domain.js';

function num(v: string | undefined): number | null {
  return v === undefined ? null : Number(v);
}

export function decodeRecord(flat: readonly string[]): RequestRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  return {
    id: f.id as string,
    workspace: f.workspace as string,
    runtime: f.runtime as string,
    kind: f.kind as string,
    payload: f.payload as string,
    status: f.status as Status,
    priority: Number(f.priority),
    attempt: Number(f.attempt),
    max_attempts: Number(f.max_attempts),
    epoch: Number(f.epoch),
    created_at: Number(f.created_at),
    claimed_at: num(f.claimed_at),
    finished_at: num(f.finished_at),
    pending_deadline: num(f.pending_deadline),
    lease_expires_at: num(f.lease_expires_at),
    lease_ms: Number(f.lease_ms),
    pending_timeout_ms: Number(f.pending_timeout_ms),
    result: f.result ?? null,
    error: f.error === undefined ? null : (JSON.parse(f.error) as ErrorInfo),
    created_by: f.created_by as string,
    connection_id: f.connection_id ?? null,
    node_id: f.node_id ?? null,
    retry_of: f.retry_of ?? null,
  };
}
