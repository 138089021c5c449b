/**
 * docs/PROTOCOL.md is the protocol users read: every frame type, error code and close
 * code the code defines must appear in it, in backticks as on the wire. The frame types
 * are read from hub/protocol.ts (inbound schemas and outbound frame types), the error
 * codes from the store's list and from every HttpError the node raises.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLOSE, ClientInbound, DaemonInbound } from '../../hub/protocol.js';
import { STORE_ERROR_CODES } from '../../stores/errors.js';

const doc = readFileSync('docs/PROTOCOL.md', 'utf8');
const protocolSource = readFileSync('hub/protocol.ts', 'utf8');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}

const missing = (names: Iterable<string>) => [...names].filter((n) => !doc.includes(`\`${n}`));

describe('docs/PROTOCOL.md', () => {
  it('names every inbound and outbound frame type', () => {
    const inbound = [...DaemonInbound.options, ...ClientInbound.options].flatMap((schema) =>
      'options' in schema
        ? schema.options.map((o) => o.shape.type.value)
        : [schema.shape.type.value],
    );
    const outbound = [...protocolSource.matchAll(/type: '([a-z_]+)'/g)].map((m) => m[1] as string);
    const all = new Set([...inbound, ...outbound]);
    expect(all.size).toBeGreaterThan(15);
    expect(missing(all)).toEqual([]);
  });

  it('names every error code, with its HTTP status where it has one', () => {
    const raised = sources('src')
      .concat(sources('hub'))
      .flatMap((text) => [...text.matchAll(/new HttpError\((\d+), '([a-z_]+)'/g)])
      .map((m) => ({ status: m[1] as string, code: m[2] as string }));
    expect(raised.length).toBeGreaterThan(5);
    expect(missing([...STORE_ERROR_CODES, ...raised.map((r) => r.code), 'limit_exceeded'])).toEqual(
      [],
    );
    const undocumented = raised.filter(
      (r) =>
        !new RegExp(`\`${r.code}\`[^\\n]*${r.status}|${r.status}[^\\n]*\`${r.code}\``).test(doc),
    );
    expect(undocumented).toEqual([]);
  });

  it('names every close code', () => {
    expect(Object.values(CLOSE).filter((code) => !doc.includes(String(code)))).toEqual([]);
  });
});
