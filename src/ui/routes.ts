/**
 * The dashboard and the browser client over HTTP, without auth (the page asks for a
 * token, or carries the dev token in dev mode):
 *
 *   GET /                   the dashboard page (never cached: it may hold the dev token,
 *                           and holds it only for a local Host, see `isLocalHost`)
 *   GET /ui/app.js          its script          GET /ui/style.css   its styles
 *   GET /client/browser.js  the browser client as an ES module, importable cross-origin
 */
import { type Context, Hono } from 'hono';
import { etag } from 'hono/etag';
import { SECURITY_HEADERS } from '../http/edge.js';
import { headerValues } from '../http/raw-headers.js';
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

  routes.get('/', async (c) => {
    const token =
      opts.devClientToken !== undefined && isLocalHost(c) ? opts.devClientToken : undefined;
    return c.body(await dashboardHtml(token), 200, {
      'content-type': HTML,
      'cache-control': 'no-store',
      'content-security-policy': PAGE_POLICY,
      // The same page answers every Host: a cache must not hand a local one elsewhere.
      vary: 'Host',
      ...SECURITY_HEADERS,
    });
  });

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
  return { 'content-type': contentType, 'cache-control': 'no-cache', ...SECURITY_HEADERS };
}

/** localhost, 127.0.0.1 or [::1], any port: the names a rebinding attacker cannot use. */
const LOCAL_HOST = /^(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$/i;

/**
 * Whether the page was asked for by a local name (exactly one Host header). A DNS-
 * rebinding page reaches 127.0.0.1 under its own name, which arrives as its Host: it
 * gets the page without the dev token, so it has nothing to read.
 */
function isLocalHost(c: Context): boolean {
  const hosts = headerValues(c, 'host');
  return hosts.length === 1 && LOCAL_HOST.test((hosts[0] as string).trim());
}
