/**
 * Operations routes, outside /v1 and without auth: liveness, readiness (503 while
 * draining), Prometheus metrics, the OpenAPI document, and the dashboard with the
 * browser client (src/ui/routes.ts).
 */
import { Hono } from 'hono';
import { uiRoutes } from '../ui/routes.js';
import type { AppDeps, AppEnv } from './context.js';
import { buildOpenApi } from './openapi.js';

export function opsRoutes(deps: AppDeps): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  let openapi: string | undefined;

  routes.get('/healthz', (c) => c.json({ ok: true }));

  routes.get('/readyz', async (c) => {
    let result: Awaited<ReturnType<AppDeps['ready']>>;
    try {
      result = await deps.ready();
    } catch (err) {
      c.get('log').warn({ err }, 'readiness check failed');
      result = { ok: false, checks: { ready: 'check failed' } };
    }
    const ok = result.ok && !deps.hub.draining;
    return c.json({ ok, checks: result.checks }, ok ? 200 : 503);
  });

  routes.get('/metrics', async (c) => {
    const { contentType, body } = await deps.metricsText();
    return c.body(body, 200, { 'content-type': contentType });
  });

  routes.get('/openapi.json', (c) => {
    openapi ??= JSON.stringify(buildOpenApi());
    return c.body(openapi, 200, { 'content-type': 'application/json; charset=utf-8' });
  });

  routes.route('/', uiRoutes({ devClientToken: deps.devClientToken }));

  return routes;
}
