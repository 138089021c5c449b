/**
 * A RequestRecord as a flat field/value list: the form of a Redis record hash (what
 * HGETALL returns) and of the record an update hint carries, from either store. Only
 * the stores write these lists, so decoding trusts the field set.
 */

import type { ErrorInfo, Status, TraceContext } from '../protocol/index.js';
import type { RequestRecord } from './domain.js';

function num(v: string | undefined): number | null {
  return v === undefined ? null : Number(v);
}

function traceOf(f: Record<string, string>): TraceContext | null {
  if (f.traceparent === undefined) return null;
  return f.tracestate === undefined
    ? { traceparent: f.traceparent }
    : { traceparent: f.traceparent, tracestate: f.tracestate };
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
    ordering_key: f.ordering_key ?? null,
    trace: traceOf(f),
  };
}

/** The fields a record hash holds; null fields are absent, as in the hash. */
export function encodeRecord(r: RequestRecord): string[] {
  const flat = [
    'id',
    r.id,
    'workspace',
    r.workspace,
    'runtime',
    r.runtime,
    'kind',
    r.kind,
    'payload',
    r.payload,
    'status',
    r.status,
    'priority',
    String(r.priority),
    'attempt',
    String(r.attempt),
    'max_attempts',
    String(r.max_attempts),
    'epoch',
    String(r.epoch),
    'created_at',
    String(r.created_at),
    'lease_ms',
    String(r.lease_ms),
    'pending_timeout_ms',
    String(r.pending_timeout_ms),
    'created_by',
    r.created_by,
  ];
  const optional: [string, string | number | null][] = [
    ['claimed_at', r.claimed_at],
    ['finished_at', r.finished_at],
    ['pending_deadline', r.pending_deadline],
    ['lease_expires_at', r.lease_expires_at],
    ['result', r.result],
    ['error', r.error === null ? null : JSON.stringify(r.error)],
    ['connection_id', r.connection_id],
    ['node_id', r.node_id],
    ['retry_of', r.retry_of],
    ['ordering_key', r.ordering_key],
    ['traceparent', r.trace?.traceparent ?? null],
    ['tracestate', r.trace?.tracestate ?? null],
  ];
  for (const [field, value] of optional) if (value !== null) flat.push(field, String(value));
  return flat;
}
