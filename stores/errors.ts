/**
 * Typed store errors. Every failure a transition can report has a stable `code` that
 * the hub puts on the wire unchanged; Lua scripts return negative integers that
 * `fromScriptCode` maps here (one table, shared by both stores).
 */
import type { StoreErrorCode } from '../protocol/index.js';

interface StoreSettingsLimits {
  maxPendingPerRuntime: number;
}

const MESSAGES: Record<StoreErrorCode, string> = {
  invalid_request: 'the request body is not valid',
  not_found: 'no such request',
  lease_lost: 'the lease for this request is no longer held at this epoch',
  already_terminal: 'the request is already in a terminal state',
  idempotency_conflict: 'the idempotency key was used with a different body',
  not_retryable: 'only failed, timed-out or cancelled requests can be retried',
  output_limit: "the request's output is full (MAX_OUTPUT_CHUNKS or MAX_OUTPUT_BYTES)",
  limit_exceeded: 'a quota is used up (MAX_PENDING_PER_RUNTIME or CREATE_RATE_PER_WORKSPACE)',
  store_unavailable: 'the store is unavailable',
};

export class StoreError extends Error {
  override readonly name = 'StoreError';
  /** `limit_exceeded`: when asking again may succeed (ms from now). */
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly code: StoreErrorCode,
    message: string = MESSAGES[code],
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** How long a client refused by MAX_PENDING_PER_RUNTIME is told to wait. */
export const PENDING_LIMIT_RETRY_MS = 1_000;

/** The refusal of a create the workspace's create rate has no tokens for (yet). */
export function rateLimitError(limit: { rate: number; burst: number }, waitMs: number): StoreError {
  return new StoreError(
    'limit_exceeded',
    `the workspace is over its create rate (CREATE_RATE_PER_WORKSPACE ${limit.rate}/${limit.burst})`,
    { retryAfterMs: waitMs },
  );
}

/** The refusal of a create that would take a runtime's pending count past its limit. */
export function pendingLimitError(limit: number): StoreError {
  return new StoreError(
    'limit_exceeded',
    `the runtime has too many pending requests (MAX_PENDING_PER_RUNTIME ${limit})`,
    { retryAfterMs: PENDING_LIMIT_RETRY_MS },
  );
}

/** Script return codes, in the order the Lua includes define them (includes/codes.lua). */
const SCRIPT_CODES: Record<number, StoreErrorCode> = {
  [-1]: 'not_found',
  [-2]: 'lease_lost',
  [-3]: 'already_terminal',
  [-4]: 'idempotency_conflict',
  [-5]: 'not_retryable',
  [-6]: 'output_limit',
  [-7]: 'invalid_request',
  [-8]: 'limit_exceeded',
};

export function fromScriptCode(code: number, settings?: StoreSettingsLimits): StoreError {
  if (code === -8 && settings) return pendingLimitError(settings.maxPendingPerRuntime);
  const mapped = SCRIPT_CODES[code];
  return new StoreError(mapped ?? 'store_unavailable', mapped ? undefined : `script code ${code}`);
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}
