/**
 * The browser client as nodes serve it: src/client/browser.ts and everything it imports
 * bundled into one dependency-free ES module (ES2022), with an external source map.
 * `npm run build` (scripts/build.mjs) calls this and writes the result into dist; a node
 * running from sources (tsx, tests) calls it once, in memory, on first use
 * (src/ui/assets.ts). One set of options for both, so both serve the same bytes.
 *
 * The dashboard's charts (src/ui/charts.js with uPlot and uPlot's CSS) are a second
 * bundle built the same two ways: `bundleCharts`, a minified ES module and its CSS.
 *
 * esbuild is a devDependency: it is imported only when this function runs, which the
 * compiled package never does.
 */
import { fileURLToPath } from 'node:url';

/** The bundle's file name, next to the compiled src/ui/assets.js in dist. */
export const BUNDLE_FILE = 'browser.bundle.js';
/** The charts bundle's file names (the CSS is what the module's CSS import became). */
export const CHARTS_FILE = 'charts.bundle.js';
export const CHARTS_CSS_FILE = 'charts.bundle.css';

export interface BrowserBundle {
  /** The ES module, with no `sourceMappingURL` comment (routes send a SourceMap header). */
  code: string;
  /** Its source map (JSON), sources relative to the repository root, contents inlined. */
  map: string;
}

/**
 * Bundles the browser client from the repository at `root` (a directory URL). Output
 * paths are fixed relative to `root`, so the bytes do not depend on where it runs.
 */
export async function bundleBrowserClient(root: URL): Promise<BrowserBundle> {
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: fileURLToPath(root),
    entryPoints: ['src/client/browser.ts'],
    outfile: BUNDLE_FILE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: false,
    sourcemap: 'external',
    sourcesContent: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'));
  if (!code || !map) throw new Error('esbuild produced no browser bundle');
  return { code: code.text, map: map.text };
}

export interface ChartsBundle {
  /** The ES module: src/ui/charts.js with uPlot inlined. */
  code: string;
  /** uPlot's styles, which the module imports. */
  css: string;
}

/** Bundles the dashboard's charts from the repository at `root` (a directory URL). */
export async function bundleCharts(root: URL): Promise<ChartsBundle> {
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: fileURLToPath(root),
    entryPoints: ['src/ui/charts.js'],
    outfile: CHARTS_FILE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!code || !css) throw new Error('esbuild produced no charts bundle');
  return { code: code.text, css: css.text };
}
