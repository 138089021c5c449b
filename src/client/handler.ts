/**
 * What a handler is, and what one call of it comes to: the outcome a daemon reports
 * (`completed` with the result, `failed` with `handler_error` when it threw, or
 * `unknown_kind` when no handler takes the kind). Whether the outcome is reported at
 * all is the job table's call (jobs.ts).
 */
import type { DaemonRequest } from '../../protocol/index.js';
import type { JobOutcome } from './reporter.js';

export interface HandlerContext {
  id: string;
  kind: string;
  attempt: number;
  epoch: number;
  /**
   * Fires on a `cancel` from the hub, a lost lease, a newer claim of the same request
   * (this attempt is then dead), or `close()` running out of time.
   */
  signal: AbortSignal;
}

export type Handler = (payload: unknown, ctx: HandlerContext) => unknown;

/** Runs the kind's handler (or `'*'`) on the request; never throws. */
export async function runHandler(
  handlers: Record<string, Handler>,
  request: DaemonRequest,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const handler = handlers[request.kind] ?? handlers['*'];
  if (!handler) {
    return {
      status: 'failed',
      error: { code: 'unknown_kind', message: `no handler for kind "${request.kind}"` },
    };
  }
  try {
    const result = await handler(request.payload, {
      id: request.id,
      kind: request.kind,
      attempt: request.attempt,
      epoch: request.epoch,
      signal,
    });
    return { status: 'completed', result: result === undefined ? null : result };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { status: 'failed', error: { code: 'handler_error', message } };
  }
}
