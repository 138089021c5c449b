/**
 * One output chunk as the daemon SDK sends it (DESIGN.md section 6), and the error every
 * `ctx.output()` promise that does not settle with "stored" rejects with. A chunk is
 * checked and serialised once, when it is written: a value JSON cannot carry, one nested
 * deeper than the protocol allows, or one over the hub's frame limit is refused at once
 * (it takes no `seq`, so the stream goes on), instead of a frame the hub refuses with a
 * seq gap behind it.
 */
import { isJsonValue, MAX_JSON_DEPTH } from '../../protocol/index.js';

/**
 * Why a chunk was not stored:
 * - `lease_lost`: the attempt is no longer this daemon's (the hub said so, or it was
 *   cancelled, superseded or its lease lapsed). Its result will not be taken either.
 * - `output_limit`: the request's output is full (`MAX_OUTPUT_CHUNKS` / `MAX_OUTPUT_BYTES`).
 *   Nothing more of this attempt's output is stored; the handler may still return a result.
 * - `refused`: the hub refused the chunks for another reason (its message says which).
 * - `invalid_output`: this chunk cannot be sent (not JSON, too deep, too large); only
 *   this chunk is refused, the stream goes on.
 * - `closed`: the handler had returned, or the daemon closed, before the chunk was stored.
 */
export type OutputErrorCode =
  | 'lease_lost'
  | 'output_limit'
  | 'refused'
  | 'invalid_output'
  | 'closed';

/**
 * The error a `ctx.output()` promise rejects with; `code` says why.
 *
 * @example
 * try {
 *   await ctx.output({ progress: 0.5 });
 * } catch (err) {
 *   if (err instanceof OutputError && err.code === 'output_limit') return { truncated: true };
 *   throw err;
 * }
 */
export class OutputError extends Error {
  override readonly name = 'OutputError';
  constructor(
    readonly code: OutputErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A promise rejected with `err` that does not count as unhandled: a handler that does
 * not await its `ctx.output()` calls must not crash the process when the stream stops.
 * Awaiting it still throws.
 */
export function rejected(err: OutputError): Promise<never> {
  const p = Promise.reject(err);
  p.catch(() => {});
  return p;
}

/** One chunk waiting to be stored. */
export interface Chunk {
  readonly seq: number;
  /** The data as JSON text (sent as is, in a frame or an HTTP batch). */
  readonly text: string;
  /** Its UTF-8 length: what the hub counts against MAX_OUTPUT_BYTES. */
  readonly bytes: number;
  resolve(): void;
  reject(err: OutputError): void;
}

/** Room for the frame or batch entry around the data. */
export const CHUNK_OVERHEAD = 256;

/** The chunk's JSON text, or the reason it cannot be sent. */
export function encodeChunk(data: unknown, maxPayloadBytes: number): string | OutputError {
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    return new OutputError(
      'invalid_output',
      `output cannot be encoded as JSON: ${(err as Error).message}`,
    );
  }
  if (text === undefined) return new OutputError('invalid_output', 'output must be a JSON value');
  // Only text with more brackets than the depth limit can nest too deep: parse just those.
  if (brackets(text) > MAX_JSON_DEPTH && !isJsonValue(JSON.parse(text))) {
    return new OutputError('invalid_output', `output nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (Buffer.byteLength(text) > maxPayloadBytes - CHUNK_OVERHEAD) {
    return new OutputError(
      'invalid_output',
      `output is over the hub's ${maxPayloadBytes} byte limit`,
    );
  }
  return text;
}

function brackets(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) n++; // { [
  }
  return n;
}

/** The `output` frame for a chunk, built around its text (no second serialisation). */
export function outputFrame(id: string, epoch: number, chunk: Chunk): string {
  return `{"type":"output","id":${JSON.stringify(id)},"epoch":${epoch},"seq":${chunk.seq},"data":${chunk.text}}`;
}

/** The body of `POST /v1/daemon/requests/:id/output` for these chunks. */
export function outputBody(epoch: number, chunks: readonly Chunk[]): string {
  const parts = chunks.map((c) => `{"seq":${c.seq},"data":${c.text}}`);
  return `{"epoch":${epoch},"chunks":[${parts.join(',')}]}`;
}
