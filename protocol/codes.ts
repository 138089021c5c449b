/**
 * Every error code the hub puts on the wire, with the HTTP status it answers with, and
 * the websocket close codes (DESIGN.md section 4). Plain constants: the browser bundle
 * imports them without a schema library.
 */

/** Error codes of HTTP error bodies (`{"error": {"code", ...}}`) and their statuses. */
export const HTTP_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  lease_lost: 409,
  already_terminal: 409,
  idempotency_conflict: 409,
  not_retryable: 409,
  output_limit: 409,
  payload_too_large: 413,
  limit_exceeded: 429,
  internal: 500,
  store_unavailable: 503,
  draining: 503,
} as const;
export type HttpErrorCode = keyof typeof HTTP_STATUS;

/** Codes of websocket `error` and `nack` frames (the store's codes pass through as well). */
export const SOCKET_ERROR_CODES = [
  'invalid_message',
  'limit_exceeded',
  'lease_lost',
  'output_limit',
  'store_unavailable',
] as const;
export type SocketErrorCode = (typeof SOCKET_ERROR_CODES)[number];

/** Failures the store's transitions report; the hub passes them on unchanged. */
export const STORE_ERROR_CODES = [
  'invalid_request',
  'not_found',
  'lease_lost',
  'already_terminal',
  'idempotency_conflict',
  'not_retryable',
  'output_limit',
  'limit_exceeded',
  'store_unavailable',
] as const satisfies readonly HttpErrorCode[];
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

/** `error.code` of a request the hub itself ended (timed out or cancelled). */
export const HUB_FAILURE_CODES = ['pending_timeout', 'lease_expired', 'cancelled'] as const;

/** `error.code` the daemon SDK reports itself when a handler cannot produce a result. */
export const DAEMON_FAILURE_CODES = ['unknown_kind', 'handler_error', 'invalid_result'] as const;

/** HTTP statuses a client should not retry: asking again gives the same answer. */
export const FINAL_HTTP_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 409, 413]);

export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  tooBig: 1009,
  serviceRestart: 1012,
  /** The peer does not read: its unsent buffer passed MAX_SOCKET_BUFFER_BYTES. */
  tryAgainLater: 1013,
} as const;
export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];
