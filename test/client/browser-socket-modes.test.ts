/**
 * The browser client's socket modes table (src/client/browser-socket-modes.ts): every
 * move it lists is accepted, every other pair of modes throws. The legal moves are
 * written out here, so a move added to the table (or a check that lets everything
 * through) fails this test.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  assertSocketMove,
  SOCKET_MODES,
  SOCKET_MOVES,
  type SocketMode,
} from '../../src/client/browser-socket-modes.js';

const LEGAL: Record<SocketMode, SocketMode[]> = {
  idle: ['connecting', 'unavailable', 'closed'],
  connecting: ['open', 'backoff', 'idle', 'closed'],
  open: ['backoff', 'idle', 'closed'],
  backoff: ['connecting', 'idle', 'closed'],
  unavailable: ['closed'],
  closed: [],
};

const modes = Object.values(SOCKET_MODES);
const pairs = modes.flatMap((from) => modes.map((to) => [from, to] as const));

describe('browser client socket modes', () => {
  it('has the modes and the moves written out here', () => {
    expect([...modes].sort()).toEqual(Object.keys(LEGAL).sort());
    for (const mode of modes) expect([...SOCKET_MOVES[mode]].sort()).toEqual(LEGAL[mode].sort());
  });

  it.each(pairs.filter(([from, to]) => LEGAL[from].includes(to)))(
    'accepts %s -> %s',
    (from, to) => {
      expect(() => assertSocketMove(from, to)).not.toThrow();
    },
  );

  it.each(pairs.filter(([from, to]) => !LEGAL[from].includes(to)))(
    'refuses %s -> %s',
    (from, to) => {
      expect(() => assertSocketMove(from, to)).toThrow(`illegal mode change ${from} -> ${to}`);
    },
  );

  it('changes mode in one place, after the check (src/client/browser-socket.ts)', () => {
    const source = readFileSync(
      new URL('../../src/client/browser-socket.ts', import.meta.url),
      'utf8',
    );
    expect([...source.matchAll(/this\.#mode = /g)]).toHaveLength(1);
    const setMode = source.slice(source.indexOf('#setMode(next: SocketMode): void {'));
    expect(setMode.indexOf('assertSocketMove(this.#mode, next)')).toBeGreaterThan(0);
    expect(setMode.indexOf('assertSocketMove(this.#mode, next)')).toBeLessThan(
      setMode.indexOf('this.#mode = next'),
    );
  });
});
