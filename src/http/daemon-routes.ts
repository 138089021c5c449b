/**
 * Daemon routes (role daemon), mounted at /v1/daemon: the polling fallback for daemons
 * without a websocket. The runtime comes from the token. A result or renew the store
 * refuses for a fencing reason (lease lost, already terminal) answers 409 `lease_lost`:
 * all a daemon needs to know is that the request is no longer its own. An id that is not
 * in its runtime (another runtime's, another workspace's, malformed, purged) answers the
 * one 404 `not_found` of DESIGN.md section 4, the same for all, so it reveals nothing.
 */
import { Hono } from 'hono';
import { toApiRequest } from '../../stores/domain.js';
import { isStoreError, StoreError } from '../../stores/errors.js';
import type { Outcome } from '../../stores/store.js';
import { type AppEnv, daemonRuntime } from './context.js';
import { HttpError } from './errors.js';
import type { HubApi } from './hub-api.js';
import { HeartbeatBody, OutputBody, RenewBody, ResultBody } from './schemas.js';
import { readJson, requestIdParam } from './validate.js';

const leaseLost = (cause?: unknown): HttpError =>
  new HttpError(
    'lease_lost',
    'the lease for this request is no longer held at this epoch',
    undefined,
    {
      cause,
    },
  );

/** Turns the store's fencing refusals into `lease_lost`; anything else passes through. */
async function fenced<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isStoreError(err, 'lease_lost') || isStoreError(err, 'already_terminal')) {
      throw leaseLost(err);
    }
    throw err;
  }
}

export function daemonRoutes(hub: HubApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  routes.post('/heartbeat', async (c) => {
    const body = await readJson(c, HeartbeatBody, {});
    const principal = c.get('principal');
    return c.json(await hub.heartbeat(daemonRuntime(principal), principal.sub, body));
  });

  routes.post('/requests/:id/result', async (c) => {
    const body = await readJson(c, ResultBody);
    const id = requestIdParam(c);
    if (id === undefined) throw new StoreError('not_found');
    const outcome: Outcome =
      body.status === 'completed'
        ? { status: 'completed', result: body.result ?? null }
        : { status: 'failed', error: body.error };
    const rt = daemonRuntime(c.get('principal'));
    const record = await fenced(() => hub.report(rt, id, body.epoch, outcome, body.trace));
    return c.json({ request: toApiRequest(record) });
  });

  routes.post('/requests/:id/output', async (c) => {
    const body = await readJson(c, OutputBody);
    const id = requestIdParam(c);
    if (id === undefined) throw new StoreError('not_found');
    const rt = daemonRuntime(c.get('principal'));
    const writes = body.chunks.map((w) => ({ seq: w.seq, data: JSON.stringify(w.data) }));
    const out = await fenced(() => hub.store.appendOutput(rt, id, body.epoch, writes));
    if (out.refused) {
      // The chunks before the refused one are stored; details name the refused one.
      const at = body.chunks.findIndex((w) => w.seq > out.acked_seq);
      const details = [{ path: ['chunks', at], message: `refused; acked_seq ${out.acked_seq}` }];
      if (out.refused === 'output_limit') {
        throw new HttpError('output_limit', "the request's output is full", details);
      }
      throw new HttpError('invalid_request', `seq gap: expected seq ${out.acked_seq + 1}`, details);
    }
    return c.json({ epoch: out.epoch, acked_seq: out.acked_seq });
  });

  routes.post('/requests/:id/renew', async (c) => {
    const { epoch } = await readJson(c, RenewBody);
    const id = requestIdParam(c);
    if (id === undefined) throw new StoreError('not_found');
    const rt = daemonRuntime(c.get('principal'));
    const record = await fenced(() => hub.renew(rt, id, epoch));
    if (record.lease_expires_at === null) throw leaseLost();
    return c.json({ lease_expires_at: new Date(record.lease_expires_at).toISOString() });
  });

  return routes;
}
