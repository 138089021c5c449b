/**
 * Wire protocol v1 (DESIGN.md section 4): every websocket frame as a zod schema, frames
 * as discriminated unions on `type`, types derived. Inbound frames are parsed with
 * `safeParse` at the socket edge; past it, handlers trust their types.
 */
import { z } from 'zod';
import {
  DaemonRequest,
  ErrorInfo,
  ID_PATTERN,
  JsonValue,
  type Request,
  RuntimeId,
} from '../stores/domain.js';

export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  tooBig: 1009,
  serviceRestart: 1012,
  /** The peer does not read: its unsent buffer passed MAX_SOCKET_BUFFER_BYTES. */
  tryAgainLater: 1013,
} as const;

const Id = z.string().min(1).max(128);
const Epoch = z.number().int().min(0);

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
  }),
  z.strictObject({
    type: z.literal('result'),
    id: Id,
    epoch: Epoch,
    status: z.literal('failed'),
    error: ErrorInfo,
  }),
]);
export const DaemonInbound = z.union([ReadyFrame, RenewFrame, ResultFrame]);
export type DaemonInbound = z.infer<typeof DaemonInbound>;
export type ResultFrame = z.infer<typeof ResultFrame>;

// server -> daemon
export type DaemonOutbound =
  | {
      type: 'hello';
      node_id: string;
      connection_id: string;
      heartbeat_interval_ms: number;
      lease_ms: number;
      max_payload_bytes: number;
    }
  | { type: 'request'; request: DaemonRequest }
  | { type: 'renewed'; id: string; epoch: number; lease_expires_at: string }
  | { type: 'lease_lost'; id: string; epoch: number }
  | { type: 'ack'; id: string; epoch: number }
  | {
      type: 'nack';
      id: string;
      epoch: number;
      code: 'lease_lost' | 'store_unavailable' | 'invalid_message';
      retry: boolean;
    }
  | { type: 'cancel'; id: string; epoch: number }
  | { type: 'drain'; reason: string }
  | ErrorFrame;

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** A refused or failed subscribe names what it was for, so the client can redo it. */
  runtime?: string;
  requests?: string[];
}

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
export const SubscribeFrame = z.strictObject({
  type: z.literal('subscribe'),
  runtime: RuntimeId,
  requests: RequestIds.optional(),
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
export const RuntimeInfoSchema = z.object({
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
export type ClientOutbound =
  | {
      type: 'snapshot';
      runtime: string;
      requests: Request[];
      runtime_info: z.infer<typeof RuntimeInfoSchema>;
    }
  | { type: 'request'; request: Request }
  | { type: 'runtime'; runtime_info: z.infer<typeof RuntimeInfoSchema> }
  | ErrorFrame;

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
