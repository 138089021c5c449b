/**
 * What a daemon may report: the hub refuses results that JSON cannot encode, that nest
 * deeper than MAX_JSON_DEPTH or exceed its payload limit, and error fields over the
 * protocol's lengths. Such an outcome becomes a failure saying so, reported at once,
 * instead of a report the hub refuses until the lease runs out (or a crash).
 */

import { isJsonValue, MAX_JSON_DEPTH } from '../../protocol/index.js';
import type { JobOutcome } from './reporter.js';

const MAX_CODE = 128;
const MAX_MESSAGE = 4096;
/** Room for the frame around the result. */
const FRAME_OVERHEAD = 1024;

function invalidResult(message: string): JobOutcome {
  return { status: 'failed', error: { code: 'invalid_result', message } };
}

export function deliverable(outcome: JobOutcome, maxPayloadBytes: number): JobOutcome {
  if (outcome.status === 'failed') {
    return {
      status: 'failed',
      error: {
        code: String(outcome.error.code).slice(0, MAX_CODE),
        message: String(outcome.error.message).slice(0, MAX_MESSAGE),
      },
    };
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(outcome.result);
  } catch (err) {
    return invalidResult(`the result cannot be encoded as JSON: ${(err as Error).message}`);
  }
  if (text === undefined) return { status: 'completed', result: null };
  const value: unknown = JSON.parse(text);
  if (!isJsonValue(value)) {
    return invalidResult(`the result nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (Buffer.byteLength(text) > maxPayloadBytes - FRAME_OVERHEAD) {
    return invalidResult(`the result is over the hub's ${maxPayloadBytes} byte limit`);
  }
  return { status: 'completed', result: value };
}
