/**
 * Operations routes, outside /v1 and without auth: liveness, readiness (503 while
 * draining), Prometheus metrics, the OpenAPI document and the dashboard page.
 */
import { Hono } from 'hono';
import type { AppDeps, AppEnv } from './context.js';
import { buildOpenApi } from './openapi.js';

const PLACEHOLDER = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard</title></head>
<body><h1>Switchboard</h1><p>The dashboard is not built yet. See
<a href="/openapi.json">/openapi.json</a>, <a href="/readyz">/readyz</a> and
<a href="/metrics">/metrics</a>.</p></body></html>`;

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

  routes.get('/', (c) => c.html(deps.dashboardHtml ? deps.dashboardHtml() : PLACEHOLDER));

  return routes;
}
