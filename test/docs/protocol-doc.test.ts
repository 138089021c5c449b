/**
 * docs/PROTOCOL.md is the protocol users read: every frame type, error code and close
 * code protocol/ defines must appear in it, in backticks as on the wire, each HTTP error
 * code on a line with its status.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  CLOSE,
  ClientInbound,
  ClientOutbound,
  DAEMON_FAILURE_CODES,
  DaemonInbound,
  DaemonOutbound,
  HTTP_STATUS,
  HUB_FAILURE_CODES,
  SOCKET_ERROR_CODES,
  STORE_ERROR_CODES,
} from '../../protocol/index.js';

const doc = readFileSync('docs/PROTOCOL.md', 'utf8');

const missing = (names: Iterable<string>) => [...names].filter((n) => !doc.includes(`\`${n}`));

/** The `type` literals of a union of frame schemas (a union member may be a union). */
function frameTypes(union: { options: readonly z.ZodType[] }): string[] {
  return union.options.flatMap((schema) => {
    const s = schema as unknown as {
      options?: readonly z.ZodType[];
      shape?: { type: { value: string } };
    };
    return s.options ? frameTypes({ options: s.options }) : [s.shape?.type.value as string];
  });
}

describe('docs/PROTOCOL.md', () => {
  it('names every inbound and outbound frame type', () => {
    const all = new Set(
      [DaemonInbound, DaemonOutbound, ClientInbound, ClientOutbound].flatMap(frameTypes),
    );
    expect(all.size).toBeGreaterThan(15);
    expect(missing(all)).toEqual([]);
  });

  it('names every error code, each HTTP one with its status', () => {
    const codes = [
      ...Object.keys(HTTP_STATUS),
      ...SOCKET_ERROR_CODES,
      ...STORE_ERROR_CODES,
      ...DAEMON_FAILURE_CODES,
      ...HUB_FAILURE_CODES,
    ];
    expect(missing(codes)).toEqual([]);
    const undocumented = Object.entries(HTTP_STATUS).filter(
      ([code, status]) =>
        !new RegExp(`\`${code}\`[^\\n]*${status}|${status}[^\\n]*\`${code}\``).test(doc),
    );
    expect(undocumented).toEqual([]);
  });

  it('names every close code', () => {
    expect(Object.values(CLOSE).filter((code) => !doc.includes(String(code)))).toEqual([]);
  });
});
