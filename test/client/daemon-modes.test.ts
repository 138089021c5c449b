/**
 * The daemon SDK's modes table (src/client/daemon-modes.ts): every move it lists is
 * accepted, every other pair of modes throws. The legal moves are written out here, so
 * a move added to the table (or a check that lets everything through) fails this test.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  assertDaemonMove,
  DAEMON_MODES,
  DAEMON_MOVES,
  type DaemonMode,
  PUBLIC_STATE,
} from '../../src/client/daemon-modes.js';
import { checksEveryMove } from './moves.js';

const LEGAL: Record<DaemonMode, DaemonMode[]> = {
  idle: ['connecting'],
  connecting: ['socket', 'reconnecting', 'polling', 'closing'],
  reconnecting: ['connecting', 'socket', 'closing'],
  socket: ['socket', 'handover', 'reconnecting', 'polling', 'closing'],
  handover: ['socket', 'reconnecting', 'polling', 'closing'],
  polling: ['socket', 'closing'],
  closing: ['closed'],
  closed: [],
};

const modes = Object.values(DAEMON_MODES);

describe('daemon modes', () => {
  checksEveryMove(modes, DAEMON_MOVES, LEGAL, assertDaemonMove);

  it('closed is final, and every live mode can close', () => {
    expect(DAEMON_MOVES.closed).toEqual([]);
    for (const mode of modes) {
      if (mode === 'idle' || mode === 'closing' || mode === 'closed') continue;
      expect(DAEMON_MOVES[mode]).toContain('closing');
    }
  });

  it('reads as exactly the five public states the `state` event has always had', () => {
    expect(new Set(Object.values(PUBLIC_STATE))).toEqual(
      new Set(['connecting', 'socket', 'polling', 'closing', 'closed']),
    );
    expect(PUBLIC_STATE).toEqual({
      idle: 'connecting',
      connecting: 'connecting',
      reconnecting: 'connecting',
      socket: 'socket',
      handover: 'socket',
      polling: 'polling',
      closing: 'closing',
      closed: 'closed',
    });
  });

  it('changes mode in one place, after the check (src/client/daemon.ts)', () => {
    const source = readFileSync(new URL('../../src/client/daemon.ts', import.meta.url), 'utf8');
    const assignments = [...source.matchAll(/this\.#mode = /g)];
    expect(assignments).toHaveLength(1);
    const setMode = source.slice(source.indexOf('#setMode(next: DaemonMode): void {'));
    expect(setMode.indexOf('assertDaemonMove(prev, next)')).toBeGreaterThan(0);
    expect(setMode.indexOf('assertDaemonMove(prev, next)')).toBeLessThan(
      setMode.indexOf('this.#mode = next'),
    );
  });
});
