/**
 * The API's shapes (DESIGN.md section 3) as zod schemas with derived types: what HTTP
 * and websockets show of a request, a runtime, and what a client may send.
 */
import { z } from 'zod';
import { isJsonValue, type JsonValue as JsonValueType, MAX_JSON_DEPTH } from './json.js';
import { STATUSES, type Status as StatusName } from './status.js';

export const JsonValue = z.custom<JsonValueType>((v) => isJsonValue(v), {
  message: `expected a JSON value nested at most ${MAX_JSON_DEPTH} levels`,
});
export type JsonValue = JsonValueType;

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const KIND_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const WorkspaceId = z.string().regex(ID_PATTERN, 'expected [A-Za-z0-9._-]{1,128}');
export const RuntimeId = z.string().regex(ID_PATTERN, 'expected [A-Za-z0-9._-]{1,128}');
export const Kind = z.string().regex(KIND_PATTERN, 'expected [A-Za-z0-9._:-]{1,128}');
export const ORDERING_KEY_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
/** Requests of one runtime with the same ordering key run one at a time, in creation order. */
export const OrderingKey = z
  .string()
  .regex(ORDERING_KEY_PATTERN, 'expected [A-Za-z0-9._:/-]{1,128}');

export const Status = z.enum(STATUSES);
export type Status = StatusName;

export const ErrorInfo = z.object({
  code: z.string().min(1).max(128),
  message: z.string().max(4096),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/**
 * W3C trace context (protocol/trace.ts reads and checks it; an invalid one is ignored,
 * not refused): the create's on the API record, the claim's in a DaemonRequest, the
 * handler's on a result.
 */
export const TraceContext = z.strictObject({
  traceparent: z.string().max(256),
  tracestate: z.string().max(1024).optional(),
});
export type TraceContext = z.infer<typeof TraceContext>;

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
  ordering_key: OrderingKey.optional(),
});
export type CreateRequestBody = z.infer<typeof CreateRequestBody>;

export const MAX_BATCH = 500;
export const CreateBatchBody = z.strictObject({
  requests: z.array(CreateRequestBody).min(1).max(MAX_BATCH),
});
export type CreateBatchBody = z.infer<typeof CreateBatchBody>;

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
  ordering_key: z.string().nullable(),
  /** The create's trace context; absent when the create was not traced. */
  trace: TraceContext.optional(),
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
  /** The claim's trace context (the handler's span is its child); absent: untraced. */
  trace: TraceContext.optional(),
});
export type DaemonRequest = z.infer<typeof DaemonRequest>;

/** A runtime's presence and queue depth (GET /v1/runtimes/:runtime, `runtime` frames). */
export const RuntimeInfo = z.object({
  id: z.string(),
  online: z.boolean(),
  last_seen_at: z.string().nullable(),
  connections: z.array(
    z.object({
      connection_id: z.string(),
      node_id: z.string(),
      capacity: z.number(),
      in_flight: z.number(),
      connected_at: z.string(),
    }),
  ),
  pending: z.number(),
  running: z.number(),
});
export type RuntimeInfo = z.infer<typeof RuntimeInfo>;

/** One stored chunk of a request's output (DESIGN.md section 6). */
export const OutputChunk = z.object({
  offset: z.number().int(),
  epoch: z.number().int(),
  data: JsonValue,
});
export type OutputChunk = z.infer<typeof OutputChunk>;

/** Most chunks one output read returns. */
export const MAX_OUTPUT_PAGE = 1000;
/** GET /v1/runtimes/:runtime/requests/:id/output */
export const OutputPage = z.object({
  chunks: z.array(OutputChunk),
  next_after: z.number().int(),
  /** The request is terminal and no chunk past next_after exists. */
  done: z.boolean(),
});
export type OutputPage = z.infer<typeof OutputPage>;
