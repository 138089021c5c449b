/**
 * Wire protocol v1 (DESIGN.md section 4): every websocket frame, both directions, as a
 * zod schema discriminated on `type`, types derived. The hub parses inbound frames with
 * `parseFrame` at the socket edge and builds outbound ones to these types; the SDKs
 * read outbound frames as these types.
 */
import { z } from 'zod';
import {
  DaemonRequest,
  ErrorInfo,
  ID_PATTERN,
  JsonValue,
  Request,
  RuntimeId,
  RuntimeInfo,
  TraceContext,
} from './api.js';

const Id = z.string().min(1).max(128);
const Epoch = z.number().int().min(0);

/** Either socket, server -> peer. A refused or failed subscribe names what it was for. */
export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  runtime: z.string().optional(),
  requests: z.array(z.string()).optional(),
});
export type ErrorFrame = z.infer<typeof ErrorFrame>;

// daemon -> server
export const ReadyFrame = z.strictObject({
  type: z.literal('ready'),
  capacity: z.number().int().min(0).max(1000),
});
export const RenewFrame = z.strictObject({ type: z.literal('renew'), id: Id, epoch: Epoch });
export const ResultFrame = z.union([
  z.strictObject({
    type: z.literal('result'),
    id: Id,
    epoch: Epoch,
    status: z.literal('completed'),
    result: JsonValue.optional(),
    /** The handler span's context: the hub's report span is its child. */
    trace: TraceContext.optional(),
  }),
  z.strictObject({
    type: z.literal('result'),
    id: Id,
    epoch: Epoch,
    status: z.literal('failed'),
    error: ErrorInfo,
    trace: TraceContext.optional(),
  }),
]);
export type ResultFrame = z.infer<typeof ResultFrame>;
/** Most output chunks one HTTP output call may carry. */
export const MAX_OUTPUT_BATCH = 1000;
/** A chunk's number within its attempt: 1, 2, ... (DESIGN.md section 6). */
export const OutputSeq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** One chunk of a running request's output (DESIGN.md section 6). */
export const OutputFrame = z.strictObject({
  type: z.literal('output'),
  id: Id,
  epoch: Epoch,
  seq: OutputSeq,
  data: JsonValue,
});
export type OutputFrame = z.infer<typeof OutputFrame>;
export const DaemonInbound = z.union([ReadyFrame, RenewFrame, ResultFrame, OutputFrame]);
export type DaemonInbound = z.infer<typeof DaemonInbound>;

// server -> daemon
export const HelloFrame = z.object({
  type: z.literal('hello'),
  node_id: z.string(),
  connection_id: z.string(),
  heartbeat_interval_ms: z.number().int(),
  lease_ms: z.number().int(),
  max_payload_bytes: z.number().int(),
});
export const RequestFrame = z.object({ type: z.literal('request'), request: DaemonRequest });
export const RenewedFrame = z.object({
  type: z.literal('renewed'),
  id: z.string(),
  epoch: z.number().int(),
  lease_expires_at: z.string(),
});
export const LeaseLostFrame = z.object({
  type: z.literal('lease_lost'),
  id: z.string(),
  epoch: z.number().int(),
});
export const AckFrame = z.object({
  type: z.literal('ack'),
  id: z.string(),
  epoch: z.number().int(),
});
export const NackFrame = z.object({
  type: z.literal('nack'),
  id: z.string(),
  epoch: z.number().int(),
  code: z.enum(['lease_lost', 'output_limit', 'store_unavailable', 'invalid_message']),
  /** For an `output` frame: the seq it refused. Absent for a `result`. */
  seq: z.number().int().optional(),
  /** True when the same report may succeed later (store_unavailable). */
  retry: z.boolean(),
});
/** Every output chunk of this attempt up to `seq` is stored (acks are cumulative). */
export const OutputAckFrame = z.object({
  type: z.literal('output_ack'),
  id: z.string(),
  epoch: z.number().int(),
  seq: z.number().int(),
});
export type OutputAckFrame = z.infer<typeof OutputAckFrame>;
export const CancelFrame = z.object({
  type: z.literal('cancel'),
  id: z.string(),
  epoch: z.number().int(),
});
export const DrainFrame = z.object({ type: z.literal('drain'), reason: z.string() });
export const DaemonOutbound = z.discriminatedUnion('type', [
  HelloFrame,
  RequestFrame,
  RenewedFrame,
  LeaseLostFrame,
  AckFrame,
  NackFrame,
  OutputAckFrame,
  CancelFrame,
  DrainFrame,
  ErrorFrame,
]);
export type DaemonOutbound = z.infer<typeof DaemonOutbound>;
export type HelloFrame = z.infer<typeof HelloFrame>;
/** The hub's answers to a `result` frame. */
export type ReportAnswer = z.infer<typeof AckFrame> | z.infer<typeof NackFrame>;
export type NackFrame = z.infer<typeof NackFrame>;

