/**
 * The dashboard's routes over HTTP: content types, caching, the dev token only when
 * given (escaped) and only for a local Host, and the browser client bundled to a module
 * with no imports that works when imported as served: revalidated by a strong ETag at
 * /client/browser.js, cached for good under its content hash, which the dashboard uses.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type * as BrowserClient from '../../src/client/browser.js';
import type { SwitchboardNode } from '../../src/node.js';
import { uiRoutes } from '../../src/ui/routes.js';
import { clientToken, startTestNode } from '../helpers/node.js';

describe('dashboard routes', () => {
  it('serves the page with the dev token only when one is given, escaped', async () => {
    const plain = await uiRoutes().request('/');
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('no-store');
    expect(plain.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await plain.text();
    expect(html).toContain('<script type="module" src="/ui/app.js"></script>');
    expect(html).not.toContain('switchboard-token"');

    const routes = uiRoutes({ devClientToken: 'a.b"<c>&' });
    const dev = await routes.request('/', { headers: { host: 'localhost:8080' } });
    expect(await dev.text()).toContain(
      '<meta name="switchboard-token" content="a.b&quot;&lt;c&gt;&amp;" />',
    );
    // Only a local Host gets the token (test/http/edge.test.ts covers a real node).
    for (const host of ['evil.example', undefined]) {
      const forged = await routes.request('/', host ? { headers: { host } } : {});
      expect(forged.status).toBe(200);
      expect(await forged.text()).not.toContain('switchboard-token"');
    }
  });

  it('serves the script, the styles and the client with their types', async () => {
    const routes = uiRoutes();
    for (const [path, type] of [
      ['/ui/app.js', 'text/javascript; charset=utf-8'],
      ['/ui/style.css', 'text/css; charset=utf-8'],
      ['/ui/explorer.js', 'text/javascript; charset=utf-8'],
      ['/ui/charts.js', 'text/javascript; charset=utf-8'],
      ['/ui/charts.css', 'text/css; charset=utf-8'],
      ['/client/browser.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const res = await routes.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe(type);
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      const etag = res.headers.get('etag');
      expect(etag, path).toBeTruthy();
      const again = await routes.request(path, { headers: { 'if-none-match': etag ?? '' } });
      expect(again.status, path).toBe(304);
    }
    // The charts are one module with uPlot inside (no import left), and uPlot's styles.
    const charts = await (await routes.request('/ui/charts.js')).text();
    expect(charts).not.toMatch(/^\s*import\s/m);
    expect(charts).toMatch(/export\s*\{[^}]*statsCharts/);
    expect(charts).toContain('uplot');
    expect(await (await routes.request('/ui/charts.css')).text()).toContain('.uplot');
    const client = await (await routes.request('/client/browser.js')).text();
    expect(client).not.toMatch(/^\s*import\s/m);
    expect(client).toMatch(/export\s*\{[^}]*createClient/);
  });

  describe('the client by ETag and by content hash', () => {
    const routes = uiRoutes();
    const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

    it('/client/browser.js: a strong ETag of its bytes, 304 when it matches, CORS kept', async () => {
      const res = await routes.request('/client/browser.js');
      const code = await res.text();
      const digest = sha256(code);
      expect(res.headers.get('etag')).toBe(`"${digest}"`);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('sourcemap')).toBe(`/client/browser.${digest.slice(0, 16)}.js.map`);

      const again = await routes.request('/client/browser.js', {
        headers: { 'if-none-match': `"other", "${digest}"` },
      });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      expect(again.headers.get('etag')).toBe(`"${digest}"`);
      expect(again.headers.get('cache-control')).toBe('no-cache');
      // A cross-origin page revalidating its import needs the CORS header on the 304 too.
      expect(again.headers.get('access-control-allow-origin')).toBe('*');

      const stale = await routes.request('/client/browser.js', {
        headers: { 'if-none-match': '"stale"' },
      });
      expect(stale.status).toBe(200);
      expect(await stale.text()).toBe(code);
    });

    it('serves the same bytes under their hash for a year, and its source map', async () => {
      const code = await (await routes.request('/client/browser.js')).text();
      const hash = sha256(code).slice(0, 16);
      const hashed = await routes.request(`/client/browser.${hash}.js`);
      expect(hashed.status).toBe(200);
      expect(await hashed.text()).toBe(code);
      expect(hashed.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(hashed.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(hashed.headers.get('access-control-allow-origin')).toBe('*');
      expect(hashed.headers.get('x-content-type-options')).toBe('nosniff');
      expect(code).not.toContain('sourceMappingURL');

      const map = await routes.request(`/client/browser.${hash}.js.map`);
      expect(map.status).toBe(200);
      expect(map.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(map.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const parsed = (await map.json()) as { sources: string[]; sourcesContent: string[] };
      expect(parsed.sources).toContain('src/client/browser.ts');
      expect(parsed.sourcesContent.join('')).toContain('export function createClient');
    });

    it('redirects a hash it does not have to /client/browser.js; 404 for other names', async () => {
      const other = await routes.request('/client/browser.0123456789abcdef.js');
      expect(other.status).toBe(302);
      expect(other.headers.get('location')).toBe('/client/browser.js');
      expect(other.headers.get('cache-control')).toBe('no-store');
      expect(other.headers.get('access-control-allow-origin')).toBe('*');
      for (const path of [
        '/client/browser.0123456789abcdef.js.map',
        '/client/browser.0123.js',
        '/client/browser.ts',
        '/client/other.js',
      ]) {
        expect((await routes.request(path)).status, path).toBe(404);
      }
    });

    it('the dashboard script imports the client by its hash', async () => {
      const code = await (await routes.request('/client/browser.js')).text();
      const script = await (await routes.request('/ui/app.js')).text();
      expect(script).toContain(`from '/client/browser.${sha256(code).slice(0, 16)}.js'`);
      expect(script).not.toContain("'/client/browser.js'");
    });
  });

  describe('the compiled client, as served, against a node', () => {
    let node: SwitchboardNode;
    beforeAll(async () => {
      node = await startTestNode();
    });
    afterAll(async () => {
      await node?.kill();
    });

    it('imports and talks to the hub', async () => {
      const res = await fetch(`${node.url}/client/browser.js`);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      const source = await res.text();
      const mod = (await import(
        `data:text/javascript;base64,${Buffer.from(source).toString('base64')}`
      )) as typeof BrowserClient;
      const client = mod.createClient({ url: node.url, token: await clientToken(), WebSocket });
      try {
        const sent = await client.send('served', 'k', { a: 1 });
        expect(sent).toMatchObject({ runtime_id: 'served', status: 'pending' });
        const err = await client.send('served', '!').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(mod.SwitchboardError);
        expect(err).toMatchObject({ status: 400, code: 'invalid_request' });
      } finally {
        client.close();
      }
    });
  });
});
