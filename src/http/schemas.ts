/**
 * Schemas of the HTTP edge that stores/domain.ts does not already hold: the daemon
 * bodies, the query strings and the error body. Types are derived, never written twice.
 */
import { z } from 'zod';
import { MAX_WAIT_MS } from '../../hub/settings.js';
import {
  ErrorInfo,
  JsonValue,
  MAX_OUTPUT_PAGE,
  OrderingKey,
  Status,
  TraceContext,
} from '../../protocol/index.js';

const Epoch = z.number().int().min(0);

export {
  HeartbeatBody,
  HeartbeatResponse,
  MAX_HEARTBEAT_LEASES,
  OutputAck,
  OutputBody,
} from '../../protocol/index.js';

export const ResultBody = z.discriminatedUnion('status', [
  z.strictObject({
    epoch: Epoch,
    status: z.literal('completed'),
    result: JsonValue.optional(),
    trace: TraceContext.optional(),
  }),
  z.strictObject({
    epoch: Epoch,
    status: z.literal('failed'),
    error: ErrorInfo,
    trace: TraceContext.optional(),
  }),
]);
export type ResultBody = z.infer<typeof ResultBody>;

export const RenewBody = z.strictObject({ epoch: Epoch });

/** Cancel takes an optional body: a reason recorded in the request's error message. */
export const CancelBody = z.strictObject({ reason: z.string().min(1).max(1024).optional() });

/** `GET .../requests/:id?wait_ms=N`: long-poll until terminal, at most 60 s. */
export const GetQuery = z.object({
  wait_ms: z.coerce.number().int().min(0).max(MAX_WAIT_MS).optional(),
});

/**
 * `GET .../requests`: newest first; with `ordering_key`, that key's line in order, and
 * the cursor is a position in the line (the digits of a previous `next_cursor`).
 */
export const ListQuery = z
  .object({
    status: Status.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().min(1).max(1024).optional(),
    ordering_key: OrderingKey.optional(),
  })
  .check((ctx) => {
    const { cursor, ordering_key } = ctx.value;
    if (ordering_key !== undefined && cursor !== undefined && !/^\d{1,15}$/.test(cursor)) {
      ctx.issues.push({
        code: 'custom',
        message: 'expected the next_cursor of a list by ordering_key',
        path: ['cursor'],
        input: cursor,
      });
    }
  });

const Offset = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** `GET .../requests/:id/output?after=N&limit=M` (M <= MAX_OUTPUT_PAGE). */
export const OutputQuery = z.object({
  after: Offset.default(0),
  limit: z.coerce.number().int().min(1).max(MAX_OUTPUT_PAGE).default(100),
});

/** `GET .../requests/:id/events?after=N`; a `Last-Event-ID` header takes precedence. */
export const EventsQuery = z.object({ after: Offset.optional() });
/** `Last-Event-ID`: the offset of the last output event the client has. */
export const LastEventId = z.string().regex(/^\d{1,15}$/, 'expected an output offset');

/** `Idempotency-Key`: 1..255 printable ASCII characters, no spaces. */
export const IdempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'expected 1..255 printable ASCII characters without spaces');

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z
      .array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() }))
      .optional(),
  }),
});

export const RenewResponse = z.object({ lease_expires_at: z.string() });
