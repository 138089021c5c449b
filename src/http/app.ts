/**
 * The HTTP API (DESIGN.md section 4) as one hono app: middleware, then the route groups.
 * Order: the edge headers (src/http/edge.ts), request id + access log, CORS, the declared
 * body length, then per group no-store, the draining guard and the role check; a body is
 * read only by its route, so never before auth. Every error, wherever thrown, leaves through `onError` as the one
 * error body; nothing internal reaches a client.
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { clientRoutes } from './client-routes.js';
import { type AppDeps, type AppEnv, rejectWhileDraining, requireRole } from './context.js';
import { daemonRoutes } from './daemon-routes.js';
import { bodyLimit, edgeHeaders, noStore, withHeaders } from './edge.js';
import { errorBody, toHttpError } from './errors.js';
import { opsRoutes } from './ops-routes.js';

export type { AppDeps } from './context.js';

/** A client's x-request-id is echoed when it is sane; otherwise one is made up. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** Probes and scrapes log at debug: they would drown the access log. */
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { hub, auth, config } = deps;
  const app = new Hono<AppEnv>();

  app.use('*', edgeHeaders);
  app.use('*', async (c, next) => {
    const started = performance.now();
    const given = c.req.header('x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    const log = deps.logger.child({ req_id: requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    await withHeaders(c, { 'x-request-id': requestId }, next);
    const status = c.res.status;
    const line = {
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (status >= 500) log.warn(line, 'request');
    else if (QUIET.has(c.req.path)) log.debug(line, 'request');
    else log.info(line, 'request');
  });

  if (config.corsOrigins.length > 0) {
    app.use(
      '*',
      cors({
        origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: [
          'Authorization',
          'Content-Type',
          'Idempotency-Key',
          'X-Request-Id',
          'traceparent',
          'tracestate',
        ],
        exposeHeaders: ['X-Request-Id'],
        maxAge: 600,
      }),
    );
  }

  // Declared lengths only: a body is read (capped) by the route that wants it, after auth.
  app.use('*', bodyLimit(config.maxPayloadBytes));

  app.use('/v1/*', noStore);
  app.use('/v1/*', rejectWhileDraining(hub));
  // `/x/*` also matches `/x` itself in hono.
  app.use('/v1/runtimes/*', requireRole(auth, 'client'));
  app.use('/v1/daemon/*', requireRole(auth, 'daemon'));
  app.use('/v1/stats', requireRole(auth, 'client'));
  app.get('/v1/stats', async (c) => c.json(await hub.workspaceStats(c.get('principal').workspace)));
  app.route('/v1/runtimes', clientRoutes(hub, config.nodeId));
  app.route('/v1/daemon', daemonRoutes(hub));
  app.route('/', opsRoutes(deps));

  app.notFound((c) => c.json(errorBody('not_found', 'no such route'), 404));

  app.onError((err, c) => {
    const httpError = toHttpError(err);
    if (httpError.status >= 500) {
      const log = c.get('log') ?? deps.logger;
      log.error({ err, code: httpError.code }, 'request failed');
    }
    if (httpError.retryAfterMs !== undefined) {
      c.header('retry-after', String(Math.max(1, Math.ceil(httpError.retryAfterMs / 1000))));
    } else if (httpError.status === 503) c.header('retry-after', '1');
    return c.json(
      errorBody(httpError.code, httpError.message, httpError.details),
      httpError.status,
    );
  });

  return app;
}
