/**
 * The HTTP edge (DESIGN.md section 7): the headers every answer carries, and the body.
 * A declared length over MAX_PAYLOAD_BYTES is refused before anything is read; a body
 * is read only by the route that needs it (so after auth) and never past the limit; an
 * answer that leaves a body unread says `Connection: close`.
 *
 * Why close: an unread body is still on the wire. Node's adapter tries to drain it after
 * the answer, gives up after 500 ms and destroys the socket, which a keep-alive client
 * meets as a reset on its next request. `Connection: close` tells the client up front
 * that this connection ends here, so its next request goes out on a fresh one.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { HttpError } from './errors.js';

/** Every answer, whatever produced it. */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/** Outermost: the security headers, and `Connection: close` when a body went unread. */
export const edgeHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
  if (hasBody(c) && c.get('bodyRead') !== true) c.header('connection', 'close');
};

/** /v1 answers depend on who asked: no cache may keep them. */
export const noStore: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  c.header('cache-control', 'no-store');
};

function hasBody(c: Context<AppEnv>): boolean {
  const length = c.req.header('content-length');
  if (c.req.header('transfer-encoding') !== undefined) return true;
  return length !== undefined && length.trim() !== '0';
}

const tooLarge = (max: number): HttpError =>
  new HttpError('payload_too_large', `the body is over ${max} bytes (MAX_PAYLOAD_BYTES)`);

/**
 * A declared Content-Length over `max` is refused without reading a byte; otherwise
 * `max` is what `readBodyText` will read at most, later, once the route wants the body.
 */
export function bodyLimit(max: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && Number(length) > max) throw tooLarge(max);
    c.set('maxBodyBytes', max);
    await next();
  };
}

/**
 * The whole body as text, never buffering past the limit (a chunked body declares no
 * length: it is counted as it arrives). Marks the body read, so the connection stays.
 */
export async function readBodyText(c: Context<AppEnv>): Promise<string> {
  const max = c.get('maxBodyBytes');
  const stream = c.req.raw.body;
  if (stream === null) {
    c.set('bodyRead', true);
    return '';
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    // Not cancelled: that would destroy the socket before the 413 is written.
    if (size > max) throw tooLarge(max);
    chunks.push(value);
  }
  c.set('bodyRead', true);
  return Buffer.concat(chunks, size).toString('utf8');
}
