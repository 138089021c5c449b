/**
 * The HTTP layer's one error type and the error body every route answers with
 * (DESIGN.md section 4): `{"error": {"code", "message", "details"?}}`. `toHttpError`
 * maps anything caught (store errors, protocol errors, hono's own) to it, and never lets
 * an internal message or stack reach a client.
 */
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ProtocolError } from '../../hub/errors.js';
import { StoreError, type StoreErrorCode } from '../../stores/errors.js';

/** One problem with the input: where (a zod path) and what. */
export interface ErrorDetail {
  path: (string | number)[];
  message: string;
}

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

export function errorBody(code: string, message: string, details?: ErrorDetail[]): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

const STORE_STATUS: Record<StoreErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  not_found: 404,
  lease_lost: 409,
  already_terminal: 409,
  idempotency_conflict: 409,
  not_retryable: 409,
  store_unavailable: 503,
};

/** Codes for hono's own exceptions (the status is all they carry). */
const STATUS_CODE: Record<number, string> = {
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
    return new HttpError(STORE_STATUS[err.code], err.code, message, undefined, { cause: err });
  }
  if (err instanceof ProtocolError) {
    return new HttpError(400, 'invalid_request', err.message, undefined, { cause: err });
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = STATUS_CODE[err.status] ?? 'invalid_request';
    return new HttpError(err.status as ContentfulStatusCode, code, err.message || code, undefined, {
      cause: err,
    });
  }
  return new HttpError(500, 'internal', 'internal error', undefined, { cause: err });
}
