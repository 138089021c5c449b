/**
 * The browser client's HTTP side: one call to the hub with the token, its answer read
 * as JSON, and every failure as a `SwitchboardError` (the hub's error body, or status 0
 * for what happened on this side). It imports only answers.ts (no dependencies): the
 * bundle stays small.
 */
import { jitteredRetryAfter, parseRetryAfter } from './answers.js';

/**
 * Every failure the client reports: `status` and `code` from the hub's error body
 * (DESIGN.md section 4), or status 0 for what happened on this side: `network_error`,
 * `timeout` (`result`'s `timeoutMs` passed), `closed` (the client was closed),
 * `invalid_response`.
 */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** The hub's `Retry-After` (429 `limit_exceeded`, 503), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** How a call answered 429 is tried again: after Retry-After, with jitter on top. */
export interface RetryPolicy {
  /** Tries after the first that answered 429; 0 gives a 429 straight to the caller. Default 3. */
  retries: number;
  /** A Retry-After longer than this is not waited for: the 429 goes to the caller. Default 30 s. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 3, maxWaitMs: 30_000 };

export const closedError = (): SwitchboardError =>
  new SwitchboardError(0, 'closed', 'the client was closed');

export interface CallInit {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A call to the hub this client talks to: resolves with the JSON body of a 2xx. */
export type Call = <T>(method: string, path: string, init?: CallInit) => Promise<T>;

/** The hub's base URL without a trailing slash; '' means this page's origin. */
export function baseUrl(url: string): string {
  const origin = (globalThis as { location?: { origin: string } }).location?.origin;
  const base = url === '' && origin ? origin : url;
  return base.replace(/\/+$/, '');
}

export function hubCaller(base: string, token: string, policy = DEFAULT_RETRY_POLICY): Call {
  return async <T>(method: string, path: string, init: CallInit = {}): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await callHub<T>(base, token, method, path, init);
      } catch (err) {
        // A 429 did nothing (a create refused is refused whole), so any call may go again,
        // once the hub says a token is due; the jitter keeps clients refused together from
        // coming back together.
        const wait = (err as SwitchboardError).retryAfterMs;
        const limited = err instanceof SwitchboardError && err.status === 429;
        if (
          !limited ||
          wait === undefined ||
          attempt >= policy.retries ||
          wait > policy.maxWaitMs
        ) {
          throw err;
        }
        await sleep(jitteredRetryAfter(wait), init.signal);
      }
    }
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(closedError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(closedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function callHub<T>(
  base: string,
  token: string,
  method: string,
  path: string,
  init: CallInit,
): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
    text = await res.text();
  } catch (err) {
    if (init.signal?.aborted) throw closedError();
    const why = err instanceof Error ? err.message : String(err);
    throw new SwitchboardError(0, 'network_error', `could not reach ${base}: ${why}`);
  }
  let body: unknown;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })
      ?.error;
    throw new SwitchboardError(
      res.status,
      typeof error?.code === 'string' ? error.code : `http_${res.status}`,
      typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`,
      error?.details,
      parseRetryAfter(res.headers.get('retry-after')),
    );
  }
  if (body === undefined) {
    throw new SwitchboardError(res.status, 'invalid_response', 'the hub did not answer JSON');
  }
  return body as T;
}
