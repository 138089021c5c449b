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
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { HttpError } from './errors.js';

/** Every answer, whatever produced it. */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/**
 * Runs the rest with `headers` on its answer. They are set before (hono writes prepared
 * headers into the response it builds), and again after only where the answer lacks
 * them (a Response a route built itself): a header set on a finished response makes
 * hono copy the whole response, which cost a tenth of a create's CPU in a profile.
 */
export async function withHeaders(
  c: Context<AppEnv>,
  headers: Readonly<Record<string, string>>,
  next: () => Promise<void>,
): Promise<void> {
  for (const name in headers) c.header(name, headers[name]);
  await next();
  const answered = c.res.headers;
  for (const name in headers) {
    if (answered.get(name) !== headers[name]) c.header(name, headers[name]);
  }
}

/** Outermost: the security headers, and `Connection: close` when a body went unread. */
export const edgeHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await withHeaders(c, SECURITY_HEADERS, next);
  if (hasBody(c) && c.get('bodyRead') !== true) c.header('connection', 'close');
};

const NO_STORE = { 'cache-control': 'no-store' } as const;

/** /v1 answers depend on who asked: no cache may keep them. */
export const noStore: MiddlewareHandler<AppEnv> = (c, next) => withHeaders(c, NO_STORE, next);

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
  // Under the node adapter, straight from the socket's IncomingMessage: `c.req.raw.body`
  // would first build a whole web Request with a ReadableStream around it (a fifth of a
  // create's CPU in a profile of node A). In process (`app.request`), the web body.
  const incoming = c.env?.incoming;
  if (incoming) {
    const text = await readIncoming(incoming, max);
    c.set('bodyRead', true);
    return text;
  }
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

/** A Node request body as text, refused past `max` (left unread then, not destroyed). */
function readIncoming(incoming: IncomingMessage, max: number): Promise<string> {
  if (incoming.readableEnded) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        incoming.pause();
        done(tooLarge(max));
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => done(null);
    const onError = (err: Error) => done(err);
    const onAborted = () => done(new Error('the client aborted the request body'));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('aborted', onAborted);
  });
}
