/**
 * The stored form of a request. The API shapes live in protocol/ (`Request`,
 * `DaemonRequest`, `RuntimeInfo`, ...); `RequestRecord` is what both stores keep, with
 * times as epoch milliseconds and the fields only the transitions use (lease length,
 * claiming connection), and the two functions that turn it into the API's shapes.
 */
import type { DaemonRequest, ErrorInfo, Request, Status, TraceContext } from '../protocol/index.js';

/** A workspace-scoped runtime: every store call names one. */
export interface RuntimeRef {
  workspace: string;
  runtime: string;
}
/** The stored record: times in epoch ms, plus the fields only transitions use. */
export interface RequestRecord {
  id: string;
  workspace: string;
  runtime: string;
  kind: string;
  /** JSON text of the payload (kept serialised: both stores hold it as text). */
  payload: string;
  status: Status;
  priority: number;
  attempt: number;
  max_attempts: number;
  epoch: number;
  created_at: number;
  claimed_at: number | null;
  finished_at: number | null;
  pending_deadline: number | null;
  lease_expires_at: number | null;
  /** Lease length granted at each claim. */
  lease_ms: number;
  /** Pending timeout, measured from creation and from each requeue. */
  pending_timeout_ms: number;
  /** JSON text of the result, or null. */
  result: string | null;
  error: ErrorInfo | null;
  created_by: string;
  /** Connection that holds the current claim (null when not running). */
  connection_id: string | null;
  node_id: string | null;
  /** Id of the request this one retries (dead-letter replay), or null. */
  retry_of: string | null;
  /** The request's ordering key (one line per runtime and key), or null. */
  ordering_key: string | null;
  /** The create's W3C trace context, or null (untraced: nothing stored). */
  trace: TraceContext | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toApiRequest(r: RequestRecord): Request {
  const out: Request = {
    id: r.id,
    workspace_id: r.workspace,
    runtime_id: r.runtime,
    kind: r.kind,
    payload: JSON.parse(r.payload),
    status: r.status,
    priority: r.priority,
    attempt: r.attempt,
    max_attempts: r.max_attempts,
    epoch: r.epoch,
    created_at: new Date(r.created_at).toISOString(),
    claimed_at: iso(r.claimed_at),
    finished_at: iso(r.finished_at),
    pending_deadline: iso(r.pending_deadline),
    lease_expires_at: iso(r.lease_expires_at),
    result: r.result === null ? null : JSON.parse(r.result),
    error: r.error,
    created_by: r.created_by,
    ordering_key: r.ordering_key,
  };
  if (r.trace !== null) out.trace = r.trace;
  return out;
}

/** `trace`: the claim's context to send (the record's when not given). */
export function toDaemonRequest(r: RequestRecord, trace?: TraceContext): DaemonRequest {
  const out: DaemonRequest = {
    id: r.id,
    kind: r.kind,
    payload: JSON.parse(r.payload),
    epoch: r.epoch,
    attempt: r.attempt,
    created_at: new Date(r.created_at).toISOString(),
    lease_expires_at: new Date(r.lease_expires_at ?? r.created_at).toISOString(),
  };
  const t = trace ?? r.trace;
  if (t) out.trace = t;
  return out;
}

/** One daemon connection as presence records it. */
export interface ConnectionInfo {
  connection_id: string;
  node_id: string;
  capacity: number;
  in_flight: number;
  connected_at: number;
}
