/**
 * Typed store errors. Every failure a transition can report has a stable `code` that
 * the hub puts on the wire unchanged; Lua scripts return negative integers that
 * `fromScriptCode` maps here (one table, shared by both stores).
 */
import type { StoreErrorCode } from '../protocol/index.js';

const MESSAGES: Record<StoreErrorCode, string> = {
  invalid_request: 'the request body is not valid',
  not_found: 'no such request',
  lease_lost: 'the lease for this request is no longer held at this epoch',
  already_terminal: 'the request is already in a terminal state',
  idempotency_conflict: 'the idempotency key was used with a different body',
  not_retryable: 'only failed, timed-out or cancelled requests can be retried',
  output_limit: "the request's output is full (MAX_OUTPUT_CHUNKS or MAX_OUTPUT_BYTES)",
  store_unavailable: 'the store is unavailable',
};

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string = MESSAGES[code],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
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
};

export function fromScriptCode(code: number): StoreError {
  const mapped = SCRIPT_CODES[code];
  return new StoreError(mapped ?? 'store_unavailable', mapped ? undefined : `script code ${code}`);
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}
