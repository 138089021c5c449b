/**
 * The dashboard and the browser client over HTTP, without auth (the page asks for a
 * token, or carries the dev token in dev mode):
 *
 *   GET /                   the dashboard page (never cached: it may hold the dev token,
 *                           and holds it only for a local Host, see `isLocalHost`)
 *   GET /ui/app.js          its script          GET /ui/style.css   its styles
 *   GET /ui/charts.js       its charts (uPlot)  GET /ui/charts.css  uPlot's styles
 *   GET /ui/explorer.js     its request list, detail and dead-letter view
 *   GET /client/browser.js  the browser client as an ES module, importable cross-origin;
 *                           revalidated each use (strong ETag, 304 on If-None-Match)
 *   GET /client/browser.<hash>.js(.map)  the same module (its source map) by content
 *                           hash, cached for a year; the dashboard imports this one. An
 *                           unknown hash (another version, mid-deploy) redirects to
 *                           /client/browser.js
 */
import { type Context, Hono } from 'hono';
import { etag, RETAINED_304_HEADERS } from 'hono/etag';
import { SECURITY_HEADERS } from '../http/edge.js';
import { headerValues } from '../http/raw-headers.js';
import {
  type BrowserClient,
  browserClient,
  browserClientPath,
  chartsBundle,
  dashboardFile,
  dashboardHtml,
  dashboardScript,
} from './assets.js';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** `browser.<16 hex>.js` or its `.map`. */
const HASHED_CLIENT = /^browser\.([0-9a-f]{16})\.js(\.map)?$/;

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
  // A 304 keeps the CORS header, or a cross-origin revalidation would fail.
  routes.use(
    '/client/*',
    etag({ retainedHeaders: [...RETAINED_304_HEADERS, 'access-control-allow-origin'] }),
  );

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

  routes.get('/ui/app.js', async (c) => c.body(await dashboardScript(), 200, asset(JS)));
  routes.get('/ui/style.css', async (c) =>
    c.body(await dashboardFile('style.css'), 200, asset(CSS)),
  );
  routes.get('/ui/explorer.js', async (c) =>
    c.body(await dashboardFile('explorer.js'), 200, asset(JS)),
  );
  routes.get('/ui/charts.js', async (c) => c.body((await chartsBundle()).code, 200, asset(JS)));
  routes.get('/ui/charts.css', async (c) => c.body((await chartsBundle()).css, 200, asset(CSS)));
  routes.get('/client/browser.js', async (c) => {
    const client = await browserClient();
    return c.body(client.code, 200, clientHeaders(client, 'no-cache'));
  });
  routes.get('/client/:file', async (c) => {
    const match = HASHED_CLIENT.exec(c.req.param('file'));
    if (!match) return c.notFound();
    const client = await browserClient();
    if (match[1] !== client.hash) {
      if (match[2]) return c.notFound();
      return c.body(null, 302, {
        location: '/client/browser.js',
        'cache-control': 'no-store',
        'access-control-allow-origin': '*',
        ...SECURITY_HEADERS,
      });
    }
    if (match[2]) {
      return c.body(client.map, 200, {
        ...asset(JSON_TYPE),
        'cache-control': IMMUTABLE,
        'access-control-allow-origin': '*',
      });
    }
    return c.body(client.code, 200, clientHeaders(client, IMMUTABLE));
  });

  return routes;
}

function asset(contentType: string): Record<string, string> {
  return { 'content-type': contentType, 'cache-control': 'no-cache', ...SECURITY_HEADERS };
}

/** The client's headers: pages on other origins may `import` it from the hub. */
function clientHeaders(client: BrowserClient, cacheControl: string): Record<string, string> {
  return {
    ...asset(JS),
    'cache-control': cacheControl,
    etag: client.etag,
    sourcemap: `${browserClientPath(client)}.map`,
    'access-control-allow-origin': '*',
  };
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
