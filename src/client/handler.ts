/**
 * What a handler is, and what one call of it comes to: the outcome a daemon reports
 * (`completed` with the result, `failed` with `handler_error` when it threw, or
 * `unknown_kind` when no handler takes the kind). Whether the outcome is reported at
 * all is the job table's call (jobs.ts).
 */
import type { DaemonRequest } from '../../protocol/index.js';
import { OutputError, rejected } from './output-chunk.js';
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
  /**
   * Streams one chunk of output (any JSON value) to the request's waiting clients
   * (DESIGN.md section 6). Settles once the hub has stored it. Chunks are stored in the
   * order written, each once, also across reconnects; at most `outputWindow` are on the
   * wire unacknowledged, so awaiting each write (or the oldest of those in flight) paces
   * the handler to the hub. Rejects with an `OutputError`: `lease_lost` (the attempt is
   * no longer this daemon's), `output_limit` (the output is full; the handler may still
   * return its result), `invalid_output` (this value cannot be sent), `refused`, or
   * `closed` (written after the handler returned). After `lease_lost` or `output_limit`
   * every later write rejects the same way. The result is reported only after every
   * chunk written before the handler returned is stored (or refused).
   *
   * @example
   * async (payload, ctx) => {
   *   for await (const token of model.generate(payload)) await ctx.output(token);
   *   return { done: true };
   * }
   */
  output(data: unknown): Promise<void>;
}

export type Handler = (payload: unknown, ctx: HandlerContext) => unknown;

/**
 * Runs the kind's handler (or `'*'`) on the request; never throws. `output` writes one
 * chunk of the attempt's output; once the handler has returned, writes are refused.
 */
export async function runHandler(
  handlers: Record<string, Handler>,
  request: DaemonRequest,
  signal: AbortSignal,
  output: (data: unknown) => Promise<void>,
): Promise<JobOutcome> {
  const handler = handlers[request.kind] ?? handlers['*'];
  if (!handler) {
    return {
      status: 'failed',
      error: { code: 'unknown_kind', message: `no handler for kind "${request.kind}"` },
    };
  }
  let returned = false;
  try {
    const result = await handler(request.payload, {
      id: request.id,
      kind: request.kind,
      attempt: request.attempt,
      epoch: request.epoch,
      signal,
      output: (data) =>
        returned ? rejected(new OutputError('closed', 'the handler has returned')) : output(data),
    });
    return { status: 'completed', result: result === undefined ? null : result };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { status: 'failed', error: { code: 'handler_error', message } };
  } finally {
    returned = true;
  }
}
