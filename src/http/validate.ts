/**
 * Input at the edge: bodies, query strings, path parameters and headers go through zod
 * here, and every failure is a 400 `invalid_request` whose details list the issues.
 * Past these helpers, route code trusts its types.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { ID_PATTERN, RuntimeId } from '../../protocol/index.js';
import type { RuntimeRef } from '../../stores/domain.js';
import type { AppEnv } from './context.js';
import { readBodyText } from './edge.js';
import { type ErrorDetail, HttpError } from './errors.js';

export function issuesToDetails(issues: z.core.$ZodIssue[], prefix: string[] = []): ErrorDetail[] {
  return issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))],
    message: i.message,
  }));
}

function check<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  prefix: string[] = [],
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new HttpError(
    'invalid_request',
    `invalid ${what}`,
    issuesToDetails(parsed.error.issues, prefix),
  );
}

/**
 * Reads the body as JSON and validates it. `emptyAs`: what an empty body means (for
 * routes whose fields are all optional); without it an empty body is malformed JSON.
 */
export async function readJson<S extends z.ZodType>(
  c: Context<AppEnv>,
  schema: S,
  emptyAs?: unknown,
): Promise<z.output<S>> {
  const text = await readBodyText(c);
  let json: unknown;
  if (text.trim() === '' && emptyAs !== undefined) {
    json = emptyAs;
  } else {
    try {
      json = JSON.parse(text);
    } catch {
      throw new HttpError('invalid_request', 'malformed JSON');
    }
  }
  return check(schema, json, 'request body');
}

export function readQuery<S extends z.ZodType>(c: Context<AppEnv>, schema: S): z.output<S> {
  return check(schema, c.req.query(), 'query string');
}

/** The caller's runtime from `:runtime`, always inside the caller's workspace. */
export function runtimeRef(c: Context<AppEnv>): RuntimeRef {
  const runtime = check(RuntimeId, c.req.param('runtime'), 'runtime id', ['runtime']);
  return { workspace: c.get('principal').workspace, runtime };
}

/** `:id`, or undefined when it cannot name any request (the caller answers as missing). */
export function requestIdParam(c: Context<AppEnv>): string | undefined {
  const id = c.req.param('id');
  return id !== undefined && ID_PATTERN.test(id) ? id : undefined;
}

export function readHeader<S extends z.ZodType>(
  c: Context<AppEnv>,
  name: string,
  schema: S,
): z.output<S> | undefined {
  const value = c.req.header(name);
  return value === undefined ? undefined : check(schema, value, `${name} header`, [name]);
}
