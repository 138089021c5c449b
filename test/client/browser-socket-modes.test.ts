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
import { checksEveryMove } from './moves.js';

const LEGAL: Record<SocketMode, SocketMode[]> = {
  idle: ['connecting', 'unavailable', 'closed'],
  connecting: ['open', 'backoff', 'idle', 'closed'],
  open: ['backoff', 'idle', 'closed'],
  backoff: ['connecting', 'idle', 'closed'],
  unavailable: ['closed'],
  closed: [],
};

const modes = Object.values(SOCKET_MODES);

describe('browser client socket modes', () => {
  checksEveryMove(modes, SOCKET_MOVES, LEGAL, assertSocketMove);

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