// daemon HTTP output (POST /v1/daemon/requests/:id/output)
export const OutputBody = z.strictObject({
  epoch: Epoch,
  chunks: z
    .array(z.strictObject({ seq: OutputSeq, data: JsonValue }))
    .min(1)
    .max(MAX_OUTPUT_BATCH),
});
export type OutputBody = z.infer<typeof OutputBody>;
export const OutputAck = z.object({ epoch: z.number().int(), acked_seq: z.number().int() });
export type OutputAck = z.infer<typeof OutputAck>;

// daemon HTTP heartbeat (POST /v1/daemon/heartbeat): the polling fallback's body and answer
/** Most leases one heartbeat may renew. */
export const MAX_HEARTBEAT_LEASES = 1000;
export const HeartbeatBody = z.strictObject({
  max: z.number().int().min(0).max(100).default(1),
  leases: z
    .array(z.strictObject({ id: Id.regex(ID_PATTERN, 'expected a request id'), epoch: Epoch }))
    .max(MAX_HEARTBEAT_LEASES)
    .default([]),
});
export type HeartbeatBody = z.infer<typeof HeartbeatBody>;
export const HeartbeatResponse = z.object({
  requests: z.array(DaemonRequest),
  leases: z.array(
    z.object({
      id: z.string(),
      epoch: z.number().int(),
      ok: z.boolean(),
      lease_expires_at: z.string().nullable(),
    }),
  ),
  heartbeat_interval_ms: z.number().int(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

// client -> server
const RequestIds = z.array(Id).min(1).max(500);
/** An output offset: 0 is "before the first chunk". */
export const OutputOffset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const SubscribeFrame = z
  .strictObject({
    type: z.literal('subscribe'),
    runtime: RuntimeId,
    requests: RequestIds.optional(),
    /** With `requests`: also stream each named request's output (DESIGN.md section 6). */
    output: z.boolean().optional(),
    /** Per request id: resume after this offset (default 0, the whole output). */
    after: z.record(z.string(), OutputOffset).optional(),
  })
  .refine((f) => !f.output || f.requests !== undefined, {
    message: 'output: true needs the request ids to stream',
    path: ['output'],
  });
export const UnsubscribeFrame = z.strictObject({
  type: z.literal('unsubscribe'),
  runtime: RuntimeId,
  requests: RequestIds.optional(),
});
/**
 * An addition to DESIGN.md's protocol: presence of every runtime of the workspace,
 * including ones that appear later (a dashboard cannot subscribe to a runtime it does
 * not know of yet). The server answers with one `runtime` frame per known runtime, then
 * a `runtime` frame on every presence change in the workspace.
 */
export const WatchRuntimesFrame = z.strictObject({ type: z.literal('watch_runtimes') });
export const UnwatchRuntimesFrame = z.strictObject({ type: z.literal('unwatch_runtimes') });
export const ClientInbound = z.discriminatedUnion('type', [
  SubscribeFrame,
  UnsubscribeFrame,
  WatchRuntimesFrame,
  UnwatchRuntimesFrame,
]);
export type ClientInbound = z.infer<typeof ClientInbound>;

// server -> client
export const SnapshotFrame = z.object({
  type: z.literal('snapshot'),
  runtime: z.string(),
  requests: z.array(Request),
  runtime_info: RuntimeInfo,
});
export const RequestUpdateFrame = z.object({ type: z.literal('request'), request: Request });
export const RuntimeFrame = z.object({ type: z.literal('runtime'), runtime_info: RuntimeInfo });
/** One stored output chunk, in offset order, no gap, no repeat (DESIGN.md section 6). */
export const ClientOutputFrame = z.object({
  type: z.literal('output'),
  runtime: z.string(),
  id: z.string(),
  epoch: z.number().int(),
  offset: z.number().int(),
  data: JsonValue,
});
export type ClientOutputFrame = z.infer<typeof ClientOutputFrame>;
export const ClientOutbound = z.discriminatedUnion('type', [
  SnapshotFrame,
  RequestUpdateFrame,
  RuntimeFrame,
  ClientOutputFrame,
  ErrorFrame,
]);
export type ClientOutbound = z.infer<typeof ClientOutbound>;

/** Parses one text frame: JSON first, then the schema. Never throws. */
export function parseFrame<T>(
  schema: z.ZodType<T>,
  raw: string,
): { ok: true; frame: T } | { ok: false; error: ErrorFrame; raw?: unknown } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: errorFrame('invalid_message', 'frame is not valid JSON') };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const type = (json as { type?: unknown } | null)?.type;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  return {
    ok: false,
    raw: json,
    error: errorFrame(
      'invalid_message',
      typeof type === 'string'
        ? `invalid "${type}" frame${where}: ${issue?.message ?? 'invalid'}`
        : 'frame has no valid "type"',
    ),
  };
}

export function errorFrame(
  code: string,
  message: string,
  about?: { runtime: string; requests?: string[] },
): ErrorFrame {
  return about ? { type: 'error', code, message, ...about } : { type: 'error', code, message };
}
