#!/usr/bin/env node
/**
 * `npm run build`: the package as it ships, in dist/.
 *
 *   1. dist/ removed, then `tsc -p tsconfig.build.json`: JavaScript, .d.ts, declaration
 *      and source maps for src/, hub/, stores/ and protocol/ (dist/src, dist/hub, ...).
 *   2. The files code finds next to itself through `new URL(..., import.meta.url)`: the
 *      Lua scripts (stores/redis/lua/**) and the dashboard's files (src/ui/*.html|css|js).
 *   3. The browser client bundle (dist/src/ui/browser.bundle.js and its .map) and the
 *      dashboard's charts with uPlot (dist/src/ui/charts.bundle.js and .css), built by
 *      the compiled src/ui/bundle.js, the same functions a node run from sources uses.
 *
 * Plain JavaScript, so it runs before anything is compiled. Runs from any directory.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const rootUrl = new URL('..', import.meta.url);
const root = fileURLToPath(rootUrl);
const dist = join(root, 'dist');
const started = Date.now();

rmSync(dist, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  cwd: root,
  stdio: 'inherit',
});
if (compiled.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${compiled.status ?? compiled.signal})\n`);
  process.exit(1);
}

/** Copies every file under `from` (relative to the root) whose name passes `keep`. */
function copyTree(from, keep) {
  const entries = readdirSync(join(root, from), { recursive: true, withFileTypes: true });
  let count = 0;
  for (const entry of entries) {
    if (!entry.isFile() || !keep(entry.name)) continue;
    const source = join(entry.parentPath, entry.name);
    const target = join(dist, source.slice(root.length));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(source, target);
    count++;
  }
  return count;
}
const lua = copyTree('stores/redis/lua', (name) => name.endsWith('.lua'));
// charts.js is only a bundle entry: the bundle (below) is what is served.
const ui = copyTree('src/ui', (name) => /\.(html|css|js)$/.test(name) && name !== 'charts.js');

const { BUNDLE_FILE, bundleBrowserClient, CHARTS_FILE, CHARTS_CSS_FILE, bundleCharts } =
  await import(pathToFileURL(join(dist, 'src/ui/bundle.js')).href);
const bundle = await bundleBrowserClient(rootUrl);
writeFileSync(join(dist, 'src/ui', BUNDLE_FILE), bundle.code);
writeFileSync(join(dist, 'src/ui', `${BUNDLE_FILE}.map`), bundle.map);
const charts = await bundleCharts(rootUrl);
writeFileSync(join(dist, 'src/ui', CHARTS_FILE), charts.code);
writeFileSync(join(dist, 'src/ui', CHARTS_CSS_FILE), charts.css);

process.stdout.write(
  `build: dist/ in ${Date.now() - started} ms (${lua} Lua scripts, ${ui} dashboard files, ` +
    `browser bundle ${bundle.code.length} bytes, charts ${charts.code.length} bytes)\n`,
);
