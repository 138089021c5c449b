/**
 * The domain of the store: what a request is, as zod schemas with derived types.
 * The API shape (`Request`) is what HTTP and websockets show; `RequestRecord` is the
 * stored form, with times as epoch milliseconds and the fields the transitions need
 * (lease length, claiming connection) that the API does not show.
 */
import { z } from 'zod';

/** Payloads and results nest at most this deep (deeper input is refused, not crashed on). */
export const MAX_JSON_DEPTH = 64;

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A JSON value nested at most MAX_JSON_DEPTH levels, checked without recursion. Unlike
 * `z.json()` it neither recurses (a deeply nested body cannot overflow the stack) nor
 * rebuilds the value (a `__proto__` key survives as the plain key JSON.parse made it).
 */
export function isJsonValue(value: unknown, maxDepth = MAX_JSON_DEPTH): value is JsonValue {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false;
      continue;
    }
    if (typeof v !== 'object' || depth >= maxDepth) return false;
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const item of Object.values(v)) stack.push([item, depth + 1]);
  }
  return true;
}

export const JsonValue = z.custom<JsonValue>((v) => isJsonValue(v), {
  message: `expected a JSON value nested at most ${MAX_JSON_DEPTH} levels`,
});

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const KIND_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const WorkspaceId = z.string().regex(ID_PATTERN, 'expected [A-Za-z0-9._-]{1,128}');
export const RuntimeId = z.string().regex(ID_PATTERN, 'expected [A-Za-z0-9._-]{1,128}');
export const Kind = z.string().regex(KIND_PATTERN, 'expected [A-Za-z0-9._:-]{1,128}');

export const STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'timeout',
  'cancelled',
] as const;
export const Status = z.enum(STATUSES);
export type Status = z.infer<typeof Status>;
export const TERMINAL: ReadonlySet<Status> = new Set([
  'completed',
  'failed',
  'timeout',
  'cancelled',
]);
/** Terminal states a request can be retried from (the dead letters). */
export const RETRYABLE: ReadonlySet<Status> = new Set(['failed', 'timeout', 'cancelled']);

export const ErrorInfo = z.object({
  code: z.string().min(1).max(128),
  message: z.string().max(4096),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/** A workspace-scoped runtime: every store call names one. */
export interface RuntimeRef {
  workspace: string;
  runtime: string;
}

/** What a client may set when it creates a request (the HTTP body). */
export const CreateRequestBody = z.strictObject({
  kind: Kind,
  payload: JsonValue.optional(),
  priority: z.number().int().min(0).max(9).optional(),
  max_attempts: z.number().int().min(1).max(20).optional(),
  pending_timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600_000)
    .optional(),
  lease_ms: z.number().int().min(100).max(3600_000).optional(),
});
export type CreateRequestBody = z.infer<typeof CreateRequestBody>;

export const MAX_BATCH = 500;
export const CreateBatchBody = z.strictObject({
  requests: z.array(CreateRequestBody).min(1).max(MAX_BATCH),
});

/** The request as the API shows it. */
export const Request = z.object({
  id: z.string(),
  workspace_id: z.string(),
  runtime_id: z.string(),
  kind: z.string(),
  payload: JsonValue,
  status: Status,
  priority: z.number().int(),
  attempt: z.number().int(),
  max_attempts: z.number().int(),
  epoch: z.number().int(),
  created_at: z.string(),
  claimed_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  pending_deadline: z.string().nullable(),
  lease_expires_at: z.string().nullable(),
  result: JsonValue.nullable(),
  error: ErrorInfo.nullable(),
  created_by: z.string(),
});
export type Request = z.infer<typeof Request>;

/** What a daemon receives for a claimed request. */
export const DaemonRequest = z.object({
  id: z.string(),
  kind: z.string(),
  payload: JsonValue,
  epoch: z.number().int(),
  attempt: z.number().int(),
  created_at: z.string(),
  lease_expires_at: z.string(),
});
export type DaemonRequest = z.infer<typeof DaemonRequest>;

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
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toApiRequest(r: RequestRecord): Request {
  return {
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
  };
}

export function toDaemonRequest(r: RequestRecord): DaemonRequest {
  return {
    id: r.id,
    kind: r.kind,
    payload: JSON.parse(r.payload),
    epoch: r.epoch,
    attempt: r.attempt,
    created_at: new Date(r.created_at).toISOString(),
    lease_expires_at: new Date(r.lease_expires_at ?? r.created_at).toISOString(),
  };
}

/** One daemon connection as presence records it. */
export interface ConnectionInfo {
  connection_id: string;
  node_id: string;
  capacity: number;
  in_flight: number;
  connected_at: number;
}

export interface RuntimeInfo {
  id: string;
  online: boolean;
  last_seen_at: string | null;
  connections: {
    connection_id: string;
    node_id: string;
    capacity: number;
    in_flight: number;
    connected_at: string;
  }[];
  pending: number;
  running: number;
}
