/**
 * What an HTTP answer to a daemon call (result, renew, output) means for the SDK. Only the hub's
 * own refusals are final: an error body `{"error": {"code"}}` whose code says the call
 * can never succeed as sent. Anything else that is not a success — a proxy's 408 or 429,
 * a 404 from a misrouted call, a 5xx, a body that is not the hub's — may succeed later
 * and is retried, after `Retry-After` when the answer carries one.
 */

export interface HttpAnswer {
  status: number;
  body: unknown;
  /** `Retry-After` in milliseconds, when the answer carried a valid one. */
  retryAfterMs?: number;
}

export type Verdict =
  | { kind: 'ok' }
  | { kind: 'final'; code: string }
  | { kind: 'retry'; afterMs?: number };

/**
 * The hub's codes after which the same call can never be accepted: the lease is gone
 * (`lease_lost`, `already_terminal`, `not_found`: the request is no longer this
 * daemon's; `output_limit`: the request's output is full), or the call itself is
 * refused (bad body, too large, bad token, wrong role).
 */
const FINAL_CODES = new Set([
  'lease_lost',
  'output_limit',
  'already_terminal',
  'not_found',
  'invalid_request',
  'payload_too_large',
  'unauthorized',
  'forbidden',
]);

/** The `error.code` of the hub's error body, or undefined when the body is not one. */
export function hubErrorCode(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function verdict(answer: HttpAnswer): Verdict {
  if (answer.status >= 200 && answer.status < 300) return { kind: 'ok' };
  const code = hubErrorCode(answer.body);
  if (answer.status >= 400 && answer.status < 500 && code !== undefined && FINAL_CODES.has(code)) {
    return { kind: 'final', code };
  }
  return { kind: 'retry', afterMs: answer.retryAfterMs };
}

/**
 * How long to wait on a `Retry-After` of `afterMs`: that, plus up to half of it again at
 * random, so that clients refused together do not all come back together; at most `capMs`.
 */
export function jitteredRetryAfter(afterMs: number, capMs = Number.POSITIVE_INFINITY): number {
  return Math.min(afterMs * (1 + Math.random() * 0.5), capMs);
}

/** `Retry-After` (whole seconds or an HTTP date) in ms; undefined when absent or invalid. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
