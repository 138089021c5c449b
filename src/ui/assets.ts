/**
 * The dashboard's files and the browser client, as strings to serve. Each is read (and
 * the client compiled from src/client/browser.ts with esbuild, in memory) once, on first
 * use; a failure is not cached, so the next request tries again.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const DASHBOARD_FILES = {
  'index.html': new URL('./index.html', import.meta.url),
  'app.js': new URL('./app.js', import.meta.url),
  'style.css': new URL('./style.css', import.meta.url),
} as const;
export type DashboardFile = keyof typeof DASHBOARD_FILES;

const BROWSER_CLIENT = new URL('../client/browser.ts', import.meta.url);
const TOKEN_SLOT = '<!--switchboard-token-->';

const cache = new Map<string, Promise<string>>();

function once(key: string, load: () => Promise<string>): Promise<string> {
  let text = cache.get(key);
  if (!text) {
    text = load();
    cache.set(key, text);
    text.catch(() => cache.delete(key));
  }
  return text;
}

/** One dashboard file as it is on disk. */
export function dashboardFile(name: DashboardFile): Promise<string> {
  return once(name, () => readFile(DASHBOARD_FILES[name], 'utf8'));
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

/** The browser client compiled to one dependency-free ES module (ES2022). */
export function browserClientJs(): Promise<string> {
  return once('client', async () => {
    // Bundled, not transformed: the client imports the protocol layer's constants.
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(BROWSER_CLIENT)],
      bundle: true,
      write: false,
      format: 'esm',
      target: 'es2022',
      legalComments: 'none',
    });
    const code = out.outputFiles[0]?.text ?? '';
    return code;
  });
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}
