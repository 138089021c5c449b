/**
 * Client routes (role client), mounted at /v1/runtimes: create, batch, get (long-poll),
 * list, cancel, retry, and the workspace's runtimes. Every store call is scoped to the
 * caller's workspace, so another workspace's ids are simply not found.
 */
import { type Context, Hono } from 'hono';
import { type SSEStreamingApi, streamSSE } from 'hono/streaming';
import { FollowLagging, type RequestFollow } from '../../hub/request-follow.js';
import { traceCreate, traceDeliver } from '../../hub/tracing.js';
import { CreateBatchBody, CreateRequestBody, TERMINAL } from '../../protocol/index.js';
import { type RuntimeRef, toApiRequest } from '../../stores/domain.js';
import type { AppEnv } from './context.js';
import { HttpError } from './errors.js';
import type { HubApi } from './hub-api.js';
import {
  CancelBody,
  EventsQuery,
  GetQuery,
  IdempotencyKey,
  LastEventId,
  ListQuery,
  OutputQuery,
} from './schemas.js';
import { readHeader, readJson, readQuery, requestIdParam, runtimeRef } from './validate.js';

const noSuchRequest = (): HttpError => new HttpError('not_found', 'no such request');

/** An SSE comment this often keeps proxies from closing a quiet stream. */
const SSE_KEEPALIVE_MS = 15_000;

/**
 * A request's events as SSE: `output` (id: the offset, data {epoch, data}) and `state`
 * (data: the Request), ending after the terminal state, or when the reader falls too far
 * behind or the node shuts down (the reader reconnects with Last-Event-ID).
 */
async function streamEvents(
  stream: SSEStreamingApi,
  follow: RequestFollow,
  nodeId: string,
): Promise<void> {
  stream.onAbort(() => follow.close());
  const keepalive = setInterval(() => void stream.write(': keepalive\n\n'), SSE_KEEPALIVE_MS);
  keepalive.unref();
  try {
    for (;;) {
      const event = await follow.next();
      if (event === null) return;
      if (event.type === 'output') {
        const { offset, epoch, data } = event.chunk;
        await stream.writeSSE({
          event: 'output',
          id: String(offset),
          data: `{"epoch":${epoch},"data":${data}}`,
        });
      } else {
        await stream.writeSSE({
          event: 'state',
          data: JSON.stringify(toApiRequest(event.record)),
        });
        if (TERMINAL.has(event.record.status)) traceDeliver(event.record, nodeId, 'sse');
      }
    }
  } catch (err) {
    if (!(err instanceof FollowLagging)) throw err;
  } finally {
    clearInterval(keepalive);
    follow.close();
  }
}

/**
 * A create the workspace's create rate is known to refuse (this node was refused for
 * want of a token that is not due yet) is answered before its body is read: a flood of
 * refused creates costs the node little and the store nothing.
 */
function refuseOverRate(hub: HubApi, rt: RuntimeRef): void {
  const refusal = hub.store.rateRefusal(rt.workspace);
  if (refusal) throw refusal;
}

/** The W3C trace headers of a create (traceCreate ignores malformed ones). */
function traceHeaders(c: Context<AppEnv>): { traceparent?: string; tracestate?: string } {
  return { traceparent: c.req.header('traceparent'), tracestate: c.req.header('tracestate') };
}

export function clientRoutes(hub: HubApi, nodeId: string): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  routes.get('/', async (c) => {
    const runtimes = await hub.store.listRuntimes(c.get('principal').workspace);
    return c.json({ runtimes });
  });

  routes.get('/:runtime', async (c) => {
    const info = await hub.store.getRuntime(runtimeRef(c));
    if (info === null) throw new HttpError('not_found', 'no such runtime');
    return c.json(info);
  });

  routes.post('/:runtime/requests', async (c) => {
    const rt = runtimeRef(c);
    refuseOverRate(hub, rt);
    const idempotencyKey = readHeader(c, 'idempotency-key', IdempotencyKey);
    const body = await readJson(c, CreateRequestBody);
    const createdBy = c.get('principal').sub;
    const { request, created } = await traceCreate(
      nodeId,
      rt,
      traceHeaders(c),
      (trace) => hub.store.create(rt, body, { createdBy, idempotencyKey, trace }),
      (out) => [out.request],
    );
    return c.json(toApiRequest(request), created ? 201 : 200);
  });

  routes.post('/:runtime/requests/batch', async (c) => {
    const rt = runtimeRef(c);
    refuseOverRate(hub, rt);
    const body = await readJson(c, CreateBatchBody);
    const createdBy = c.get('principal').sub;
    // One create span for the batch: every item keeps its context.
    const records = await traceCreate(
      nodeId,
      rt,
      traceHeaders(c),
      (trace) => hub.store.createBatch(rt, body.requests, { createdBy, trace }),
      (out) => out,
    );
    return c.json({ requests: records.map(toApiRequest) }, 201);
  });

  routes.get('/:runtime/requests', async (c) => {
    const rt = runtimeRef(c);
    const query = readQuery(c, ListQuery);
    const page = await hub.store.list(rt, query);
    return c.json({ requests: page.requests.map(toApiRequest), next_cursor: page.next_cursor });
  });

  routes.get('/:runtime/requests/:id', async (c) => {
    const rt = runtimeRef(c);
    const { wait_ms } = readQuery(c, GetQuery);
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const record = wait_ms
      ? await hub.waitForTerminal(rt, id, wait_ms)
      : await hub.store.get(rt, id);
    if (record === null) throw noSuchRequest();
    if (wait_ms && TERMINAL.has(record.status)) traceDeliver(record, nodeId, 'long_poll');
    return c.json(toApiRequest(record));
  });

  routes.get('/:runtime/requests/:id/output', async (c) => {
    const rt = runtimeRef(c);
    const { after, limit } = readQuery(c, OutputQuery);
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const page = await hub.store.readOutput(rt, id, { after, limit });
    if (page === null) throw noSuchRequest();
    // Built as text: each chunk's data is stored as JSON text already.
    const chunks = page.chunks.map(
      (ch) => `{"offset":${ch.offset},"epoch":${ch.epoch},"data":${ch.data}}`,
    );
    const body = `{"chunks":[${chunks.join(',')}],"next_after":${page.next_after},"done":${page.done}}`;
    return c.body(body, 200, { 'content-type': 'application/json' });
  });

  routes.get('/:runtime/requests/:id/events', async (c) => {
    const rt = runtimeRef(c);
    const query = readQuery(c, EventsQuery);
    const lastEventId = readHeader(c, 'last-event-id', LastEventId);
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const after = lastEventId !== undefined ? Number(lastEventId) : (query.after ?? 0);
    const follow = await hub.followRequest(rt, id, after);
    if (follow === null) throw noSuchRequest();
    return streamSSE(c, (stream) => streamEvents(stream, follow, nodeId));
  });

  routes.post('/:runtime/requests/:id/cancel', async (c) => {
    const rt = runtimeRef(c);
    const { reason } = await readJson(c, CancelBody, {});
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const record = await hub.store.cancel(rt, id, reason);
    return c.json(toApiRequest(record));
  });

  routes.post('/:runtime/requests/:id/retry', async (c) => {
    const rt = runtimeRef(c);
    refuseOverRate(hub, rt);
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const record = await hub.store.retry(rt, id, { createdBy: c.get('principal').sub });
    return c.json(toApiRequest(record), 201);
  });

  return routes;
}
