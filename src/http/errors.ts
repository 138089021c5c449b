/**
 * The HTTP layer's one error type and the error body every route answers with
 * (DESIGN.md section 4): `{"error": {"code", "message", "details"?}}`. `toHttpError`
 * maps anything caught (store errors, protocol errors, hono's own) to it, and never lets
 * an internal message or stack reach a client.
 */
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ProtocolError } from '../../hub/errors.js';
import { HTTP_STATUS, type HttpErrorCode } from '../../protocol/index.js';
import { StoreError } from '../../stores/errors.js';
import { AuthError } from '../auth.js';

/** One problem with the input: where (a zod path) and what. */
export interface ErrorDetail {
  path: (string | number)[];
  message: string;
}

/**
 * An error answered over HTTP. Its status is the protocol's for its code
 * (protocol/codes.ts), unless `options.status` says otherwise (hono's own exceptions
 * keep theirs).
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: ContentfulStatusCode;
  /** Sent as `Retry-After` (whole seconds, rounded up). */
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    options?: { cause?: unknown; status?: ContentfulStatusCode; retryAfterMs?: number },
  ) {
    super(message, options);
    this.status = options?.status ?? HTTP_STATUS[code];
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

export function errorBody(code: string, message: string, details?: ErrorDetail[]): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Codes for hono's own exceptions (the status is all they carry). */
const STATUS_CODE: Record<number, HttpErrorCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
};

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof StoreError) {
    // A store_unavailable message may carry a Redis address: keep it in the logs only.
    const message = err.code === 'store_unavailable' ? 'the store is unavailable' : err.message;
    return new HttpError(err.code, message, undefined, {
      cause: err,
      retryAfterMs: err.retryAfterMs,
    });
  }
  if (err instanceof AuthError) {
    return new HttpError(err.code, err.message, undefined, { cause: err });
  }
  if (err instanceof ProtocolError) {
    return new HttpError('invalid_request', err.message, undefined, { cause: err });
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = STATUS_CODE[err.status] ?? 'invalid_request';
    return new HttpError(code, err.message || code, undefined, {
      cause: err,
      status: err.status as ContentfulStatusCode,
    });
  }
  return new HttpError('internal', 'internal error', undefined, { cause: err });
}
