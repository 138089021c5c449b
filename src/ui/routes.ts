/**
 * The dashboard and the browser client over HTTP, without auth (the page asks for a
 * token, or carries the dev token in dev mode):
 *
 *   GET /                   the dashboard page (never cached: it may hold the dev token)
 *   GET /ui/app.js          its script          GET /ui/style.css   its styles
 *   GET /client/browser.js  the browser client as an ES module, importable cross-origin
 */
import { Hono } from 'hono';
import { etag } from 'hono/etag';
import { browserClientJs, dashboardFile, dashboardHtml } from './assets.js';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const HTML = 'text/html; charset=utf-8';

/** The page loads only its own files and talks only to this origin (HTTP and websocket). */
const PAGE_POLICY = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface UiOptions {
  /** Dev mode: a client token handed to the page so it works with no setup. */
  devClientToken?: string;
}

export function uiRoutes(opts: UiOptions = {}): Hono {
  const routes = new Hono();
  routes.use('/ui/*', etag());
  routes.use('/client/*', etag());

  routes.get('/', async (c) =>
    c.body(await dashboardHtml(opts.devClientToken), 200, {
      'content-type': HTML,
      'cache-control': 'no-store',
      'content-security-policy': PAGE_POLICY,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    }),
  );

  routes.get('/ui/app.js', async (c) => c.body(await dashboardFile('app.js'), 200, asset(JS)));
  routes.get('/ui/style.css', async (c) =>
    c.body(await dashboardFile('style.css'), 200, asset(CSS)),
  );
  routes.get('/client/browser.js', async (c) =>
    c.body(await browserClientJs(), 200, {
      ...asset(JS),
      // Pages on other origins may `import` the client from the hub.
      'access-control-allow-origin': '*',
    }),
  );

  return routes;
}

function asset(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  };
}
