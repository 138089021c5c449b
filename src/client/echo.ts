/**
 * The handlers of `switchboard daemon --echo`, for trying a hub out: every kind answers
 * with its own payload, and kind `stream` streams output first.
 *
 * `stream` takes `{chunks?: number, size?: number}` (default 10 chunks of 16 characters)
 * and writes `chunks` chunks through `ctx.output`, each a string of `size` characters
 * that starts with its number (`"1:......"`), then returns `{chunks}`. It keeps at most
 * a window's worth of writes unsettled, so it streams at the hub's pace with bounded
 * memory. When the output is full it stops and returns `{chunks: stored, stopped:
 * "output_limit"}`.
 */
import type { Handler, HandlerContext } from './handler.js';
import { OutputError } from './output-chunk.js';

/** Most chunks and characters a `stream` request may ask for. */
export const ECHO_MAX_CHUNKS = 1_000_000;
export const ECHO_MAX_SIZE = 1_048_576;
/** Writes in flight before the next one waits for the oldest. */
const IN_FLIGHT = 64;

function count(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`stream: ${name} must be a whole number from 0 to ${max}`);
  }
  return value;
}

/** Chunk `i` (from 1) of `size` characters. */
export function echoChunk(i: number, size: number): string {
  const head = `${i}:`;
  return head.length >= size ? head : head + '.'.repeat(size - head.length);
}

export async function streamHandler(payload: unknown, ctx: HandlerContext): Promise<unknown> {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as {
    chunks?: unknown;
    size?: unknown;
  };
  const chunks = count(p.chunks, 'chunks', 10, ECHO_MAX_CHUNKS);
  const size = count(p.size, 'size', 16, ECHO_MAX_SIZE);
  const inFlight: Promise<void>[] = [];
  let stored = 0;
  try {
    for (let i = 1; i <= chunks; i++) {
      ctx.signal.throwIfAborted();
      const write = ctx.output(echoChunk(i, size)).then(() => void stored++);
      write.catch(() => {}); // the first refusal is the one that counts (awaited below)
      inFlight.push(write);
      if (inFlight.length >= IN_FLIGHT) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } catch (err) {
    if (err instanceof OutputError && err.code === 'output_limit') {
      await Promise.allSettled(inFlight);
      return { chunks: stored, stopped: 'output_limit' };
    }
    throw err;
  }
  return { chunks };
}

/** `--echo`: kind `stream` streams, every other kind answers with its payload. */
export const echoHandlers: Record<string, Handler> = {
  stream: streamHandler,
  '*': (payload) => payload,
};
