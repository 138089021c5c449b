/**
 * Client routes (role client), mounted at /v1/runtimes: create, batch, get (long-poll),
 * list, cancel, retry, and the workspace's runtimes. Every store call is scoped to the
 * caller's workspace, so another workspace's ids are simply not found.
 */
import { Hono } from 'hono';
import { CreateBatchBody, CreateRequestBody } from '../../protocol/index.js';
import { toApiRequest } from '../../stores/domain.js';
import type { AppEnv } from './context.js';
import { HttpError } from './errors.js';
import type { HubApi } from './hub-api.js';
import { CancelBody, GetQuery, IdempotencyKey, ListQuery } from './schemas.js';
import { readHeader, readJson, readQuery, requestIdParam, runtimeRef } from './validate.js';

const noSuchRequest = (): HttpError => new HttpError('not_found', 'no such request');

export function clientRoutes(hub: HubApi): Hono<AppEnv> {
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
    const idempotencyKey = readHeader(c, 'idempotency-key', IdempotencyKey);
    const body = await readJson(c, CreateRequestBody);
    const { request, created } = await hub.store.create(rt, body, {
      createdBy: c.get('principal').sub,
      idempotencyKey,
    });
    return c.json(toApiRequest(request), created ? 201 : 200);
  });

  routes.post('/:runtime/requests/batch', async (c) => {
    const rt = runtimeRef(c);
    const body = await readJson(c, CreateBatchBody);
    const records = await hub.store.createBatch(rt, body.requests, {
      createdBy: c.get('principal').sub,
    });
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
    return c.json(toApiRequest(record));
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
    const id = requestIdParam(c);
    if (id === undefined) throw noSuchRequest();
    const record = await hub.store.retry(rt, id, { createdBy: c.get('principal').sub });
    return c.json(toApiRequest(record), 201);
  });

  return routes;
}
