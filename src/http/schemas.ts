/**
 * Schemas of the HTTP edge that stores/domain.ts does not already hold: the daemon
 * bodies, the query strings and the error body. Types are derived, never written twice.
 */
import { z } from 'zod';
import { MAX_WAIT_MS } from '../../hub/settings.js';
import { ErrorInfo, JsonValue, Status } from '../../protocol/index.js';

const Epoch = z.number().int().min(0);

export { HeartbeatBody, HeartbeatResponse, MAX_HEARTBEAT_LEASES } from '../../protocol/index.js';

export const ResultBody = z.discriminatedUnion('status', [
  z.strictObject({ epoch: Epoch, status: z.literal('completed'), result: JsonValue.optional() }),
  z.strictObject({ epoch: Epoch, status: z.literal('failed'), error: ErrorInfo }),
]);
export type ResultBody = z.infer<typeof ResultBody>;

export const RenewBody = z.strictObject({ epoch: Epoch });

/** Cancel takes an optional body: a reason recorded in the request's error message. */
export const CancelBody = z.strictObject({ reason: z.string().min(1).max(1024).optional() });

/** `GET .../requests/:id?wait_ms=N`: long-poll until terminal, at most 60 s. */
export const GetQuery = z.object({
  wait_ms: z.coerce.number().int().min(0).max(MAX_WAIT_MS).optional(),
});

export const ListQuery = z.object({
  status: Status.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(1024).optional(),
});

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
