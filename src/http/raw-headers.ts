/**
 * Headers as they were sent. Node's `IncomingMessage.headers` keeps only the first
 * Authorization or Host of several (and joins others), so a rule such as "exactly one
 * Authorization header" (DESIGN.md section 7) has to count in `rawHeaders`.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

/** The values of `name` (lower case) in Node's flat `[name, value, name, value, ...]` list. */
export function rawHeaderValues(raw: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === name) values.push(raw[i + 1] as string);
  }
  return values;
}

/**
 * Every value of header `name` on a hono request: from the Node request that
 * @hono/node-server passes as `c.env.incoming`, else (in process, `app.request`) from
 * the fetch Headers, where duplicates arrive already joined into one value.
 */
export function headerValues(c: Context, name: string): string[] {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  const raw = env?.incoming?.rawHeaders;
  if (raw !== undefined) return rawHeaderValues(raw, name);
  const value = c.req.header(name);
  return value === undefined ? [] : [value];
}
