/**
 * The dashboard's files and the browser client, as strings to serve. Each is read once,
 * on first use; a failure is not cached, so the next request tries again.
 *
 * The browser client is the bundle `npm run build` wrote next to this module
 * (dist/src/ui/browser.bundle.js). Run from sources there is none: it is bundled once, in
 * memory, with the same options (./bundle.ts). Its content hash names it, so the
 * dashboard can import it under a name that never changes meaning (`/client/browser.
 * <hash>.js`, cached for a year) while `/client/browser.js` stays the stable address.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  BUNDLE_FILE,
  bundleBrowserClient,
  bundleCharts,
  CHARTS_CSS_FILE,
  CHARTS_FILE,
  type ChartsBundle,
} from './bundle.js';

const DASHBOARD_FILES = {
  'index.html': new URL('./index.html', import.meta.url),
  'app.js': new URL('./app.js', import.meta.url),
  'explorer.js': new URL('./explorer.js', import.meta.url),
  'style.css': new URL('./style.css', import.meta.url),
} as const;
export type DashboardFile = keyof typeof DASHBOARD_FILES;

const BUNDLE = new URL(`./${BUNDLE_FILE}`, import.meta.url);
const BUNDLE_MAP = new URL(`./${BUNDLE_FILE}.map`, import.meta.url);
const CHARTS = new URL(`./${CHARTS_FILE}`, import.meta.url);
const CHARTS_CSS = new URL(`./${CHARTS_CSS_FILE}`, import.meta.url);
/** The repository root, seen from src/ui/ (only used when running from sources). */
const SOURCE_ROOT = new URL('../../', import.meta.url);
const TOKEN_SLOT = '<!--switchboard-token-->';
/** How app.js imports the client; served, it names the hashed file instead. */
const CLIENT_IMPORT = "from '/client/browser.js'";

export interface BrowserClient {
  /** The ES module. */
  code: string;
  /** Its source map (JSON). */
  map: string;
  /** The first 16 hex digits of the code's SHA-256: `/client/browser.<hash>.js`. */
  hash: string;
  /** A strong ETag for the code: the whole SHA-256, quoted. */
  etag: string;
}

const cache = new Map<string, Promise<unknown>>();

function once<T>(key: string, load: () => Promise<T>): Promise<T> {
  let value = cache.get(key) as Promise<T> | undefined;
  if (!value) {
    value = load();
    cache.set(key, value);
    value.catch(() => cache.delete(key));
  }
  return value;
}

/** One dashboard file as it is on disk. */
export function dashboardFile(name: DashboardFile): Promise<string> {
  return once(name, () => readFile(DASHBOARD_FILES[name], 'utf8'));
}

/** The dashboard's script, importing the browser client by its hashed name. */
export function dashboardScript(): Promise<string> {
  return once('app.js served', async () => {
    const [script, client] = await Promise.all([dashboardFile('app.js'), browserClient()]);
    if (script.split(CLIENT_IMPORT).length !== 2) {
      throw new Error(`src/ui/app.js must import the client exactly once, as ${CLIENT_IMPORT}`);
    }
    return script.replace(CLIENT_IMPORT, `from '${browserClientPath(client)}'`);
  });
}

/**
 * The dashboard page. With `devClientToken` (dev mode only) the page carries it in a
 * `<meta name="switchboard-token">` and needs no setup; without, it asks for a token.
 */
export async function dashboardHtml(devClientToken?: string): Promise<string> {
  const html = await dashboardFile('index.html');
  const meta = devClientToken
    ? `<meta name="switchboard-token" content="${escapeAttribute(devClientToken)}" />`
    : '';
  return html.replace(TOKEN_SLOT, meta);
}

/** The browser client: one dependency-free ES module (ES2022), its map and its hash. */
export function browserClient(): Promise<BrowserClient> {
  return once('client', async () => {
    const { code, map } = (await readBuiltBundle()) ?? (await bundleFromSources());
    const digest = createHash('sha256').update(code).digest('hex');
    return { code, map, hash: digest.slice(0, 16), etag: `"${digest}"` };
  });
}

/**
 * The dashboard's charts (uPlot inside) and their CSS: the bundle `npm run build` wrote,
 * or, from sources, bundled once in memory.
 */
export function chartsBundle(): Promise<ChartsBundle> {
  return once('charts', async () => {
    try {
      const [code, css] = await Promise.all([
        readFile(CHARTS, 'utf8'),
        readFile(CHARTS_CSS, 'utf8'),
      ]);
      return { code, css };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      return await bundleCharts(SOURCE_ROOT);
    } catch (err) {
      throw new Error(
        `no charts bundle at ${CHARTS.pathname}, and bundling it from sources failed ` +
          `(npm run build writes it): ${(err as Error).message}`,
        { cause: err },
      );
    }
  });
}

/** Where the client is served under its hashed, immutable name. */
export function browserClientPath(client: BrowserClient): string {
  return `/client/browser.${client.hash}.js`;
}

/** The built bundle, or undefined when there is none (running from sources). */
async function readBuiltBundle(): Promise<{ code: string; map: string } | undefined> {
  try {
    const [code, map] = await Promise.all([readFile(BUNDLE, 'utf8'), readFile(BUNDLE_MAP, 'utf8')]);
    return { code, map };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function bundleFromSources(): Promise<{ code: string; map: string }> {
  try {
    return await bundleBrowserClient(SOURCE_ROOT);
  } catch (err) {
    throw new Error(
      `no browser client bundle at ${BUNDLE.pathname}, and bundling it from sources ` +
        `failed (npm run build writes it): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}
