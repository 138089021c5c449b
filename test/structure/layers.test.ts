/**
 * The layers of DESIGN.md section 1, held by reading every import: `src -> hub ->
 * stores -> protocol`, protocol imports nothing of ours, and the SDKs (src/client)
 * depend on protocol/ alone, so they can ship without the hub. The browser client's
 * values come only from protocol's plain-constant modules (no schema library in its
 * bundle), and @opentelemetry/api (the active span's traceparent on a create).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = normalize(join(import.meta.dirname, '..', '..'));

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  from: string;
  /** A path relative to the repository root, or a package name. */
  to: string;
  typeOnly: boolean;
}

function imports(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: Import[] = [];
  for (const m of text.matchAll(
    /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm,
  )) {
    const spec = m[2] as string;
    const to = spec.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), spec)) : spec;
    found.push({ from: file, to, typeOnly: m[1] !== undefined });
  }
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] as string;
    const to = spec.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), spec)) : spec;
    found.push({ from: file, to, typeOnly: false });
  }
  return found;
}

const layer = (path: string) => path.split('/')[0] as string;
const isOurs = (i: Import) =>
  !i.to.startsWith('node:') && /^(protocol|stores|hub|src)\//.test(i.to);

describe('layers', () => {
  it('reads imports (the check itself works)', () => {
    const all = ['protocol', 'stores', 'hub', 'src'].flatMap(files).flatMap(imports);
    expect(all.filter(isOurs).length).toBeGreaterThan(100);
  });

  it('protocol/ imports nothing of ours but itself, and no package but zod', () => {
    const bad = files('protocol')
      .flatMap(imports)
      .filter((i) => (isOurs(i) ? layer(i.to) !== 'protocol' : i.to !== 'zod'));
    expect(bad).toEqual([]);
  });

  it('stores/ imports only protocol/, and hub/ nothing of src/', () => {
    const stores = files('stores')
      .flatMap(imports)
      .filter((i) => isOurs(i) && !['stores', 'protocol'].includes(layer(i.to)));
    const hub = files('hub')
      .flatMap(imports)
      .filter((i) => isOurs(i) && layer(i.to) === 'src');
    expect([...stores, ...hub]).toEqual([]);
  });

  it('the SDKs (src/client) depend on protocol/ alone', () => {
    const bad = files('src/client')
      .flatMap(imports)
      .filter((i) => isOurs(i) && !i.to.startsWith('protocol/') && !i.to.startsWith('src/client/'));
    expect(bad).toEqual([]);
  });

  it("the browser client's values come from protocol's schema-free modules", () => {
    const plain = new Set([
      'protocol/backoff.js',
      'protocol/codes.js',
      'protocol/status.js',
      'protocol/json.js',
      'protocol/trace.js',
      // The page's own OpenTelemetry SDK registers the api's global (browser-trace.ts).
      '@opentelemetry/api',
    ]);
    const seen = new Set<string>();
    const bad: Import[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const i of imports(file)) {
        if (i.typeOnly) continue;
        if (i.to.startsWith('src/client/')) visit(i.to.replace(/\.js$/, '.ts'));
        else if (!plain.has(i.to)) bad.push(i);
      }
    };
    visit('src/client/browser.ts');
    expect(bad).toEqual([]);
  });
});
